// Supervision of a real postmaster: crashes, restart policy, the manager's
// own death, signals.
#include <signal.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>

#include "../process_gone.hpp"
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

namespace {
// The inodes of the sockets `pid` holds ("socket:[N]" links in /proc/PID/fd).
std::set<std::string> socket_inodes(pid_t pid) {
    std::set<std::string> out;
    std::error_code ec;
    for (auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
        auto target = std::filesystem::read_symlink(e.path(), ec).string();
        if (!ec && target.rfind("socket:", 0) == 0) out.insert(target);
    }
    return out;
}
std::vector<pid_t> children_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) +
                     "/children");
    std::vector<pid_t> out;
    for (pid_t child; in >> child;) out.push_back(child);
    return out;
}
}  // namespace

TEST_CASE("postgres and its backends hold none of the manager's sockets", "[supervision]") {
    if (!running_as_root()) {
        WARN("reading another user's /proc/PID/fd needs root; skipped");
        return;
    }
    Instance pg("sup-fds");
    pg.start();
    REQUIRE(pg.wait_ready());
    // The API's listening socket among them, and the manager's connections.
    auto manager = socket_inodes(pg.manager_pid());
    REQUIRE(!manager.empty());
    pid_t postmaster = pg.postmaster_pid();
    REQUIRE(postmaster > 0);
    std::vector<pid_t> processes{postmaster};
    for (pid_t child : children_of(postmaster)) processes.push_back(child);
    // The postmaster's auxiliary processes and the monitor's backend at least.
    REQUIRE(processes.size() > 2);
    for (pid_t p : processes) {
        for (auto& inode : socket_inodes(p)) {
            INFO("process " << p << " holds the manager's " << inode);
            CHECK(manager.count(inode) == 0);
        }
    }
}

TEST_CASE("the manager ignores SIGPIPE", "[supervision]") {
    Instance pg("sup-pipe");
    pg.start();
    REQUIRE(pg.wait_ready());
    std::ifstream in("/proc/" + std::to_string(pg.manager_pid()) + "/status");
    std::string line, ignored;
    while (std::getline(in, line))
        if (line.rfind("SigIgn:", 0) == 0) ignored = line.substr(7);
    INFO("SigIgn:" << ignored);
    REQUIRE(!ignored.empty());
    unsigned long long mask = std::stoull(ignored, nullptr, 16);
    CHECK(((mask >> (SIGPIPE - 1)) & 1) == 1);
}

TEST_CASE("a postmaster that ignores immediate shutdown is killed with its backends",
          "[supervision]") {
    Instance pg("sup-kill");
    pg.smart_shutdown = "1s";
    pg.start();
    REQUIRE(pg.wait_ready());
    // A backend busy in a loop that never notices its postmaster's death.
    sh("PGPASSWORD='" + pg.app_password() + "' psql -X 'host=127.0.0.1 port=" +
       std::to_string(pg.pg_port) +
       " user=app dbname=app' -c 'DO $$BEGIN LOOP END LOOP; END$$' >/dev/null 2>&1 &");
    std::string backend;
    REQUIRE(pg.wait_until(
        [&] {
            backend = pg.psql("SELECT pid FROM pg_stat_activity WHERE query LIKE '%LOOP END "
                              "LOOP%' AND pid <> pg_backend_pid()")
                          .out;
            return !backend.empty();
        },
        10s));
    pid_t busy = std::stoi(backend);
    // A stopped postmaster answers none of smart, fast and immediate shutdown.
    pid_t postmaster = pg.postmaster_pid();
    REQUIRE(::kill(postmaster, SIGSTOP) == 0);
    pg.signal(SIGTERM);
    REQUIRE(pg.wait_exit(90s).has_value());
    CHECK(pg.log().find("postgres ignored immediate shutdown") != std::string::npos);
    CHECK(pg.wait_until([&] { return test_util::gone(busy); }, 10s));
    ::kill(busy, SIGKILL);  // a backend the kill missed would spin on
}
