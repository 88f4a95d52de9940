#pragma once
// How the cluster is shown: one JSON object per member (the controller's
// /v1/cluster and `instance-manager status --json`) and the table
// `instance-manager status` prints, like `patronictl list`.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "controller/cluster_rules.hpp"

namespace im {

nlohmann::json member_summary(const MemberView& m, const std::vector<MemberView>& all);

// The cluster's backups at a glance, from its primary's status ("backup");
// null without a repository.
nlohmann::json backup_summary(const nlohmann::json& backup_view);

// From a cluster document ({"term", "primary", "members": [...]}).
std::string render_table(const nlohmann::json& cluster);

// From the controller's GET /v1/backups: one line per backup, oldest first.
std::string render_backups(const nlohmann::json& backups);

}  // namespace im
