// Partitions that used to give two writable primaries, across real network
// boundaries (each instance in its own network namespace, its manager PID 1
// of its own PID namespace), with a recording writer on each side: the old
// side's last acknowledged commit must come before the new side's first.
//
// - asymmetric: the primary loses the controller and one replica but still
//   reaches the other, which may never be promoted (--priority -1);
// - two controllers: the controller is cut off together with the primary,
//   and a replacement starts on the other side.
// Needs root; skipped with a warning otherwise.
#include <signal.h>

#include <catch2/catch.hpp>
#include <thread>

#include "harness.hpp"

using namespace harness;

namespace {
using Clock = std::chrono::steady_clock;

// Blackhole routes between two endpoints, both ways: `ns` empty is the
// test's own namespace (where the controller runs unless placed).
struct Cut {
    std::vector<std::string> undo;
    void both(const std::string& ns_a, const std::string& addr_a, const std::string& ns_b,
              const std::string& addr_b) {
        one(ns_a, addr_b);
        one(ns_b, addr_a);
    }
    void one(const std::string& ns, const std::string& to) {
        std::string in = ns.empty() ? "" : "ip -n " + ns + " ";
        REQUIRE(sh(in.empty() ? "ip route add blackhole " + to + "/32"
                              : in + "route add blackhole " + to + "/32")
                    .code == 0);
        undo.push_back(in.empty() ? "ip route del blackhole " + to + "/32"
                                  : in + "route del blackhole " + to + "/32");
    }
    void heal() {
        for (const auto& u : undo) sh(u);
        undo.clear();
    }
    ~Cut() { heal(); }
};

std::string app_conninfo(const std::vector<std::string>& hosts, const Instance& any) {
    std::string h;
    for (const auto& a : hosts) h += (h.empty() ? "" : ",") + a;
    return "host=" + h + " port=5432 user=app dbname=app password=" + any.app_password() +
           " target_session_attrs=read-write connect_timeout=1";
}

struct Sides {
    long long old_last = 0, new_first = 0;
    size_t old_count = 0, new_count = 0;
};

Sides sides(const std::vector<Writer::Commit>& old_side, const std::vector<Writer::Commit>& new_side,
            long long cut_ms) {
    Sides s;
    for (const auto& c : old_side)
        if (c.ms >= cut_ms) s.old_last = std::max(s.old_last, c.ms), ++s.old_count;
    for (const auto& c : new_side)
        if (c.ms >= cut_ms) {
            s.new_first = s.new_first ? std::min(s.new_first, c.ms) : c.ms;
            ++s.new_count;
        }
    return s;
}

long long unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct Cluster {
    NetLab lab{3};
    Instance m0{"p-one"}, m1{"p-two"}, m2{"p-three"};
    std::vector<Instance*> all{&m0, &m1, &m2};
    Cluster() {
        for (int i = 0; i < 3; ++i) lab.place(*all[i], i);
        m0.start(true);
        REQUIRE(m0.wait_ready());
        REQUIRE(
            m0.psql("CREATE TABLE bench_log (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")
                .code == 0);
        start_replicas(m0, {&m1, &m2}, true);
    }
    Instance& by_name(const std::string& n) {
        for (auto* i : all)
            if (i->name == n) return *i;
        FAIL("no member " << n);
        return m0;
    }
};
}  // namespace

namespace {
// How many of `commits` the primary lacks once the cluster settled: asked on
// whichever member is primary now, until one answers (-1: none did).
int lost_after_heal(Instance& ctl, Cluster& c, const std::vector<Writer::Commit>& commits) {
    std::vector<std::string> ids;
    for (const auto& w : commits) ids.push_back(std::to_string(w.id));
    int lost = -1;
    ctl.wait_until(
        [&] {
            auto now = primary_of(ctl);
            if (now.empty()) return false;
            lost = missing(c.by_name(now), ids);
            return lost >= 0;
        },
        30s);
    return lost;
}
}  // namespace

TEST_CASE("asymmetric partition: the old primary's last commit precedes the new one's first",
          "[partition][root]") {
    if (skip_unless_root("network and PID namespaces")) return;
    for (bool unpromotable : {true, false}) {
        DYNAMIC_SECTION((unpromotable ? "h3 never promoted" : "default priorities")) {
            Cluster c;
            Instance ctl("p-ctl");
            std::vector<std::string> extra;
            if (unpromotable) extra = {"--priority", "p-three=-1"};
            make_controller(ctl, c.all, extra);
            ctl.start();
            REQUIRE(ctl.wait_until([&] { return converged(ctl, "p-one"); }, 60s));
            REQUIRE(c.m0.wait_until([&] { return holds_write_right(c.m0); }, 10s));

            // A writer beside the primary (its own namespace: the cut does not
            // reach it) and one on the other side, to whichever is writable there.
            Writer old_side(app_conninfo({c.lab.address(0)}, c.m0), c.m0.root + "/w-old", 1,
                            c.lab.ns(0));
            Writer new_side(app_conninfo({c.lab.address(1), c.lab.address(2)}, c.m0),
                            c.m0.root + "/w-new", 10'000'000);
            REQUIRE(c.m0.wait_until([&] { return old_side.lines() > 20; }, 10s));

            // p-one loses the controller and p-two; it still reaches p-three.
            Cut cut;
            long long cut_ms = unix_ms();
            cut.both(c.lab.ns(0), c.lab.address(0), "", c.lab.host_address());
            cut.both(c.lab.ns(0), c.lab.address(0), c.lab.ns(1), c.lab.address(1));
            const std::string np = new_primary(ctl, "p-one", 30s);
            REQUIRE(!np.empty());
            if (unpromotable) CHECK(np == "p-two");
            Instance& fresh = c.by_name(np);
            REQUIRE(fresh.wait_until([&] { return new_side.lines() > 20; }, 30s));
            std::this_thread::sleep_for(3s);  // the partition lasts
            CHECK(c.m0.psql_local("SELECT pg_is_in_recovery()").out != "f\n");
            cut.heal();
            REQUIRE(ctl.wait_until([&] { return converged(ctl, np); }, 90s));
            auto olds = old_side.stop_commits();
            auto news = new_side.stop_commits();
            auto s = sides(olds, news, cut_ms);
            WARN((unpromotable ? "h3 unpromotable" : "default priorities")
                 << ": old side committed " << s.old_count << " after the cut, the last "
                 << (s.old_count ? s.old_last - cut_ms : 0) << " ms after it; new side first at "
                 << s.new_first - cut_ms << " ms, " << news.size() << " acknowledged there");
            REQUIRE(s.new_count > 0);
            if (s.old_count > 0) CHECK(s.old_last < s.new_first);
            // Everything the new side acknowledged survived the heal.
            CHECK(lost_after_heal(ctl, c, news) == 0);
        }
    }
}

