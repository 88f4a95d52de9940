// The manager as PID 1 of its own PID namespace, as in a container.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.hpp"

using namespace harness;

namespace {
// Zombies whose parent is `parent` (as seen from this namespace).
int zombies_of(pid_t parent) {
    int n = 0;
    for (auto& e : std::filesystem::directory_iterator("/proc")) {
        std::ifstream in(e.path() / "stat");
        std::string line;
        if (!std::getline(in, line)) continue;
        auto close = line.rfind(')');
        if (close == std::string::npos) continue;
        char state = 0;
        pid_t ppid = 0;
        std::istringstream rest(line.substr(close + 2));
        rest >> state >> ppid;
        if (state == 'Z' && ppid == parent) ++n;
    }
    return n;
}
std::string status_line(pid_t pid, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key + ":", 0) == 0) return line.substr(key.size() + 1);
    return "";
}
// The postmaster's PID as seen from here (status reports the namespace's PID).
pid_t host_postmaster(pid_t manager) {
    std::ifstream in("/proc/" + std::to_string(manager) + "/task/" + std::to_string(manager) +
                     "/children");
    pid_t child;
    while (in >> child) {
        std::ifstream cmd("/proc/" + std::to_string(child) + "/cmdline");
        std::string argv0;
        std::getline(cmd, argv0, '\0');
        if (argv0.find("postgres") != std::string::npos) return child;
    }
    return -1;
}
}  // namespace

TEST_CASE("as PID 1: orphans are reaped, crashes handled, SIGTERM exits 0", "[pid1][root]") {
    if (skip_unless_root("PID namespaces")) return;
    Instance pg("pid1");
    pg.start(true);
    REQUIRE(pg.wait_ready());
    pid_t mgr = pg.manager_pid();
    REQUIRE(mgr > 0);
    // NSpid: <pid here> 1 -> it is PID 1 inside its namespace.
    auto nspid = status_line(mgr, "NSpid");
    INFO(nspid);
    CHECK(nspid.substr(nspid.find_last_of(" \t") + 1) == "1");

    // Orphans: a backend runs a shell that leaves children behind; they are
    // re-parented to PID 1, which must reap them.
    auto r = pg.psql_local(
        "COPY (SELECT 1) TO PROGRAM 'for i in 1 2 3 4 5; do (sleep 0.2 &) ; done; cat >/dev/null'");
    INFO(r.out);
    REQUIRE(r.code == 0);
    std::this_thread::sleep_for(1500ms);
    CHECK(zombies_of(mgr) == 0);

    // Kill the postmaster: its backends become orphans of PID 1, get reaped,
    // and postgres comes back.
    pid_t postmaster = host_postmaster(mgr);
    REQUIRE(postmaster > 0);
    REQUIRE(::kill(postmaster, SIGKILL) == 0);
    REQUIRE(pg.wait_until([&] { return pg.status()["restart_count"] == 1; }, 30s));
    REQUIRE(pg.wait_ready(30s));
    std::this_thread::sleep_for(500ms);
    CHECK(zombies_of(mgr) == 0);

    pg.signal(SIGTERM);
    auto code = pg.wait_exit(60s);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    CHECK(pg.control_state() == "shut down");
}
