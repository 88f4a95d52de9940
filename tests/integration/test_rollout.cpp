// Rolling restarts on real instances under a recording writer: a setting
// that needs a restart, changed in the cluster's parameters file, restarts
// the replicas one at a time, then switches over once, and the old primary
// comes back as a replica with it; no failover, no acknowledged commit lost.
// A member stopped mid-rollout holds it until it returns. A decrease of a
// setting hot standby depends on restarts the primary first, in place. An
// operator's restart goes the same way; bad requests change nothing.
#include <signal.h>

#include <catch2/catch.hpp>
#include <thread>

#include "harness.hpp"

using namespace std::chrono_literals;
using namespace harness;

namespace {
nlohmann::json rollout_of(Instance& ctl) {
    auto c = cluster_of(ctl);
    return c.is_object() && c["rollout"].is_object() ? c["rollout"] : nlohmann::json::object();
}
// The controller's decisions of one action, oldest first.
std::vector<nlohmann::json> decisions(Instance& ctl, const std::string& action) {
    std::vector<nlohmann::json> out;
    const auto c = cluster_of(ctl);
    for (const auto& d : c.value("decisions", nlohmann::json::array()))
        if (d.value("action", "") == action) out.insert(out.begin(), d);
    return out;
}
// Every decision the controller logged (its /v1/cluster keeps only the last 30).
size_t logged(Instance& ctl, const std::string& action) {
    const std::string log = ctl.log(), needle = "\"action\":\"" + action + "\"";
    size_t n = 0;
    for (auto at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
    return n;
}
bool settled(Instance& ctl, const std::vector<Instance*>& all, const std::string& value) {
    if (rollout_of(ctl).value("active", true) || !converged(ctl)) return false;
    for (auto* i : all)
        if (show_setting(*i, "max_connections") != value) return false;
    return true;
}
long long longest_gap_ms(const std::vector<Writer::Commit>& commits, long long from_ms) {
    long long gap = 0;
    for (size_t k = 1; k < commits.size(); ++k)
        if (commits[k].ms >= from_ms) gap = std::max(gap, commits[k].ms - commits[k - 1].ms);
    return gap;
}
long long now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}
}  // namespace

