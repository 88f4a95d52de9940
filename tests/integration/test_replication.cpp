// Two real instances on loopback: a replica cloned from its primary, then
// promote, demote with pg_rewind, fence and the term rules.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "harness.hpp"

using namespace harness;

TEST_CASE("replica clone, promote, demote with rewind, fence and terms", "[replication]") {
    Instance p("r-one");
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.psql("CREATE TABLE t (v text); INSERT INTO t VALUES ('before-clone')").code == 0);

    Instance r("r-two");
    r.replica_of(p);
    r.start();
    REQUIRE(r.wait_ready(120s));
    auto rs = r.status();
    CHECK(rs["role"] == "replica");
    CHECK(rs["replication"]["upstream"]["port"] == std::to_string(p.pg_port));
    CHECK(rs["clone_progress"] == 100);
    CHECK(r.get("/v1/status")->body.find(r.app_password()) == std::string::npos);
    CHECK(r.psql("SELECT v FROM t").out == "before-clone\n");

    // Streaming: new rows arrive, the role probes agree, the primary sees the replica.
    REQUIRE(p.psql("INSERT INTO t VALUES ('streamed')").code == 0);
    CHECK(r.wait_until([&] { return r.psql("SELECT count(*) FROM t").out == "2\n"; }, 20s));
    CHECK(r.wait_until([&] { return r.status()["replication"]["streaming"] == true; }, 20s));
    CHECK(r.get("/replica")->status == 200);
    CHECK(r.get("/primary")->status == 503);
    CHECK(p.get("/primary")->status == 200);
    CHECK(p.wait_until(
        [&] {
            auto reps = p.status()["replication"]["replicas"];
            return reps.is_array() && reps.size() == 1 && reps[0]["name"] == "r-two" &&
                   reps[0]["state"] == "streaming";
        },
        20s));
    auto metrics = r.get("/metrics");
    CHECK(metrics->body.find("pg_replication_streaming 1") != std::string::npos);

    // Commands that do not fit: promote a primary, demote a replica, unfence a running one.
    post_json(p, "/v1/promote", {{"term", 1}}, 409);
    post_json(r, "/v1/demote", {{"term", 1}}, 409);
    post_json(r, "/v1/unfence", {{"term", 1}}, 409);

    // min_lsn beyond what the replica has: 412 with its positions, nothing changes.
    auto refused = post_json(r, "/v1/promote", {{"term", 1}, {"min_lsn", "FFFF/0"}}, 412);
    CHECK(refused["received_lsn"].is_string());
    CHECK(r.status()["role"] == "replica");

    // Promote: the replica becomes a writable primary on a new timeline.
    auto promoted =
        post_json(r, "/v1/promote", {{"term", 2}, {"members", {"r-one", "r-two"}}}, 200);
    CHECK(promoted["changed"] == true);
    CHECK(promoted["timeline"] == 2);
    CHECK(r.get("/primary")->status == 200);
    REQUIRE(r.psql("INSERT INTO t VALUES ('after-promote')").code == 0);
    // The same command and term again: no change.
    CHECK(post_json(r, "/v1/promote", {{"term", 2}, {"members", {"r-one", "r-two"}}},
                    200)["changed"] == false);
    // The new primary keeps a slot for the other member.
    CHECK(r.wait_until(
        [&] { return r.psql_local("SELECT slot_name FROM pg_replication_slots").out == "r_one\n"; },
        10s));

    // The old primary diverges (as after a split brain that the controller prevents).
    REQUIRE(p.psql("INSERT INTO t VALUES ('diverged')").code == 0);

    // Demote towards an unreachable primary: 502, nothing changes.
    int nowhere = free_port();
    post_json(p, "/v1/demote",
              {{"term", 3}, {"primary_conninfo", "host=127.0.0.1 port=" + std::to_string(nowhere)}},
              502);
    CHECK(p.status()["role"] == "primary");
    CHECK(p.psql("SELECT count(*) FROM t").out == "3\n");

    // Demote with rewind: the diverging row is gone, the new primary's rows are there.
    auto demoted =
        post_json(p, "/v1/demote", {{"term", 3}, {"primary_conninfo", r.upstream()}}, 200);
    CHECK(demoted["rewound"] == true);
    CHECK(demoted["shutdown_checkpoint_lsn"].get<std::string>().find('/') != std::string::npos);
    REQUIRE(p.wait_ready(60s));
    CHECK(p.status()["role"] == "replica");
    CHECK(p.wait_until(
        [&] {
            return p.psql("SELECT string_agg(v, ',' ORDER BY v) FROM t").out ==
                   "after-promote,before-clone,streamed\n";
        },
        30s));
    CHECK(p.log().find("pg_rewind") != std::string::npos);

    // Lower term: refused and nothing changes.
    post_json(p, "/v1/fence", {{"term", 2}}, 409);
    CHECK(p.status()["role"] == "replica");

    // Fence survives a restart of the manager.
    post_json(p, "/v1/fence", {{"term", 4}}, 200);
    CHECK(p.get("/readyz")->status == 503);
    CHECK(p.get("/healthz")->status == 200);
    p.signal(SIGTERM);
    REQUIRE(p.wait_exit(60s) == 0);
    p.start();
    REQUIRE(p.wait_until([&] { return p.status()["role"] == "fenced"; }, 30s));
    CHECK(p.status()["postgres"]["running"] == false);
    CHECK(p.status()["term"] == 4);

    // Unfence: back to streaming from the new primary.
    post_json(p, "/v1/unfence", {{"term", 5}}, 200);
    REQUIRE(p.wait_ready(60s));
    REQUIRE(r.psql("INSERT INTO t VALUES ('after-unfence')").code == 0);
    CHECK(p.wait_until(
        [&] { return p.psql("SELECT count(*) FROM t WHERE v = 'after-unfence'").out == "1\n"; },
        30s));

    // Follow (same upstream again): a restart with a no-op rewind, still streaming.
    post_json(p, "/v1/follow", {{"term", 6}, {"primary_conninfo", r.upstream()}}, 200);
    REQUIRE(p.wait_ready(60s));
    CHECK(p.status()["role"] == "replica");
}

