#pragma once
// The rolling restart as a pure rule: who must restart and why, and the one
// step to take next (or what it waits for). Replicas restart one at a time,
// each back, streaming and caught up before the next; then a switchover to a
// caught-up replica, after which the old primary, now a replica, restarts
// like the others. Never a failover: a member that is down, not streaming or
// lagging pauses the rollout until it is back. The controller carries the
// steps out (controller_rollout.cpp); unit tests drive this file alone.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "controller/cluster_rules.hpp"

namespace im::rollout {

// What the rule knows besides the members' reports.
struct Input {
    std::vector<std::string> membership;  // who may be switched over to
    std::map<std::string, int> priority;  // -1: never a primary
    // Restarts an operator asked for: member -> its postgres start time when
    // asked. Done once the member reports another start time.
    std::map<std::string, std::string> requested;
    // Kubernetes: members whose pod runs an older revision of the
    // StatefulSet -> why (a new pod replaces the old: the restart).
    std::map<std::string, std::string> out_of_date;
    // Restarts sent and not yet seen done: member -> its start time before.
    std::map<std::string, std::string> in_flight;
    // A replica further behind its primary than this is not caught up.
    uint64_t max_lag_bytes = 16ull << 20;
    // After the primary restarted in place: its position once it served
    // again. A replica restarts only once it replayed that far: past the
    // record of the primary's new settings, which its control file must
    // hold before it starts (a hot standby with a lower max_connections
    // than its control file's primary value refuses to start at all).
    uint64_t min_replay_lsn = 0;
};

// Who must restart, and why (pending settings, an operator's request, an
// older pod revision). Members with a restart in flight are not listed.
std::map<std::string, std::string> restart_reasons(const std::vector<MemberView>& members,
                                                   const Input& in);

struct Step {
    enum class Kind {
        idle,        // nothing to restart
        wait,        // `member` (empty: the cluster) keeps the rollout waiting
        restart,     // restart `member`'s postgres (in place, or a new pod)
        switchover,  // hand the primary role to `member`
    };
    Kind kind = Kind::idle;
    std::string member;
    std::string reason;
    bool in_place_primary = false;  // restart: the member is the primary
    // restart: a new pod from the current template (Kubernetes) rather than
    // a restart of postgres in its pod.
    bool replace_pod = false;
};

// The next step for the members as seen now, `primary` the writable one.
Step next_step(const std::vector<MemberView>& members, std::optional<size_t> primary,
               const Input& in);

const char* to_string(Step::Kind k);

}  // namespace im::rollout
