#include "controller/role_labels.hpp"

namespace im {

namespace {
// The label a member should carry; nullopt: keep whatever it has.
std::optional<std::string> wanted(const MemberView& m, const std::string& primary,
                                  const std::string& now) {
    if (!m.reachable) {
        // A pod that misses a poll keeps its label (the Service drops it
        // anyway once its readiness probe fails), except the primary label
        // of a member the controller no longer holds as primary.
        if (now == "primary" && !primary.empty() && m.name != primary) return "";
        return std::nullopt;
    }
    if (m.role == "primary") {
        if (m.name == primary) return "primary";
        // Before the controller has adopted anyone (it just started) a
        // primary keeps its label; a second, stale primary loses it.
        return primary.empty() ? std::nullopt : std::optional<std::string>("");
    }
    if (m.role == "replica") return "replica";
    return "";  // fenced, starting, stopped: no traffic from either Service
}
}  // namespace

std::vector<LabelChange> plan_role_labels(const std::vector<MemberView>& members,
                                          const std::string& primary,
                                          const std::map<std::string, std::string>& current) {
    std::vector<LabelChange> removals, replicas, primaries;
    for (const auto& m : members) {
        auto it = current.find(m.name);
        if (it == current.end()) continue;
        const std::string& now = it->second;
        auto want = wanted(m, primary, now);
        if (!want || *want == now) continue;
        std::string reason = m.reachable ? "reports role " + m.role : "unreachable";
        if (want->empty())
            removals.push_back({m.name, std::nullopt, reason});
        else if (*want == "replica" && now == "primary")
            removals.push_back({m.name, *want, reason});
        else if (*want == "replica")
            replicas.push_back({m.name, *want, reason});
        else
            primaries.push_back({m.name, *want, reason});
    }
    std::vector<LabelChange> out = removals;
    out.insert(out.end(), replicas.begin(), replicas.end());
    out.insert(out.end(), primaries.begin(), primaries.end());
    return out;
}

}  // namespace im