TEST_CASE("a demote towards a foreign cluster is refused", "[replication]") {
    Instance a("f-one");
    Instance b("f-two");
    a.start();
    b.start();
    REQUIRE(a.wait_ready());
    REQUIRE(b.wait_ready());
    // b's replication password is not a's: make them equal so only the system identifier differs.
    sh("cp " + a.pgdata + "/instance-manager/replication.password " + b.pgdata +
           "/instance-manager/replication.password",
       true);
    REQUIRE(b.post("/v1/restart", "{}")->status == 200);
    REQUIRE(b.wait_ready());
    auto r = a.post("/v1/demote",
                    nlohmann::json{{"term", 1}, {"primary_conninfo", b.upstream()}}.dump());
    REQUIRE(r.ok());
    INFO(r->body);
    CHECK(r->status == 409);
    CHECK(r->body.find("another cluster") != std::string::npos);
    CHECK(a.status()["role"] == "primary");
}

TEST_CASE("a failed rewind fences; --on-rewind-failure reclone replaces the data", "[rewind]") {
    Instance p("w-one");
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.psql("CREATE TABLE t (v text); INSERT INTO t VALUES ('base')").code == 0);
    Instance r("w-two");
    r.replica_of(p);
    r.start();
    REQUIRE(r.wait_ready(120s));
    REQUIRE(r.wait_until([&] { return r.psql("SELECT count(*) FROM t").out == "1\n"; }, 20s));

    post_json(r, "/v1/promote", {{"term", 1}, {"members", {"w-one", "w-two"}}}, 200);
    REQUIRE(r.psql("INSERT INTO t VALUES ('after-promote')").code == 0);
    REQUIRE(p.psql("INSERT INTO t VALUES ('diverged')").code == 0);
    post_json(p, "/v1/demote", {{"term", 2}}, 200);
    CHECK(p.status()["role"] == "fenced");
    // Without its own WAL pg_rewind cannot find where the histories forked.
    REQUIRE(sh("find " + p.pgdata +
                   "/pg_wal -maxdepth 1 -regextype posix-extended -regex '.*/[0-9A-F]{24}' -delete",
               true)
                .code == 0);

    // Default: the instance stays fenced, its data directory untouched.
    auto failed =
        post_json(p, "/v1/follow", {{"term", 3}, {"primary_conninfo", r.upstream()}}, 500);
    CHECK(failed["error"].get<std::string>().find("stays fenced") != std::string::npos);
    CHECK(p.status()["role"] == "fenced");
    CHECK(p.status()["last_error"].is_string());
    CHECK(sh("test -f " + p.pgdata + "/PG_VERSION -a -d " + p.pgdata + "/base").code == 0);

    // Opted in: a fresh base backup from the new primary replaces the data.
    p.signal(SIGTERM);
    REQUIRE(p.wait_exit(60s) == 0);
    p.extra_args = {"--on-rewind-failure", "reclone"};
    p.start();
    REQUIRE(p.wait_until([&] { return p.status()["role"] == "fenced"; }, 30s));
    auto recloned =
        post_json(p, "/v1/follow", {{"term", 4}, {"primary_conninfo", r.upstream()}}, 200);
    CHECK(recloned["recloned"] == true);
    REQUIRE(p.wait_ready(120s));
    CHECK(p.status()["role"] == "replica");
    CHECK(p.status()["term"] == 4);
    CHECK(p.wait_until(
        [&] {
            return p.psql("SELECT string_agg(v, ',' ORDER BY v) FROM t").out ==
                   "after-promote,base\n";
        },
        30s));
    CHECK(sh("grep -q 'replacing the data directory' " + p.root + "/manager.log").code == 0);
}

