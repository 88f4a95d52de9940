// The rolling restart's rule (controller/rollout.hpp), driven through whole
// rollouts on a modelled cluster: the order of the steps, what it waits
// for, and reads that are older than the last step.
#include <catch2/catch.hpp>
#include <cstdio>

#include "controller/rollout.hpp"

using namespace im;
using rollout::Step;

namespace {
// A cluster as the rule sees it: which member is primary, each member's
// postgres start time and pending settings.
struct Model {
    std::vector<std::string> names;
    std::string primary;
    std::map<std::string, int> started;  // a restart counts up
    std::map<std::string, std::vector<std::string>> pending;
    std::set<std::string> down;
    std::map<std::string, uint64_t> behind;
    bool primary_first = false;  // the pending settings are lowered ones
    std::vector<std::string> raised;  // and these raised, on every member with pending settings
    std::set<std::string> out_of_date;  // pods of an older template (cleared by a new pod)
    std::map<std::string, std::string> version;  // the file version each applied ("" unsettled)

    std::string start_time(const std::string& n) const {
        return "2026-12-02 10:00:0" + std::to_string(started.count(n) ? started.at(n) : 0);
    }
    std::vector<MemberView> views() const {
        std::vector<MemberView> out;
        const std::string phost = "10.0.0." + primary.substr(1);
        for (const auto& n : names) {
            const bool p = n == primary;
            // Positions as status writes them (hexadecimal): the primary's
            // current one, a replica's received = replayed.
            const uint64_t lsn = 100000000 - (behind.count(n) ? behind.at(n) : 0);
            char hex[32];
            std::snprintf(hex, sizeof hex, "0/%llX", static_cast<unsigned long long>(lsn));
            nlohmann::json status = {
                {"role", p ? "primary" : "replica"},
                {"ready", true},
                {"term", 1},
                {"standby", !p},
                {"authority", {{"write_term", 1}, {"write_right", {{"may_write", true}}}}},
                {"postgres",
                 {{"running", true},
                  {"system_identifier", "42"},
                  {"port", 5432},
                  {"timeline", 1},
                  {"start_time", start_time(n)},
                  {"current_lsn", p ? hex : ""}}},
                {"parameters",
                 {{"pending_restart", pending.count(n) ? pending.at(n) : std::vector<std::string>{}},
                  {"primary_first", primary_first && pending.count(n) > 0},
                  {"lowered", primary_first && pending.count(n) ? pending.at(n)
                                                                : std::vector<std::string>{}},
                  {"raised", pending.count(n) ? raised : std::vector<std::string>{}},
                  {"version", version.count(n) ? version.at(n) : "v1"},
                  {"pending_known", !version.count(n) || !version.at(n).empty()}}},
                {"replication",
                 {{"received_lsn", p ? "" : hex},
                  {"replayed_lsn", p ? "" : hex},
                  {"streaming", !p},
                  {"upstream", {{"host", p ? "" : phost}, {"port", "5432"}}}}}};
            out.push_back(member_view(n, "http://10.0.0." + n.substr(1) + ":8000",
                                      down.count(n) ? nlohmann::json() : status));
        }
        return out;
    }
    std::optional<size_t> primary_index() const {
        for (size_t i = 0; i < names.size(); ++i)
            if (names[i] == primary && !down.count(primary)) return i;
        return std::nullopt;
    }
    void restart(const std::string& n) {
        ++started[n];
        pending.erase(n);
    }
    void replace_pod(const std::string& n) {
        restart(n);
        out_of_date.erase(n);
    }
};

// Runs the rule to the end, carrying each step out on the model and keeping
// restarts in flight until the model shows them done. The steps taken.
std::vector<std::string> run(Model& m, rollout::Input in, int limit = 20) {
    std::vector<std::string> steps;
    for (int i = 0; i < limit; ++i) {
        // Settle what is done (the controller does this before each step).
        auto views = m.views();
        for (auto it = in.in_flight.begin(); it != in.in_flight.end();)
            it = m.start_time(it->first) != it->second ? in.in_flight.erase(it) : std::next(it);
        for (auto it = in.requested.begin(); it != in.requested.end();)
            it = m.start_time(it->first) != it->second ? in.requested.erase(it) : std::next(it);
        in.out_of_date.clear();
        for (const auto& n : m.out_of_date) in.out_of_date[n] = "older pod revision";
        auto step = rollout::next_step(views, m.primary_index(), in);
        if (step.kind == Step::Kind::idle) return steps;
        if (step.kind == Step::Kind::wait) {
            steps.push_back("wait " + step.member);
            return steps;
        }
        if (step.kind == Step::Kind::restart) {
            steps.push_back((step.replace_pod ? "replace " : "restart ") + step.member +
                            (step.in_place_primary ? " (primary)" : ""));
            in.in_flight[step.member] = m.start_time(step.member);
            if (step.replace_pod)
                m.replace_pod(step.member);
            else
                m.restart(step.member);  // an out-of-date pod stays out of date
        } else {
            steps.push_back("switchover " + step.member);
            const std::string old = m.primary;
            in.in_flight[old] = m.start_time(old);
            m.primary = step.member;
            m.restart(old);  // demoted: it starts again as a replica
        }
    }
    steps.push_back("no end");
    return steps;
}

Model three() {
    Model m;
    m.names = {"n1", "n2", "n3"};
    m.primary = "n1";
    return m;
}
}  // namespace

