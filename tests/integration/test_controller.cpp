// The controller with three real instances on loopback: it adopts the
// primary and brings it under the write authority, switches over on request (CLI), fails over when
// the primary's manager is killed, and brings the old primary back as a
// replica.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "harness.hpp"

using namespace harness;

TEST_CASE("controller: adopt, switchover, failover, rejoin", "[controller]") {
    Instance p("c-one");
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.psql("CREATE TABLE t (v text); INSERT INTO t VALUES ('first')").code == 0);
    Instance a("c-two");
    Instance b("c-three");
    start_replicas(p, {&a, &b});

    Instance ctl("ctl");
    make_controller(ctl, {&p, &a, &b});
    ctl.start();
    REQUIRE(ctl.wait_until([&] { return converged(ctl, "c-one"); }, 30s));
    CHECK(p.wait_until([&] { return holds_write_right(p); }, 10s));
    auto c = cluster_of(ctl);
    CHECK(c["term"].get<uint64_t>() >= 1);
    CHECK(c["decisions"].size() >= 1);

    // The table at a glance, and its JSON.
    std::string bin = manager_binary();
    auto table = sh(bin + " status --controller " + api_url(ctl));
    CHECK(table.code == 0);
    CHECK(table.out.find("MEMBER") != std::string::npos);
    CHECK(table.out.find("c-one") != std::string::npos);
    auto direct =
        sh(bin + " status --json --member c-one=" + api_url(p) + " --member c-two=" + api_url(a));
    REQUIRE(direct.code == 0);
    CHECK(nlohmann::json::parse(direct.out)["primary"] == "c-one");

    // Bad switchover requests change nothing.
    CHECK(ctl.post("/v1/switchover", R"({"to": "nobody"})")->status == 404);
    CHECK(ctl.post("/v1/switchover", R"({"to": "c-one"})")->status == 409);
    CHECK(ctl.post("/v1/switchover", R"({"to": "c-two"})", "wrong")->status == 401);
    CHECK(ctl.post("/v1/switchover", R"({"to": "c-two", "x": 1})")->status == 400);

    // Switchover with the CLI: zero committed transactions lost.
    REQUIRE(p.psql("INSERT INTO t VALUES ('before-switchover')").code == 0);
    auto sw = sh(bin + " switchover --controller " + api_url(ctl) +
                 " --to c-two --api-token-file " + ctl.token_file);
    INFO(sw.out);
    REQUIRE(sw.code == 0);
    auto answer = nlohmann::json::parse(sw.out.substr(sw.out.find('{')));
    CHECK(answer["switched"] == true);
    CHECK(answer["from"] == "c-one");
    REQUIRE(ctl.wait_until([&] { return converged(ctl, "c-two"); }, 60s));
    CHECK(a.psql("SELECT string_agg(v, ',' ORDER BY v) FROM t").out == "before-switchover,first\n");
    REQUIRE(a.psql("INSERT INTO t VALUES ('after-switchover')").code == 0);

    // Failover: the primary's manager (and with it its postgres) is killed.
    a.signal(SIGKILL);
    REQUIRE(a.wait_exit(10s).has_value());
    auto killed = std::chrono::steady_clock::now();
    std::string next;
    REQUIRE(ctl.wait_until(
        [&] {
            next = primary_of(ctl);
            return !next.empty() && next != "c-two";
        },
        30s));
    Instance& np = next == "c-one" ? p : b;
    REQUIRE(np.wait_until(
        [&] { return np.psql("INSERT INTO t VALUES ('after-failover')").code == 0; }, 30s));
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - killed);
    WARN("failover to " << next << ": first committed write after " << took.count() << " ms");
    CHECK(np.psql("SELECT count(*) FROM t WHERE v = 'after-switchover'").out == "1\n");

    // The old primary comes back: it does not serve beside the new one, and
    // the controller makes it a replica again.
    a.start();
    REQUIRE(ctl.wait_until([&] { return converged(ctl, next); }, 60s));
    CHECK(a.wait_until(
        [&] { return a.psql("SELECT count(*) FROM t WHERE v = 'after-failover'").out == "1\n"; },
        30s));
    CHECK(a.get("/primary")->status == 503);
}