TEST_CASE("rolling restart: replicas first, one switchover, the old primary last; 0 lost",
          "[rollout]") {
    Instance a("ro-a"), b("ro-b"), c("ro-c");
    std::vector<Instance*> all{&a, &b, &c};
    const std::string file = a.root + "/cluster.conf";
    write_as_user(file, "work_mem = 8MB\n");
    for (auto* i : all) i->extra_args = {"--pg-parameters-file", file};
    a.start();
    REQUIRE(a.wait_ready());
    REQUIRE(a.psql("CREATE TABLE bench_log (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")
                .code == 0);
    start_replicas(a, {&b, &c});
    Instance ctl("ro-ctl");
    make_controller(ctl, all);
    ctl.start();
    REQUIRE(ctl.wait_until([&] { return converged(ctl, "ro-a"); }, 60s));
    REQUIRE(a.wait_until([&] { return holds_write_right(a); }, 10s));

    Writer writer(rw_conninfo(all),
                  a.root + "/writer", 1);
    REQUIRE(a.wait_until([&] { return writer.lines() > 50; }, 30s));

    // A restart-only setting: replicas one at a time (ro-b, then ro-c), a
    // switchover, the old primary restarted by its demotion.
    const long long began = now_ms();
    write_as_user(file,
                  "work_mem = 8MB\nmax_connections = 150\n"
                  "shared_preload_libraries = 'pg_stat_statements'\n");
    // ro-c stops while ro-b restarts: the rollout waits for it.
    REQUIRE(ctl.wait_until(
        [&] {
            auto r = rollout_of(ctl);
            return r.value("restarting", nlohmann::json::array()).dump().find("ro-b") !=
                   std::string::npos;
        },
        30s));
    c.signal(SIGTERM);
    REQUIRE(c.wait_exit(30s).has_value());
    REQUIRE(ctl.wait_until(
        [&] {
            auto st = rollout_of(ctl)["step"];
            return st.is_object() && st.value("kind", "") == "wait" && st["member"] == "ro-c";
        },
        30s));
    std::this_thread::sleep_for(3s);
    {
        auto r = rollout_of(ctl);
        INFO(r.dump());
        CHECK(r["step"]["member"] == "ro-c");
        CHECK(r["switchovers"] == 0);
        CHECK(primary_of(ctl) == "ro-a");
    }
    c.start();  // back with its data: the file is read before postgres starts
    REQUIRE(ctl.wait_until([&] { return settled(ctl, all, "150"); }, 120s));
    auto commits = writer.stop_commits();
    std::vector<std::string> ids;
    for (const auto& k : commits) ids.push_back(std::to_string(k.id));
    const std::string primary = primary_of(ctl);
    Instance& np = primary == "ro-b" ? b : primary == "ro-c" ? c : a;
    INFO(ctl.log_tail());
    CHECK(primary != "ro-a");
    CHECK(missing(np, ids) == 0);
    CHECK(logged(ctl, "switchover-done") == 1);
    CHECK(logged(ctl, "failover") == 0);
    CHECK(logged(ctl, "rollout-wait") >= 1);
    // The order: ro-b restarted before the switchover; ro-a never in place.
    auto restarts = decisions(ctl, "rollout-restart");
    REQUIRE(!restarts.empty());
    CHECK(restarts.front()["member"] == "ro-b");
    for (const auto& d : restarts) CHECK(d["member"] != "ro-a");
    auto done = decisions(ctl, "rollout-done");
    CHECK(done.size() == 1);
    const long long gap = longest_gap_ms(commits, began);
    std::printf("rolling restart (max_connections, 3 members, one stopped mid-way): %zu commits, "
                "0 of them lost: %d missing; longest write gap %lld ms\n",
                commits.size(), missing(np, ids), gap);

    // The extension through the same file (a restart path): in use on the new primary.
    CHECK(np.psql_local("CREATE EXTENSION pg_stat_statements; "
                        "SELECT count(*) > 0 FROM pg_stat_statements",
                        "app")
              .out.find("t") != std::string::npos);

    // A decrease: hot standby needs at least the primary's value, so the
    // primary restarts first, in place; no switchover, no failover.
    write_as_user(file,
                  "work_mem = 8MB\nmax_connections = 120\n"
                  "shared_preload_libraries = 'pg_stat_statements'\n");
    REQUIRE(ctl.wait_until([&] { return rollout_of(ctl).value("active", false); }, 30s));
    REQUIRE(ctl.wait_until([&] { return settled(ctl, all, "120"); }, 120s));
    CHECK(primary_of(ctl) == primary);
    restarts = decisions(ctl, "rollout-restart");
    REQUIRE(restarts.size() >= 3);
    CHECK(restarts[restarts.size() - 3]["member"] == primary);
    CHECK(logged(ctl, "switchover-done") == 1);
    CHECK(logged(ctl, "failover") == 0);

    // An operator's restart: bad requests change nothing.
    CHECK(ctl.post("/v1/restart", R"({"member": "nobody"})")->status == 404);
    CHECK(ctl.post("/v1/restart", R"({})")->status == 400);
    CHECK(ctl.post("/v1/restart", R"({"member": "ro-b", "all": true})")->status == 400);
    CHECK(ctl.post("/v1/restart", R"({"member": "ro-b", "x": 1})")->status == 400);
    CHECK(ctl.post("/v1/restart", R"({"member": "ro-b"})", "wrong")->status == 401);
    CHECK(ctl.post("/v1/restart", "{nope")->status == 400);
    // One replica, with the command line: it restarts, nothing else does.
    const std::string replica = primary == "ro-b" ? "ro-c" : "ro-b";
    Instance& r = replica == "ro-b" ? b : c;
    const std::string before = r.status()["postgres"]["start_time"];
    auto cli = sh(manager_binary() + " restart --controller " + api_url(ctl) + " --member " +
                  replica + " --api-token-file " + ctl.token_file);
    INFO(cli.out);
    CHECK(cli.code == 0);
    REQUIRE(r.wait_until(
        [&] {
            auto s = r.status();
            return s["postgres"]["start_time"].is_string() &&
                   s["postgres"]["start_time"] != before && s["ready"] == true;
        },
        60s));
    REQUIRE(ctl.wait_until([&] { return settled(ctl, all, "120"); }, 60s));
    CHECK(primary_of(ctl) == primary);
    CHECK(logged(ctl, "switchover-done") == 1);
    auto table = sh(manager_binary() + " status --controller " + api_url(ctl));
    CHECK_THAT(table.out, Catch::Contains("RESTART"));
}