TEST_CASE("rollout: replicas one at a time, then one switchover", "[rollout]") {
    Model m = three();
    rollout::Input in;
    in.membership = m.names;
    CHECK(rollout::next_step(m.views(), m.primary_index(), in).kind == Step::Kind::idle);
    for (const auto& n : m.names) m.pending[n] = {"max_connections"};
    auto reasons = rollout::restart_reasons(m.views(), in);
    REQUIRE(reasons.size() == 3);
    CHECK(reasons["n2"].find("max_connections") != std::string::npos);
    CHECK(run(m, in) ==
          std::vector<std::string>{"restart n2", "restart n3", "switchover n2"});
    CHECK(m.primary == "n2");
    CHECK(m.pending.empty());
}

TEST_CASE("rollout: a decrease reaches the primary first, in place", "[rollout]") {
    Model m = three();
    m.primary_first = true;
    for (const auto& n : m.names) m.pending[n] = {"max_connections"};
    rollout::Input in;
    in.membership = m.names;
    CHECK(run(m, in) ==
          std::vector<std::string>{"restart n1 (primary)", "restart n2", "restart n3"});
    CHECK(m.primary == "n1");
}

TEST_CASE("rollout: a single member restarts in place; priority -1 is never the target",
          "[rollout]") {
    Model one;
    one.names = {"n1"};
    one.primary = "n1";
    one.pending["n1"] = {"shared_buffers"};
    rollout::Input in;
    in.membership = one.names;
    CHECK(run(one, in) == std::vector<std::string>{"restart n1 (primary)"});

    Model m = three();
    m.pending["n1"] = {"shared_buffers"};
    rollout::Input pin;
    pin.membership = m.names;
    pin.priority = {{"n2", -1}};
    CHECK(run(m, pin) == std::vector<std::string>{"switchover n3"});
    Model m2 = three();
    m2.pending["n1"] = {"shared_buffers"};
    pin.priority = {{"n2", -1}, {"n3", -1}};
    CHECK(run(m2, pin) == std::vector<std::string>{"restart n1 (primary)"});
}

TEST_CASE("rollout: a member down, lagging or restarting keeps it waiting", "[rollout]") {
    Model m = three();
    for (const auto& n : m.names) m.pending[n] = {"max_connections"};
    rollout::Input in;
    in.membership = m.names;
    m.down = {"n3"};
    auto step = rollout::next_step(m.views(), m.primary_index(), in);
    CHECK(step.kind == Step::Kind::wait);
    CHECK(step.member == "n3");
    CHECK(step.reason == "unreachable");
    m.down.clear();
    m.behind["n3"] = 64ull << 20;
    step = rollout::next_step(m.views(), m.primary_index(), in);
    CHECK(step.kind == Step::Kind::wait);
    CHECK(step.reason.find("lagging") != std::string::npos);
    m.behind.clear();
    // A restart in flight, read before it happened (same start time): wait,
    // never a second restart of it nor a step elsewhere.
    in.in_flight["n2"] = m.start_time("n2");
    step = rollout::next_step(m.views(), m.primary_index(), in);
    CHECK(step.kind == Step::Kind::wait);
    CHECK(step.member == "n2");
    // Seen started again but not ready yet: still waiting (for it to be a
    // ready replica), then the next.
    m.restart("n2");
    auto views = m.views();
    views[1].ready = false;
    in.in_flight.clear();
    step = rollout::next_step(views, m.primary_index(), in);
    CHECK(step.kind == Step::Kind::wait);
    CHECK(step.member == "n2");
    CHECK(rollout::next_step(m.views(), m.primary_index(), in).member == "n3");
    // No writable primary: wait.
    m.down = {"n1"};
    CHECK(rollout::next_step(m.views(), m.primary_index(), in).kind == Step::Kind::wait);
}

TEST_CASE("rollout: an operator's restart of the primary is a switchover; of all, the same order",
          "[rollout]") {
    Model m = three();
    rollout::Input in;
    in.membership = m.names;
    in.requested["n1"] = m.start_time("n1");
    CHECK(run(m, in) == std::vector<std::string>{"switchover n2"});
    Model all = three();
    rollout::Input ain;
    ain.membership = all.names;
    for (const auto& n : all.names) ain.requested[n] = all.start_time(n);
    CHECK(run(all, ain) ==
          std::vector<std::string>{"restart n2", "restart n3", "switchover n2"});
    // A request made on an older reading (the member restarted since) is done.
    Model late = three();
    rollout::Input lin;
    lin.membership = late.names;
    lin.requested["n3"] = "2026-12-01 00:00:00";
    CHECK(rollout::restart_reasons(late.views(), lin).empty());
    // Kubernetes: a pod of an older revision is replaced the same way.
    Model k = three();
    rollout::Input kin;
    kin.membership = k.names;
    kin.out_of_date = {{"n1", "older pod revision"}, {"n3", "older pod revision"}};
    auto step = rollout::next_step(k.views(), k.primary_index(), kin);
    CHECK(step.kind == Step::Kind::restart);
    CHECK(step.member == "n3");
}