TEST_CASE("a primary stopping with a session open is fenced fast, and comes back as a replica",
          "[controller]") {
    // A deleted primary pod: SIGTERM, and an open session would hold a smart
    // shutdown for its whole timeout (here a minute).
    Instance p("st-one");
    p.smart_shutdown = "60s";
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1)").code == 0);
    Instance a("st-two"), b("st-three");
    start_replicas(p, {&a, &b});
    Instance ctl("st-ctl");
    make_controller(ctl, {&p, &a, &b});
    ctl.start();
    REQUIRE(ctl.wait_until([&] { return converged(ctl, "st-one"); }, 30s));
    REQUIRE(p.psql("INSERT INTO t VALUES (2)").code == 0);
    std::string conn =
        "host=" + p.root + " port=" + std::to_string(p.pg_port) + " user=postgres dbname=postgres";
    sh("psql -X '" + conn + "' -c 'SELECT pg_sleep(300)' >/dev/null 2>&1 &", true);
    REQUIRE(p.wait_until(
        [&] {
            return p.psql_local(
                        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                        "'SELECT pg_sleep(300)%'")
                       .out == "1\n";
        },
        10s));

    p.signal(SIGTERM);
    auto stopped = std::chrono::steady_clock::now();
    // Not a minute: the promise round for a newer term supersedes its write
    // right, and postgres is stopped at once (the sessions with it).
    std::string next;
    REQUIRE(ctl.wait_until(
        [&] {
            next = primary_of(ctl);
            return !next.empty() && next != "st-one";
        },
        30s));
    WARN("primary stopped with a session open: new primary "
         << next << " after "
         << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  stopped)
                .count()
         << " ms");
    auto code = p.wait_exit(30s);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    CHECK(p.log().find("steps down") != std::string::npos);
    Instance& np = next == "st-two" ? a : b;
    CHECK(np.psql("SELECT count(*) FROM t").out == "2\n");

    // The pod comes back on its volume: fenced, then demoted to a replica.
    p.start();
    REQUIRE(ctl.wait_until([&] { return converged(ctl, next); }, 60s));
    CHECK(p.status()["role"] == "replica");
}

TEST_CASE("a primary whose postgres crash-loops while a failover runs: one writer at a time",
          "[controller]") {
    Instance p("cl-one");
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1)").code == 0);
    Instance a("cl-two"), b("cl-three");
    start_replicas(p, {&a, &b});
    Instance ctl("cl-ctl");
    make_controller(ctl, {&p, &a, &b});
    ctl.start();
    REQUIRE(ctl.wait_until([&] { return converged(ctl, "cl-one"); }, 30s));
    REQUIRE(p.wait_until([&] { return holds_write_right(p); }, 10s));

    // Never two writable primaries, watched through each instance's own socket.
    std::atomic<bool> stop{false};
    std::atomic<int> most_writable{0};
    std::thread probe([&] {
        while (!stop) {
            int writable = 0;
            for (auto* i : {&p, &a, &b})
                if (i->psql_local("SELECT pg_is_in_recovery()").out == "f\n") ++writable;
            most_writable = std::max(most_writable.load(), writable);
            std::this_thread::sleep_for(30ms);
        }
    });
    // The primary's postgres is killed whenever it is up, for 8 s: its
    // manager restarts it (after a backoff, through the start gate) while
    // the controller fails over.
    auto until = std::chrono::steady_clock::now() + 12s;
    int kills = 0;
    while (std::chrono::steady_clock::now() < until) {
        pid_t pm = p.postmaster_pid();
        if (pm > 0 && ::kill(pm, SIGKILL) == 0) ++kills;
        std::this_thread::sleep_for(100ms);
    }
    // Either the controller failed over (the old primary then rejoins as a
    // replica) or it waited for the primary on its way up (it serves again):
    // one primary, everyone following, never two writers on the way.
    std::string next;
    bool settled = ctl.wait_until(
        [&] {
            next = primary_of(ctl);
            return !next.empty() && converged(ctl, next);
        },
        90s);
    stop = true;
    probe.join();
    INFO("postmaster killed " << kills << " times; primary now " << next);
    INFO(cluster_of(ctl).dump(1));
    INFO(p.log_tail());
    REQUIRE(settled);
    CHECK(kills >= 1);
    CHECK(most_writable.load() == 1);
    Instance& np = next == "cl-one" ? p : (next == "cl-two" ? a : b);
    CHECK(np.psql("INSERT INTO t VALUES (2)").code == 0);
    if (next != "cl-one") CHECK(p.status()["role"] == "replica");
}
