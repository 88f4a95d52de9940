#include "controller/rollout.hpp"

#include <algorithm>

namespace im::rollout {

namespace {
std::string joined(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}
}  // namespace

const char* to_string(Step::Kind k) {
    switch (k) {
        case Step::Kind::idle:
            return "idle";
        case Step::Kind::wait:
            return "wait";
        case Step::Kind::restart:
            return "restart";
        case Step::Kind::switchover:
            return "switchover";
    }
    return "?";
}

std::map<std::string, std::string> restart_reasons(const std::vector<MemberView>& members,
                                                   const Input& in) {
    std::map<std::string, std::string> out;
    for (const auto& m : members) {
        if (in.in_flight.count(m.name)) continue;
        std::vector<std::string> why;
        if (m.reachable && !m.pending_restart.empty())
            why.push_back("settings pending a restart: " + joined(m.pending_restart));
        // An operator's request holds until the member reports another start
        // time than when asked (an unreachable member has not restarted yet
        // as far as anyone knows).
        if (auto r = in.requested.find(m.name);
            r != in.requested.end() && (!m.reachable || m.pg_start_time == r->second))
            why.push_back("a restart was requested");
        if (auto o = in.out_of_date.find(m.name); o != in.out_of_date.end())
            why.push_back(o->second);
        std::string text;
        for (const auto& w : why) text += (text.empty() ? "" : "; ") + w;
        if (!text.empty()) out[m.name] = text;
    }
    return out;
}

Step next_step(const std::vector<MemberView>& members, std::optional<size_t> primary,
               const Input& in) {
    auto wait = [](std::string member, std::string reason) {
        return Step{Step::Kind::wait, std::move(member), std::move(reason)};
    };
    const auto reasons = restart_reasons(members, in);
    if (reasons.empty() && in.in_flight.empty()) return {};
    // A restart sent earlier comes first: until the member reports a new
    // start time, what it says may predate the restart (a stale read must
    // not make it look done, nor make it restart twice).
    for (const auto& [name, before] : in.in_flight) {
        auto m = std::find_if(members.begin(), members.end(),
                              [&, &name = name](const MemberView& v) { return v.name == name; });
        // Not listed (on Kubernetes: its pod is deleted and not yet made again).
        if (m == members.end()) return wait(name, "being replaced: no pod yet");
        if (!m->reachable) return wait(name, "restarting: its manager does not answer yet");
        if (m->pg_start_time.empty() || m->pg_start_time == before)
            return wait(name, "restarting: postgres has not started again yet");
    }
    // Every step needs the whole cluster healthy: a writable primary, every
    // other member a ready replica streaming from it and caught up.
    for (const auto& name : in.membership)
        if (std::none_of(members.begin(), members.end(),
                         [&](const MemberView& v) { return v.name == name; }))
            return wait(name, "a member of the membership without an address (no pod yet)");
    if (!primary) return wait("", "no writable primary");
    const MemberView& p = members[*primary];
    for (const auto& m : members) {
        if (m.name == p.name) continue;
        if (!m.reachable) return wait(m.name, "unreachable");
        if (m.role != "replica" || !m.running || !m.ready)
            return wait(m.name, "not a ready replica (role " + m.role + ")");
        if (!m.streaming || !follows(m, p))
            return wait(m.name, "not streaming from " + p.name);
        const uint64_t behind =
            p.current_lsn > m.replayed_lsn ? p.current_lsn - m.replayed_lsn : 0;
        if (m.replayed_lsn < in.min_replay_lsn)
            return wait(m.name, "has not replayed the restarted primary's new settings yet");
        if (behind > in.max_lag_bytes)
            return wait(m.name, "lagging " + std::to_string(behind) + " bytes behind " + p.name);
    }
    if (reasons.empty()) return {};  // the last restart is done, and the cluster healthy
    // Settings pending: only once every member applied the same version of
    // the file (members read it at their own moments, and a ConfigMap
    // reaches each node in its own time): restarting on a partial view
    // would restart a member twice, or a replica before its primary.
    bool settings = false;
    for (const auto& m : members) settings = settings || !m.pending_restart.empty();
    if (settings && p.parameters_version.empty())
        return wait(p.name, "its pending settings for the file's version are not known yet");
    if (settings)
        for (const auto& m : members)
            if (m.parameters_version != p.parameters_version)
                return wait(m.name, "its parameters version (" +
                                        (m.parameters_version.empty() ? std::string("not settled")
                                                                      : m.parameters_version) +
                                        ") is not the primary's (" + p.parameters_version +
                                        "): waiting for every member to apply the same file");
    // Settings hot standby needs at least the primary's value of, measured
    // against the primary's running values: lowered ones must reach the
    // primary first, raised ones the replicas first. Both at once leaves no
    // order in which the replicas keep replaying (a standby pauses at a
    // primary value above its own, and refuses to start below its control
    // file's): nothing restarts for settings until the file changes.
    // (Any restart would apply them: an operator's or a new pod's too.)
    if (!p.lowered.empty() && !p.raised.empty())
        return wait(p.name, "the file lowers " + joined(p.lowered) + " and raises " +
                                joined(p.raised) +
                                ", which hot standby needs at least the primary's value of: "
                                "no restart order works; change them in two versions");
    const bool primary_first = !p.lowered.empty();
    const auto mine = reasons.find(p.name);
    // A decrease of a setting hot standby needs at least the primary's value
    // of: a replica restarted with it first could not start. The primary
    // restarts postgres in place first (its write gap is one restart's), if
    // it has not yet: its own pending settings say so (the replicas go on
    // reporting the decrease until they restart).
    if (primary_first && mine != reasons.end())
        return {Step::Kind::restart, p.name,
                mine->second + " (a lower value must reach the primary before its replicas)",
                true, false};
    // Replicas one at a time, in name order.
    for (const auto& m : members)
        if (m.name != p.name && reasons.count(m.name))
            return {Step::Kind::restart, m.name, reasons.at(m.name), false,
                    in.out_of_date.count(m.name) > 0};
    // Only the primary is left: a switchover to the best caught-up replica
    // that may be primary (every replica was checked above); the old primary
    // restarts as its replica (a demotion starts postgres again), and is
    // done then.
    const MemberView* best = nullptr;
    int best_priority = 0;
    for (const auto& m : members) {
        if (m.name == p.name ||
            std::find(in.membership.begin(), in.membership.end(), m.name) == in.membership.end())
            continue;
        auto it = in.priority.find(m.name);
        const int prio = it == in.priority.end() ? 0 : it->second;
        if (prio < 0) continue;
        if (!best || prio > best_priority ||
            (prio == best_priority && m.replayed_lsn > best->replayed_lsn)) {
            best = &m;
            best_priority = prio;
        }
    }
    if (best)
        return {Step::Kind::switchover, best->name,
                mine->second + ": the primary role goes to " + best->name + " first"};
    // (On Kubernetes an out-of-date primary's pod is replaced all the same:
    // there is no one to fail over to, the write gap is the new pod's start.)
    return {Step::Kind::restart, p.name,
            mine->second + " (no replica to switch over to: restarted in place)", true,
            in.out_of_date.count(p.name) > 0};
}

}  // namespace im::rollout
