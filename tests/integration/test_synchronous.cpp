// Synchronous durability with real postgres (authority/durability.hpp):
// - ANY 1: the primary's pod killed (-9, its PID 1) at random moments under
//   pgbench and a recording writer, twenty times: no acknowledged commit lost;
// - a synchronous standby lost: commits wait (required) or go on with fewer
//   standbys (preferred), and the setting comes back when it returns.
#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <random>
#include <thread>

#include "harness.hpp"

using namespace harness;

namespace {
using Clock = std::chrono::steady_clock;

Instance& by_name(const std::vector<Instance*>& all, const std::string& n) {
    for (auto* i : all)
        if (i->name == n) return *i;
    FAIL("no member " << n);
    return *all.front();
}

// Three members, the first primary with bench_log, the others its replicas.
void start_three(const std::vector<Instance*>& all, bool as_pid1) {
    all[0]->start(as_pid1);
    REQUIRE(all[0]->wait_ready());
    REQUIRE(all[0]->psql("CREATE TABLE bench_log (id bigint PRIMARY KEY, at timestamptz DEFAULT "
                         "now())")
                .code == 0);
    start_replicas(*all[0], {all[1], all[2]}, as_pid1);
}

// A commit on `i` that must return within `seconds`.
bool commits_within(Instance& i, int seconds, long long id) {
    auto r = sh("timeout " + std::to_string(seconds) + " env PGPASSWORD='" + i.app_password() +
                "' psql -X -A -t 'host=" + i.address + " port=" + std::to_string(i.pg_port) +
                " user=app dbname=app' -c 'INSERT INTO bench_log (id) VALUES (" +
                std::to_string(id) + ")'");
    return r.code == 0;
}
}  // namespace

TEST_CASE("ANY 1: the primary's pod killed twenty times under load loses no acknowledged commit",
          "[synchronous][root]") {
    if (skip_unless_root("PID namespaces")) return;
    Instance m0("y-one"), m1("y-two"), m2("y-three");
    std::vector<Instance*> all{&m0, &m1, &m2};
    start_three(all, true);
    REQUIRE(m0.psql("CREATE TABLE load (id bigserial PRIMARY KEY, v int)").code == 0);
    Instance ctl("y-ctl");
    make_controller(ctl, all, {"--durability", "any 1"});
    ctl.start();
    REQUIRE(ctl.wait_until(
        [&] { return converged_in(ctl, "ANY 1"); }, 60s));
    const std::string script = m0.root + "/load.sql";
    { std::ofstream(script) << "INSERT INTO load (v) VALUES (1);\n"; }

    Writer writer(rw_conninfo(all), m0.root + "/writer", 1);
    REQUIRE(m0.wait_until([&] { return writer.lines() > 50; }, 30s));
    const unsigned seed = std::random_device{}();
    std::mt19937 rng(seed);
    INFO("seed " << seed);
    std::vector<long long> failover_ms, rejoin_ms;
    for (int round = 0; round < 20; ++round) {
        std::string p = primary_of(ctl);
        REQUIRE(!p.empty());
        Instance& primary = by_name(all, p);
        // pgbench -c 8 on the primary until the kill ends it.
        sh("(PGPASSWORD='" + m0.app_password() + "' timeout 60 pgbench -n -c 8 -T 30 -f " +
           script + " 'host=" + primary.address + " port=" + std::to_string(primary.pg_port) +
           " user=app dbname=app' > /dev/null 2>&1 &)");
        std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 1500));
        auto killed = Clock::now();
        primary.signal(SIGKILL);  // PID 1 of the pod: everything in it dies
        REQUIRE(primary.wait_exit(10s).has_value());
        const std::string np = new_primary(ctl, p, 30s);
        REQUIRE(!np.empty());
        failover_ms.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  Clock::now() - killed)
                                  .count());
        // The pod comes back on its data directory and rejoins.
        primary.start(true);
        INFO("round " << round << ": " << p << " -> " << np);
        auto back = Clock::now();
        bool settled = ctl.wait_until(
            [&] { return converged_in(ctl, "ANY 1", np); }, 120s);
        const auto rejoin = std::chrono::duration_cast<std::chrono::milliseconds>(
                                Clock::now() - back)
                                .count();
        rejoin_ms.push_back(rejoin);
        if (!settled || rejoin > 20000)
            WARN("round " << round << " settled after " << rejoin << " ms: "
                          << cluster_of(ctl).dump() << "\n"
                          << primary.log_tail());
        REQUIRE(settled);
    }
    size_t before = writer.lines();
    REQUIRE(m0.wait_until([&] { return writer.lines() > before + 20; }, 30s));
    auto ids = writer.stop();
    std::sort(failover_ms.begin(), failover_ms.end());
    std::sort(rejoin_ms.begin(), rejoin_ms.end());
    WARN("ANY 1: " << ids.size() << " acknowledged commits through 20 kills; failover median "
                   << failover_ms[failover_ms.size() / 2] << " ms, max " << failover_ms.back()
                   << " ms (seen by the test's polls); the killed pod back in sync: median "
                   << rejoin_ms[rejoin_ms.size() / 2] << " ms, max " << rejoin_ms.back() << " ms");
    std::string fin = primary_of(ctl);
    REQUIRE(!fin.empty());
    CHECK(missing(by_name(all, fin), ids) == 0);
    sh("pkill -f 'pgbench -n -c 8' || true");
}

