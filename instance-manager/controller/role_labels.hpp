#pragma once
// Which `role` label each pod should carry, as a pure function of what the
// members report and which member the controller holds as primary. The
// `-rw` Service selects role=primary, so the order matters: every label
// taken away comes before the primary label is set, and the controller sets
// it only once no other pod still carries it.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "controller/cluster_rules.hpp"

namespace im {

struct LabelChange {
    std::string pod;
    std::optional<std::string> role;  // none: remove the label
    std::string reason;
};

// `current`: pod name -> its role label now ("" when absent); only pods in
// `current` are planned. Removals (and primary -> replica) first, then the
// replicas, the primary last.
std::vector<LabelChange> plan_role_labels(const std::vector<MemberView>& members,
                                          const std::string& primary,
                                          const std::map<std::string, std::string>& current);

}  // namespace im
