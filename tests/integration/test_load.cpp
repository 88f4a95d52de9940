// A busy primary is still a primary: under pgbench -c 32 the monitor's
// checks may answer late, and that must never look like a lost primary to
// the controller. IM_LOAD_SECONDS sets the length (60 s here; the issue's
// 5 minutes with IM_LOAD_SECONDS=300).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <thread>

#include "harness.hpp"

using namespace harness;

TEST_CASE("under pgbench -c 32 the controller never decides a failover", "[load]") {
    int seconds = 60;
    if (const char* s = std::getenv("IM_LOAD_SECONDS")) seconds = std::max(10, std::atoi(s));
    Instance p("ld-one");
    p.start();
    REQUIRE(p.wait_ready());
    Instance r("ld-two");
    start_replicas(p, {&r});
    Instance ctl("ld-ctl");
    make_controller(ctl, {&p, &r});
    ctl.start();
    REQUIRE(ctl.wait_until([&] { return converged(ctl, "ld-one"); }, 30s));
    auto term_before = cluster_of(ctl)["term"];

    std::string conn = "host=127.0.0.1 port=" + std::to_string(p.pg_port) + " user=app dbname=app";
    std::string env = "PGPASSWORD='" + p.app_password() + "' ";
    auto init = sh(env + pg_bin() + "/pgbench -q -i -s 5 '" + conn + "' 2>&1", true);
    INFO(init.out);
    REQUIRE(init.code == 0);

    std::thread bench([&] {
        auto run = sh(env + pg_bin() + "/pgbench -c 32 -j 2 -T " + std::to_string(seconds) +
                          " -n '" + conn + "' 2>&1 | tail -4",
                      true);
        std::printf("pgbench: %s\n", run.out.c_str());
    });
    int polls = 0, not_ready = 0, other_primary = 0;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < end) {
        std::this_thread::sleep_for(1s);  // a poll interval of the test's own, not a wait
        ++polls;
        auto c = cluster_of(ctl);
        if (c.value("primary", nlohmann::json()) != "ld-one") ++other_primary;
        auto ready = p.get("/readyz");
        if (!ready || ready->status != 200) ++not_ready;
    }
    bench.join();
    auto c = cluster_of(ctl);
    std::vector<std::string> actions;
    for (const auto& d : c["decisions"]) actions.push_back(d.value("action", ""));
    std::printf("load: %d s, %d polls, readiness failed %d, primary not held %d\n", seconds, polls,
                not_ready, other_primary);
    INFO(nlohmann::json(actions).dump());
    CHECK(not_ready == 0);
    CHECK(other_primary == 0);
    for (const auto& a : actions) {
        CHECK(a != "primary-lost");
        CHECK(a != "failover");
    }
    CHECK(c["term"] == term_before);  // no promotion of any kind
}