TEST_CASE("two controllers: one cut off with the primary, a new one on the other side",
          "[partition][root]") {
    if (skip_unless_root("network and PID namespaces")) return;
    Cluster c;
    // The first controller runs beside the primary: cut off together with it.
    Instance old_ctl("p-ctl-old");
    make_controller(old_ctl, c.all);
    old_ctl.netns = c.lab.ns(0);
    old_ctl.start();
    REQUIRE(c.m0.wait_until([&] { return holds_write_right(c.m0); }, 60s));
    Writer old_side(app_conninfo({c.lab.address(0)}, c.m0), c.m0.root + "/w-old", 1, c.lab.ns(0));
    Writer new_side(app_conninfo({c.lab.address(1), c.lab.address(2)}, c.m0), c.m0.root + "/w-new",
                    10'000'000);
    REQUIRE(c.m0.wait_until([&] { return old_side.lines() > 20; }, 10s));

    long long cut_ms = unix_ms();
    c.lab.link(0, false);
    // The platform starts a replacement controller on the other side.
    Instance new_ctl("p-ctl-new");
    make_controller(new_ctl, c.all);
    new_ctl.start();
    const std::string np = new_primary(new_ctl, "p-one", 60s);
    REQUIRE(!np.empty());
    Instance& fresh = c.by_name(np);
    REQUIRE(fresh.wait_until([&] { return new_side.lines() > 20; }, 30s));
    std::this_thread::sleep_for(3s);
    CHECK(c.m0.psql_local("SELECT pg_is_in_recovery()").out != "f\n");
    c.lab.link(0, true);
    REQUIRE(new_ctl.wait_until([&] { return converged(new_ctl, np); }, 90s));
    auto olds = old_side.stop_commits();
    auto news = new_side.stop_commits();
    auto s = sides(olds, news, cut_ms);
    WARN("two controllers: old side committed " << s.old_count << " after the cut, the last "
                                                << (s.old_count ? s.old_last - cut_ms : 0)
                                                << " ms after it; new side first at "
                                                << s.new_first - cut_ms << " ms, " << news.size() << " acknowledged there");
    REQUIRE(s.new_count > 0);
    if (s.old_count > 0) CHECK(s.old_last < s.new_first);
    // The old controller learned the newer term and stands by.
    CHECK(old_ctl.wait_until(
        [&] { return old_ctl.log().find("\"stand-by\"") != std::string::npos; }, 30s));
}

TEST_CASE("ANY 1: a primary cut off from everyone cannot commit alone, and nothing it acknowledged "
          "is lost",
          "[partition][root]") {
    if (skip_unless_root("network and PID namespaces")) return;
    Cluster c;
    Instance ctl("p-ctl-sync");
    make_controller(ctl, c.all, {"--durability", "any 1"});
    ctl.start();
    REQUIRE(ctl.wait_until([&] { return converged_in(ctl, "ANY 1", "p-one"); }, 60s));
    Writer old_side(app_conninfo({c.lab.address(0)}, c.m0), c.m0.root + "/w-old", 1, c.lab.ns(0));
    Writer new_side(app_conninfo({c.lab.address(1), c.lab.address(2)}, c.m0), c.m0.root + "/w-new",
                    10'000'000);
    REQUIRE(c.m0.wait_until([&] { return old_side.lines() > 20; }, 10s));
    long long cut_ms = unix_ms();
    c.lab.link(0, false);
    const std::string np = new_primary(ctl, "p-one", 30s);
    REQUIRE(!np.empty());
    Instance& fresh = c.by_name(np);
    REQUIRE(fresh.wait_until([&] { return new_side.lines() > 20; }, 30s));
    std::this_thread::sleep_for(3s);
    c.lab.link(0, true);
    REQUIRE(ctl.wait_until([&] { return converged(ctl, np); }, 90s));
    auto olds = old_side.stop_commits();
    auto news = new_side.stop_commits();
    auto s = sides(olds, news, cut_ms);
    WARN("ANY 1, primary cut off: old side acknowledged " << s.old_count << " after the cut (the last "
         << (s.old_count ? s.old_last - cut_ms : 0) << " ms after it); new side first at "
         << s.new_first - cut_ms << " ms");
    REQUIRE(s.new_count > 0);
    if (s.old_count > 0) CHECK(s.old_last < s.new_first);
    // Alone it cannot commit: whatever it acknowledged was flushed by a
    // standby, and the failover promoted one holding it. Every acknowledged
    // commit of both sides is on the primary after the heal.
    auto both = olds;
    both.insert(both.end(), news.begin(), news.end());
    CHECK(lost_after_heal(ctl, c, both) == 0);
}
