// End to end, across real network boundaries: three instances, each in its
// own network namespace (and its manager PID 1 of its own PID namespace),
// joined by a bridge in a namespace of the test's own, and the controller.
// A partition is a link set down. Needs root; skipped with a warning otherwise.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "harness.hpp"

using namespace harness;


TEST_CASE(
    "end to end: controller lost, partition, lagging replica, synchronous failover, "
    "switchover under load",
    "[e2e][root]") {
    if (skip_unless_root("network and PID namespaces")) return;
    NetLab lab(3);
    Instance m0("e-one"), m1("e-two"), m2("e-three");
    std::vector<Instance*> all = {&m0, &m1, &m2};
    for (int i = 0; i < 3; ++i) lab.place(*all[i], i);
    m0.start(true);
    REQUIRE(m0.wait_ready());
    REQUIRE(m0.psql("CREATE TABLE bench_log (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")
                .code == 0);
    start_replicas(m0, {&m1, &m2}, true);
    auto by_name = [&](const std::string& n) -> Instance& {
        for (auto* i : all)
            if (i->name == n) return *i;
        FAIL("no member " << n);
        return m0;
    };
    std::string rw = "host=" + lab.address(0) + "," + lab.address(1) + "," + lab.address(2) +
                     " port=5432 user=app dbname=app password=" + m0.app_password() +
                     " target_session_attrs=read-write connect_timeout=2";

    auto ctl = std::make_unique<Instance>("e-ctl");
    make_controller(*ctl, all);
    ctl->start();
    REQUIRE(ctl->wait_until([&] { return converged(*ctl, "e-one"); }, 60s));
    uint64_t first_term = cluster_of(*ctl)["term"];

    {  // controller_lost
        // The controller dies: the primary renews its grants itself, writes go on.
        ctl->signal(SIGKILL);
        REQUIRE(ctl->wait_exit(10s).has_value());
        std::this_thread::sleep_for(3s);
        CHECK(m0.status()["role"] == "primary");
        CHECK(m0.psql("INSERT INTO bench_log (id) VALUES (1)").code == 0);
        // A new controller takes over with a higher term.
        ctl = std::make_unique<Instance>("e-ctl2");
        make_controller(*ctl, all);
        ctl->start();
        REQUIRE(ctl->wait_until([&] { return converged(*ctl, "e-one"); }, 60s));
        CHECK(cluster_of(*ctl)["term"].get<uint64_t>() > first_term);
    }

    {  // partition
        // Never two writable primaries: watched through each instance's own
        // socket, which a network partition does not cut.
        std::atomic<bool> stop{false};
        std::atomic<int> most_writable{0};
        std::thread probe([&] {
            while (!stop) {
                int writable = 0;
                for (auto* i : all)
                    if (i->psql_local("SELECT pg_is_in_recovery()").out == "f\n") ++writable;
                most_writable = std::max(most_writable.load(), writable);
                std::this_thread::sleep_for(50ms);
            }
        });
        REQUIRE(m0.wait_until([&] { return holds_write_right(m0); }, 10s));
        lab.link(0, false);
        // The isolated primary fences itself; another is promoted.
        CHECK(m0.wait_until([&] { return m0.psql_local("SELECT 1").code != 0; }, 10s));
        REQUIRE(ctl->wait_until(
            [&] {
                auto p = primary_of(*ctl);
                return !p.empty() && p != "e-one";
            },
            30s));
        Instance& np = by_name(primary_of(*ctl));
        REQUIRE(np.wait_until(
            [&] { return np.psql("INSERT INTO bench_log (id) VALUES (2)").code == 0; }, 30s));
        // The link is back: the old primary rewinds and follows.
        lab.link(0, true);
        REQUIRE(ctl->wait_until([&] { return converged(*ctl, np.name); }, 90s));
        stop = true;
        probe.join();
        CHECK(most_writable.load() == 1);
        CHECK(m0.wait_until(
            [&] { return m0.psql("SELECT count(*) FROM bench_log WHERE id = 2").out == "1\n"; },
            30s));
    }

    {  // lagging_replica
        // One replica stops receiving WAL (its WAL receiver frozen) while the
        // primary writes; then the primary's pod is killed: the other replica,
        // which has everything, is chosen.
        std::string p = primary_of(*ctl);
        Instance& primary = by_name(p);
        std::vector<Instance*> replicas;
        for (auto* i : all)
            if (i->name != p) replicas.push_back(i);
        Instance& behind = *replicas[0];
        Instance& ahead = *replicas[1];
        std::string receiver = behind.psql_local("SELECT pid FROM pg_stat_wal_receiver").out;
        REQUIRE(!receiver.empty());
        receiver.pop_back();
        // That PID is the one inside the member's PID namespace: signal it there.
        auto in_pod = [&](const std::string& sig) {
            return sh("nsenter --target " + std::to_string(behind.manager_pid()) +
                      " --pid -- /bin/kill -" + sig + " " + receiver)
                .code;
        };
        REQUIRE(in_pod("STOP") == 0);
        REQUIRE(
            primary.psql("INSERT INTO bench_log (id) SELECT g FROM generate_series(100, 5099) g")
                .code == 0);
        REQUIRE(ahead.wait_until(
            [&] {
                return ahead.psql("SELECT count(*) FROM bench_log WHERE id >= 100").out == "5000\n";
            },
            30s));
        REQUIRE(ctl->wait_until(
            [&] {
                auto c = cluster_of(*ctl);
                for (const auto& m : c["members"])
                    if (m["name"] == ahead.name && m["lsn"] != nlohmann::json())
                        for (const auto& o : c["members"])
                            if (o["name"] == behind.name) return m["lsn"] != o["lsn"];
                return false;
            },
            10s));
        primary.signal(SIGKILL);
        REQUIRE(primary.wait_exit(10s).has_value());
        REQUIRE(ctl->wait_until(
            [&] {
                auto np = primary_of(*ctl);
                return !np.empty() && np != p;
            },
            30s));
        CHECK(primary_of(*ctl) == ahead.name);
        CHECK(in_pod("CONT") == 0);
        // The killed pod comes back on its data directory and rejoins as a replica.
        primary.start(true);
        REQUIRE(ctl->wait_until([&] { return converged(*ctl, ahead.name); }, 90s));
    }

    {  // synchronous_failover
        // A controller with --synchronous 1: a failover loses no committed transaction.
        ctl->signal(SIGTERM);
        REQUIRE(ctl->wait_exit(10s).has_value());
        ctl = std::make_unique<Instance>("e-ctl3");
        make_controller(*ctl, all, {"--synchronous", "1"});
        ctl->start();
        REQUIRE(ctl->wait_until(
            [&] {
                auto c = cluster_of(*ctl);
                if (!converged(*ctl)) return false;
                for (const auto& m : c["members"])
                    if (m["role"] == "primary")
                        return m["sync"].get<std::string>().find("FIRST 1") == 0;
                return false;
            },
            60s));
        std::string p = primary_of(*ctl);
        Writer writer(rw, "/tmp/im-e2e-writer-" + std::to_string(::getpid()), 1000000);
        REQUIRE(m0.wait_until([&] { return writer.lines() > 200; }, 30s));
        by_name(p).signal(SIGKILL);
        REQUIRE(by_name(p).wait_exit(10s).has_value());
        REQUIRE(ctl->wait_until(
            [&] {
                auto np = primary_of(*ctl);
                return !np.empty() && np != p;
            },
            30s));
        size_t before = writer.lines();
        REQUIRE(m0.wait_until([&] { return writer.lines() > before + 100; }, 30s));
        auto ids = writer.stop();
        std::string np = primary_of(*ctl);
        INFO(ids.size() << " rows committed through the failover " << p << " -> " << np);
        CHECK(missing(by_name(np), ids) == 0);
        by_name(p).start(true);
        REQUIRE(ctl->wait_until([&] { return converged(*ctl, np); }, 90s));
    }

    {  // switchover_under_load
        std::string p = primary_of(*ctl);
        std::string target;
        for (auto* i : all)
            if (i->name != p) target = i->name;
        Writer writer(rw, "/tmp/im-e2e-writer2-" + std::to_string(::getpid()), 2000000);
        REQUIRE(m0.wait_until([&] { return writer.lines() > 200; }, 30s));
        auto sw = sh(manager_binary() + " switchover --controller " + api_url(*ctl) + " --to " +
                     target + " --api-token-file " + ctl->token_file);
        INFO(sw.out);
        REQUIRE(sw.code == 0);
        size_t before = writer.lines();
        REQUIRE(m0.wait_until([&] { return writer.lines() > before + 100; }, 30s));
        auto ids = writer.stop();
        CHECK(primary_of(*ctl) == target);
        CHECK(missing(by_name(target), ids) == 0);
        REQUIRE(ctl->wait_until([&] { return converged(*ctl, target); }, 60s));
    }
}