TEST_CASE("a synchronous standby lost: commits wait (required) or go on (preferred)",
          "[synchronous]") {
    for (bool preferred : {false, true}) {
        DYNAMIC_SECTION((preferred ? "preferred" : "required")) {
            Instance m0("z-one"), m1("z-two"), m2("z-three");
            std::vector<Instance*> all{&m0, &m1, &m2};
            start_three(all, false);
            Instance ctl("z-ctl");
            std::vector<std::string> extra = {"--durability", "any 2"};
            if (preferred) extra.insert(extra.end(), {"--data-durability", "preferred"});
            make_controller(ctl, all, extra);
            ctl.start();
            bool ready = ctl.wait_until(
                [&] { return converged_in(ctl, "ANY 2"); }, 60s);
            INFO(cluster_of(ctl).dump() << "\n" << ctl.log_tail());
            REQUIRE(ready);
            Instance& primary = by_name(all, primary_of(ctl));
            CHECK(commits_within(primary, 10, 1));
            // The primary's status shows the recorded set.
            auto st = primary.status();
            INFO(st.dump());
            CHECK(st["authority"]["write_right"]["durability"]["sets"].get<std::string>().find(
                      "2 of (") == 0);
            // One standby gone.
            Instance* lost = nullptr;
            for (auto* i : all)
                if (i != &primary) lost = i;
            lost->signal(SIGTERM);
            REQUIRE(lost->wait_exit(30s).has_value());
            if (!preferred) {
                CHECK_FALSE(commits_within(primary, 4, 2));  // it waits for the standby
                std::this_thread::sleep_for(2s);
                CHECK(sync_names(ctl).rfind("ANY 2", 0) == 0);  // and keeps waiting
            } else {
                // The controller lowers the number: commits go on.
                CHECK(ctl.wait_until([&] { return sync_names(ctl).rfind("ANY 1", 0) == 0; }, 30s));
                CHECK(commits_within(primary, 10, 3));
                CHECK(ctl.log().find("preferred durability: only 1 of 2") != std::string::npos);
            }
            lost->start();
            REQUIRE(ctl.wait_until(
                [&] { return converged_in(ctl, "ANY 2"); }, 90s));
            CHECK(commits_within(primary, 10, 4));
            // Required: the commit that waited went through once the standby came back.
            if (!preferred)
                CHECK(primary.psql("SELECT count(*) FROM bench_log WHERE id = 2").out == "1\n");
        }
    }
}

TEST_CASE("ANY 1: no failover without R + k > N; an operator can force one and is told the cost",
          "[synchronous]") {
    Instance m0("f-one"), m1("f-two"), m2("f-three");
    std::vector<Instance*> all{&m0, &m1, &m2};
    start_three(all, false);
    Instance ctl("f-ctl");
    make_controller(ctl, all, {"--durability", "any 1"});
    ctl.start();
    REQUIRE(ctl.wait_until(
        [&] { return converged_in(ctl, "ANY 1", "f-one"); }, 60s));
    // The primary goes, and one standby's postgres with it (its manager still
    // promises): the other standby alone cannot show it holds every
    // acknowledged commit.
    m0.signal(SIGTERM);
    auto term = cluster_of(ctl)["term"].get<uint64_t>();
    post_json(m2, "/v1/fence", {{"term", term}}, 200);
    REQUIRE(m0.wait_exit(30s).has_value());
    std::string blocked;
    REQUIRE(ctl.wait_until(
        [&] {
            auto c = cluster_of(ctl);
            if (c["failover_blocked"].is_string()) blocked = c["failover_blocked"];
            return !blocked.empty();
        },
        30s));
    CHECK_THAT(blocked, Catch::Contains("1 of 2 standbys"));
    CHECK(primary_of(ctl) == "f-one");  // still the lost one: nobody was promoted
    auto status = sh(manager_binary() + " status --controller " + api_url(ctl));
    CHECK_THAT(status.out, Catch::Contains("Failover blocked"));
    CHECK_THAT(status.out, Catch::Contains("durability any 1 (required)"));

    const std::string cli = manager_binary() + " failover --controller " + api_url(ctl) +
                            " --to f-two --api-token-file " + ctl.token_file;
    CHECK(sh(cli).code == 2);  // --force is required
    auto dry = sh(cli + " --force");
    INFO(dry.out);
    CHECK(dry.code == 3);
    CHECK_THAT(dry.out, Catch::Contains("Nothing was changed"));
    CHECK(m1.status()["role"] == "replica");
    auto forced = sh(cli + " --force --accept-data-loss");
    INFO(forced.out);
    REQUIRE(forced.code == 0);
    CHECK(ctl.wait_until([&] { return m1.status()["role"] == "primary"; }, 30s));
    CHECK(ctl.log().find("\"forced-failover\"") != std::string::npos);
    // The fenced standby follows the new primary; the old one comes back as a replica.
    m0.start();
    REQUIRE(ctl.wait_until([&] { return converged(ctl, "f-two"); }, 90s));
    CHECK(commits_within(m1, 10, 7));
}
