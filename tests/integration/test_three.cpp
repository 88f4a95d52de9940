// Three real instances on loopback: synchronous replication (a commit waits
// while its synchronous standby is fenced), a switchover by hand with
// min_lsn, and follow by reload versus follow by restart.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "harness.hpp"

using namespace harness;

namespace {

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("three instances: synchronous commit, switchover, follow by reload", "[three]") {
    Instance p("s-one");
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.psql("CREATE TABLE t (v text)").code == 0);
    Instance a("s-two");
    Instance b("s-three");
    start_replicas(p, {&a, &b});
    const nlohmann::json members = {"s-one", "s-two", "s-three"};

    // Synchronous replication is a primary's business.
    post_json(a, "/v1/replication",
              {{"term", 1}, {"synchronous", {{"number", 1}, {"standbys", {"s-one"}}}}}, 409);
    auto sync =
        post_json(p, "/v1/replication",
                  {{"term", 1},
                   {"synchronous", {{"method", "first"}, {"number", 1}, {"standbys", {"s-two"}}}}},
                  200);
    CHECK(sync["synchronous_standby_names"] == "FIRST 1 (\"s-two\")");
    // A standby counts as synchronous once it reported a flush position: the
    // first commit waits for that.
    REQUIRE(p.psql("INSERT INTO t VALUES ('sync-1')").code == 0);
    CHECK(p.wait_until(
        [&] {
            auto status = p.status();  // the loop must not outlive it
            for (const auto& rep : status["replication"]["replicas"])
                if (rep["name"] == "s-two" && rep["sync_state"] == "sync") return true;
            return false;
        },
        20s));
    CHECK(p.status()["replication"]["synchronous_standby_names"] == "FIRST 1 (\"s-two\")");

    // The synchronous standby fenced: a commit on the primary waits for it.
    post_json(a, "/v1/fence", {{"term", 2}}, 200);
    std::string done = p.root + "/commit.rc";
    std::filesystem::remove(done);
    std::string conn = "host=127.0.0.1 port=" + std::to_string(p.pg_port) +
                       " user=app dbname=app connect_timeout=5";
    sh("(PGPASSWORD='" + p.app_password() +
       "' psql -X -q -c \"INSERT INTO t VALUES ('waited')\" '" + conn + "'; echo $? > " + done +
       ") >/dev/null 2>&1 &");
    CHECK(p.wait_until(
        [&] {
            return p.psql_local(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
                       .out == "1\n";
        },
        10s));
    std::this_thread::sleep_for(1s);
    CHECK_FALSE(std::filesystem::exists(done));
    // Back from the fence: the waiting commit goes through.
    post_json(a, "/v1/unfence", {{"term", 3}}, 200);
    CHECK(p.wait_until([&] { return std::filesystem::exists(done); }, 60s));
    CHECK(p.wait_until([&] { return read_all(done) == "0\n"; }, 5s));
    REQUIRE(a.wait_ready(60s));
    CHECK(a.wait_until([&] { return a.psql("SELECT count(*) FROM t").out == "2\n"; }, 20s));

    // Switchover by hand: demote the primary (stays fenced), promote the
    // synchronous standby once it has the shutdown checkpoint, re-point the others.
    auto demoted = post_json(p, "/v1/demote", {{"term", 4}}, 200);
    std::string checkpoint = demoted["shutdown_checkpoint_lsn"];
    CHECK(p.status()["role"] == "fenced");
    auto promoted = post_json(a, "/v1/promote",
                              {{"term", 5}, {"min_lsn", checkpoint}, {"members", members}}, 200);
    CHECK(promoted["timeline"] == 2);
    REQUIRE(a.psql("INSERT INTO t VALUES ('on-new-primary')").code == 0);

    // b streams on timeline 1 up to the fork: the new primary continues it, a reload is enough.
    auto followed =
        post_json(b, "/v1/follow", {{"term", 6}, {"primary_conninfo", a.upstream()}}, 200);
    CHECK(followed["method"] == "reload");
    CHECK(b.wait_until([&] { return b.psql("SELECT count(*) FROM t").out == "3\n"; }, 30s));
    CHECK(b.status()["replication"]["upstream"]["port"] == std::to_string(a.pg_port));

    // The old primary, a fenced replica, follows with a restart.
    auto rejoined =
        post_json(p, "/v1/follow", {{"term", 7}, {"primary_conninfo", a.upstream()}}, 200);
    CHECK(rejoined["method"] == "restart");
    REQUIRE(p.wait_ready(60s));
    CHECK(p.wait_until(
        [&] {
            return p.psql("SELECT string_agg(v, ',' ORDER BY v) FROM t").out ==
                   "on-new-primary,sync-1,waited\n";
        },
        30s));
    // Every member but the primary has its slot there, in use.
    CHECK(a.wait_until(
        [&] {
            return a.psql_local(
                        "SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM "
                        "pg_replication_slots WHERE active")
                       .out == "s_one,s_three\n";
        },
        30s));
}
