// Supervision of a real postmaster: crashes, restart policy, the manager's
// own death, signals.
#include <signal.h>

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace harness;

TEST_CASE("a postmaster killed with SIGKILL is restarted and counted", "[supervision]") {
    Instance pg("sup1");
    pg.start();
    REQUIRE(pg.wait_ready());
    REQUIRE(pg.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1)").code == 0);
    pid_t before = pg.postmaster_pid();
    REQUIRE(before > 0);
    REQUIRE(::kill(before, SIGKILL) == 0);

    // Readiness tells the truth while postgres is down; liveness stays up.
    bool saw_unready = pg.wait_until(
        [&] {
            auto r = pg.get("/readyz");
            return r.ok() && r->status == 503;
        },
        10s);
    CHECK(saw_unready);
    auto live = pg.get("/healthz");
    REQUIRE(live.ok());
    CHECK(live->status == 200);

    REQUIRE(pg.wait_until([&] { return pg.status()["restart_count"] == 1; }, 30s));
    REQUIRE(pg.wait_ready(30s));
    pid_t after = pg.postmaster_pid();
    CHECK(after > 0);
    CHECK(after != before);
    CHECK(pg.psql("SELECT v FROM t").out == "1\n");
    auto s = pg.status();
    CHECK(s["postgres"]["crashes"] == 1);
    CHECK(s["role"] == "primary");
    auto metrics = pg.get("/metrics");
    REQUIRE(metrics.ok());
    CHECK(metrics->body.find("instance_manager_postgres_restarts 1") != std::string::npos);
}

TEST_CASE("--restart-policy never: the manager exits non-zero when postgres dies",
          "[supervision]") {
    Instance pg("sup2");
    pg.extra_args = {"--restart-policy", "never"};
    pg.start();
    REQUIRE(pg.wait_ready());
    REQUIRE(::kill(pg.postmaster_pid(), SIGKILL) == 0);
    auto code = pg.wait_exit(30s);
    REQUIRE(code.has_value());
    CHECK(*code != 0);
}

TEST_CASE("postgres does not outlive a killed manager", "[supervision]") {
    Instance pg("sup3");
    pg.start();
    REQUIRE(pg.wait_ready());
    pid_t postmaster = pg.postmaster_pid();
    REQUIRE(postmaster > 0);
    pg.signal(SIGKILL);
    REQUIRE(pg.wait_exit(10s).has_value());
    bool gone = pg.wait_until([&] { return ::kill(postmaster, 0) != 0; }, 20s);
    CHECK(gone);
    // And the directory is reusable right away.
    pg.start();
    CHECK(pg.wait_ready());
}

TEST_CASE("SIGHUP reloads postgres's configuration", "[supervision]") {
    Instance pg("sup4");
    pg.start();
    REQUIRE(pg.wait_ready());
    pid_t postmaster = pg.postmaster_pid();
    pg.signal(SIGHUP);
    CHECK(pg.wait_until(
        [&] {
            return pg.log().find("received SIGHUP, reloading configuration files") !=
                   std::string::npos;
        },
        10s));
    CHECK(pg.postmaster_pid() == postmaster);
}

TEST_CASE("SIGTERM with a busy client escalates from smart to fast and still exits 0",
          "[supervision]") {
    Instance pg("sup5");
    pg.start();
    REQUIRE(pg.wait_ready());
    // A client that would hold a smart shutdown forever.
    auto holder = sh("PGPASSWORD='" + pg.app_password() +
                     "' psql -X 'host=127.0.0.1 port=" + std::to_string(pg.pg_port) +
                     " user=app dbname=app' -c 'SELECT pg_sleep(120)' >/dev/null 2>&1 &");
    REQUIRE(pg.wait_until(
        [&] {
            return pg.psql(
                         "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' "
                         "AND pid <> pg_backend_pid()")
                       .out == "1\n";
        },
        10s));
    auto start = std::chrono::steady_clock::now();
    pg.signal(SIGTERM);
    auto code = pg.wait_exit(60s);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    CHECK(std::chrono::steady_clock::now() - start < 30s);
    CHECK(pg.control_state() == "shut down");
    CHECK(pg.log().find("fast shutdown") != std::string::npos);
}