TEST_CASE("rollout: settings wait until every member applied the same file version",
          "[rollout]") {
    // The replicas read the new file first; the primary has not yet (or has
    // not yet checked what it leaves pending): no replica restarts yet, not
    // even one that says the primary must go first.
    Model m = three();
    m.primary_first = true;
    m.pending["n2"] = {"max_connections"};
    m.pending["n3"] = {"max_connections"};
    m.version["n1"] = "";
    rollout::Input in;
    in.membership = m.names;
    auto step = rollout::next_step(m.views(), m.primary_index(), in);
    CHECK(step.kind == Step::Kind::wait);
    CHECK(step.member == "n1");
    m.version["n1"] = "v0";  // still the old version
    CHECK(rollout::next_step(m.views(), m.primary_index(), in).kind == Step::Kind::wait);
    m.version.clear();
    m.pending["n1"] = {"max_connections"};
    CHECK(run(m, in) ==
          std::vector<std::string>{"restart n1 (primary)", "restart n2", "restart n3"});
    // An operator's restart does not wait for versions (nothing pending).
    Model r = three();
    r.version["n3"] = "v0";
    rollout::Input rin;
    rin.membership = r.names;
    rin.requested["n2"] = r.start_time("n2");
    CHECK(run(r, rin) == std::vector<std::string>{"restart n2"});
}

TEST_CASE("rollout: after the primary's restart in place, replicas replay its new settings first",
          "[rollout]") {
    Model m = three();
    m.pending["n2"] = {"max_connections"};
    rollout::Input in;
    in.membership = m.names;
    in.min_replay_lsn = 100000001;  // the primary's position once it served again
    auto step = rollout::next_step(m.views(), m.primary_index(), in);
    CHECK(step.kind == Step::Kind::wait);
    CHECK(step.member == "n2");
    in.min_replay_lsn = 100000000;
    CHECK(rollout::next_step(m.views(), m.primary_index(), in).kind == Step::Kind::restart);
}

TEST_CASE("rollout: Kubernetes template changes, alone and with a decrease", "[rollout]") {
    // Replicas' pods first, a switchover, the old primary's pod last.
    Model m = three();
    m.out_of_date = {"n1", "n2", "n3"};
    rollout::Input in;
    in.membership = m.names;
    CHECK(run(m, in) == std::vector<std::string>{"replace n2", "replace n3", "switchover n2",
                                                 "replace n1"});
    // A single member: its pod is replaced (no one to fail over to); never
    // an endless restart in place of a pod that stays out of date.
    Model one;
    one.names = {"n1"};
    one.primary = "n1";
    one.out_of_date = {"n1"};
    rollout::Input oin;
    oin.membership = one.names;
    CHECK(run(one, oin) == std::vector<std::string>{"replace n1 (primary)"});
    // A decrease and a new template at once: the primary restarts postgres
    // in place once (its settings), then the pods go in the usual order.
    Model both = three();
    both.out_of_date = {"n1", "n2", "n3"};
    both.primary_first = true;
    for (const auto& n : both.names) both.pending[n] = {"max_connections"};
    CHECK(run(both, in) == std::vector<std::string>{"restart n1 (primary)", "replace n2",
                                                    "replace n3", "switchover n2", "replace n1"});
}

TEST_CASE("rollout: a version that lowers one standby setting and raises another waits",
          "[rollout]") {
    Model m = three();
    m.primary_first = true;
    m.raised = {"max_wal_senders"};
    for (const auto& n : m.names) m.pending[n] = {"max_connections", "max_wal_senders"};
    rollout::Input in;
    in.membership = m.names;
    auto step = rollout::next_step(m.views(), m.primary_index(), in);
    CHECK(step.kind == Step::Kind::wait);
    CHECK(step.reason.find("two versions") != std::string::npos);
    // Raised only: the usual order, replicas first.
    m.primary_first = false;
    for (const auto& n : m.names) m.pending[n] = {"max_wal_senders"};
    CHECK(run(m, in) == std::vector<std::string>{"restart n2", "restart n3", "switchover n2"});
}

TEST_CASE("rollout: lowered and raised are the primary's to judge", "[rollout]") {
    // Version N lowered max_connections and the primary already runs it;
    // N+1 raises max_wal_senders before the replicas restarted. Each replica
    // reports both against its own running values, but against the
    // primary's nothing is lowered: replicas restart, as for a raise.
    Model m = three();
    m.primary_first = true;
    m.raised = {"max_wal_senders"};
    m.pending["n2"] = {"max_connections", "max_wal_senders"};
    m.pending["n3"] = {"max_connections", "max_wal_senders"};
    rollout::Input in;
    in.membership = m.names;
    CHECK(run(m, in) == std::vector<std::string>{"restart n2", "restart n3"});
}
