#pragma once
// The controller's backup schedule (--backup-schedule "full=7d,diff=1d,incr=1h"):
// a backup of a type is due when the repository's newest backup that
// covers it is older than its interval. Read from what the repository holds
// (the primary's status), so that a restarted controller, a second one, or
// a failover changes nothing: no schedule state of its own. Pure.
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "result.hpp"

namespace im {

struct BackupSchedule {
    std::chrono::seconds full{0}, diff{0}, incr{0};  // 0: none of that type
    std::string text;                                 // as given
    bool enabled() const { return full.count() > 0; }
};

// "full=7d", "full=1d,incr=1h", ... (full is required; s, m, h, d units).
Result<BackupSchedule> parse_backup_schedule(const std::string& text);

// The newest backup's end of each type (unix time), from the status's
// backup.newest ({"full": t|null, "diff": ..., "incr": ...}).
struct NewestBackups {
    std::optional<std::time_t> full, diff, incr;
};
NewestBackups newest_backups(const nlohmann::json& backup_view);

// "full", "diff", "incr", or "" when nothing is due at `now`.
std::string backup_due(const BackupSchedule& s, const NewestBackups& newest, std::time_t now);

}  // namespace im