TEST_CASE(
    "--bootstrap-instance: one instance starts the cluster, the others and its replacement join",
    "[replication]") {
    // Every instance gets the same flags, as the pods of a StatefulSet do,
    // and the same replication password (a Secret there).
    Instance first("set-0");
    std::string password = first.root + "/replication.password";
    REQUIRE(sh("echo set-secret > " + password, true).code == 0);
    first.extra_args = {
        "--primary-conninfo",          "host=127.0.0.1 port=" + std::to_string(free_port()),
        "--bootstrap-instance",        "set-0",
        "--replication-password-file", password};

    // A second instance that starts before any primary exists waits for one.
    Instance second("set-1");
    second.token_file = first.token_file;
    second.extra_args = {"--primary-conninfo",          first.upstream(),
                         "--bootstrap-instance",        "set-0",
                         "--replication-password-file", password};
    second.start();
    REQUIRE(second.wait_until(
        [&] { return second.log().find("does not answer yet") != std::string::npos; }, 20s));
    CHECK(second.alive());

    first.start();
    REQUIRE(first.wait_ready());
    CHECK(first.status()["role"] == "primary");  // no primary answered: a new cluster
    REQUIRE(first.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (7)").code == 0);
    REQUIRE(second.wait_ready(90s));
    CHECK(second.status()["role"] == "replica");

    // Pod 0 recreated on an empty volume while the cluster lives: it joins
    // instead of starting a second cluster.
    Instance again("set-0");
    again.token_file = first.token_file;
    again.extra_args = second.extra_args;
    again.start();
    REQUIRE(again.wait_ready());
    CHECK(again.status()["role"] == "replica");
    CHECK(again.status()["postgres"]["system_identifier"] ==
          first.status()["postgres"]["system_identifier"]);
    CHECK(again.wait_until([&] { return again.psql("SELECT v FROM t").out == "7\n"; }, 20s));
}

TEST_CASE("an interrupted clone is cleared and cloned again; without the marker nothing is touched",
          "[replication]") {
    Instance primary("ic-primary");
    primary.start();
    REQUIRE(primary.wait_ready());
    REQUIRE(primary.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (5)").code == 0);

    // What a kill during pg_basebackup leaves: part of a copy, and the marker.
    Instance replica("ic-replica");
    replica.replica_of(primary);
    REQUIRE(sh("mkdir -p " + replica.pgdata + "/global && echo 15 > " + replica.pgdata +
                   "/PG_VERSION && echo partial > " + replica.pgdata + "/global/pg_control" +
                   " && echo ic-replica > " + replica.pgdata + ".clone-in-progress" +
                   // an interrupted re-clone also left the instance's own state aside
                   " && mkdir -p " + replica.pgdata + ".instance-manager-stash && echo " +
                   "'{\"term\": 7}' > " + replica.pgdata + ".instance-manager-stash/state.json",
               true)
                .code == 0);
    replica.start();
    REQUIRE(replica.wait_ready());
    CHECK(replica.status()["role"] == "replica");
    CHECK(replica.log().find("an interrupted clone") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(replica.pgdata + ".clone-in-progress"));
    CHECK_FALSE(std::filesystem::exists(replica.pgdata + ".instance-manager-stash"));
    CHECK(replica.status()["term"] == 7);
    // (The set-aside state here holds a term only, no passwords: ask over the local socket.)
    CHECK(replica.wait_until(
        [&] { return replica.psql_local("SELECT v FROM t", "app").out == "5\n"; }, 20s));

    // The same leftovers without the marker are not ours: refused, untouched.
    Instance stranger("ic-stranger");
    stranger.replica_of(primary);
    REQUIRE(sh("mkdir -p " + stranger.pgdata + " && echo mine > " + stranger.pgdata + "/notes.txt",
               true)
                .code == 0);
    CHECK(stranger.run_to_exit() != 0);
    CHECK(sh("cat " + stranger.pgdata + "/notes.txt").out == "mine\n");
}

TEST_CASE("the caller's PG* variables and HOME steer neither the manager nor its children",
          "[replication]") {
    Instance p("r-env1");
    // A home whose client files would all break a connection: a garbage
    // certificate, key and root certificate, and a passfile with a wrong password.
    std::string home = p.root + "/home";
    auto made = sh("mkdir -p " + home + "/.postgresql && cd " + home +
                       " && for f in postgresql.crt postgresql.key root.crt root.crl; do echo garbage"
                       " > .postgresql/$f; done && chmod 600 .postgresql/postgresql.key && echo "
                       "'*:*:*:*:wrong' > .pgpass && chmod 600 .pgpass",
                   true);
    INFO(made.out);
    REQUIRE(made.code == 0);
    const std::vector<std::string> hostile = {"PGPASSWORD=wrong", "PGUSER=nobody",
                                              "PGHOST=/nonexistent", "PGSSLMODE=verify-full",
                                              "HOME=" + home};
    p.env = hostile;
    p.start();
    REQUIRE(p.wait_ready());
    CHECK(p.status()["role"] == "primary");
    REQUIRE(p.psql("CREATE TABLE t (v text); INSERT INTO t VALUES ('cloned')").code == 0);

    Instance r("r-env2");
    r.env = hostile;
    r.replica_of(p);
    r.start();
    REQUIRE(r.wait_ready(120s));
    CHECK(r.psql("SELECT v FROM t").out == "cloned\n");
    REQUIRE(p.psql("INSERT INTO t VALUES ('streamed')").code == 0);
    CHECK(r.wait_until([&] { return r.psql("SELECT count(*) FROM t").out == "2\n"; }, 30s));
    CHECK(r.wait_until([&] { return r.status()["replication"]["streaming"] == true; }, 30s));
    CHECK(p.get("/readyz")->status == 200);
}
