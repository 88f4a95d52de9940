#pragma once
// The controller's backup schedule (--backup-schedule "full=7d,diff=1d,incr=1h"):
// a backup of a type is due when the repository's newest backup that
// covers it is older than its interval. Read from what the repository holds
// (the primary's status), so that a restarted controller, a second one, or
// a failover changes nothing: no schedule state of its own. Pure.
#include <chrono>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "controller/cluster_rules.hpp"
#include "result.hpp"

namespace im {

struct BackupSchedule {
    std::chrono::seconds full{0}, diff{0}, incr{0};  // 0: none of that type
    std::string text;                                // as given
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

// Where a backup runs: a replica (a standby backup: the primary only starts
// and stops it and gives the few files a standby lacks), or the primary.
// A replica qualifies when it and the primary both run pgBackRest's server
// (status backup.server), it is ready and streams from the primary at most
// `max_lag` behind, and its own last backup did not fail after
// `failures_since` (an ISO 8601 UTC time, as status writes them: a replica that cannot reach the
// primary's server gives way to another or to the primary, rather than fail every time). Among
// them: the least behind, then the name. `body`: the POST /v1/backup body
// for that member (with "primary" for a standby backup).
struct BackupSource {
    size_t member = 0;  // index into the views
    nlohmann::json body;
    bool standby = false;
};
std::optional<BackupSource> backup_source(const std::vector<MemberView>& views, size_t primary,
                                          const std::string& type,
                                          const std::string& failures_since,
                                          uint64_t max_lag = 16ull << 20);

// The members seen running a backup (backup.running in their status),
// kept across polls. pgBackRest's backup lock is local to a host, so the
// controller itself keeps to one backup of the cluster at a time, and a
// member that stops answering keeps its mark until a poll shows it idle: a
// missed poll is not a finished backup. A member that leaves the
// membership loses its mark.
class BackupsRunning {
  public:
    using Time = std::chrono::steady_clock::time_point;
    // The views of a poll sent at `sent`. A mark set after the poll left
    // (a backup started meanwhile) is not cleared by its "idle": that
    // answer may predate the start.
    void observe(const std::vector<MemberView>& views, Time sent);
    // A backup this controller just started (before a poll shows it).
    void started(const std::string& member, Time now) { marks_[member] = now; }
    std::optional<std::string> any() const;

  private:
    std::map<std::string, Time> marks_;  // member -> when the mark was set
};

// What the members' repository views say, for the schedule.
struct RepositoryView {
    // The view that shows the newest backup: the repository is shared, so
    // the member whose read holds the most is the most up to date. Views
    // whose last read failed (repository_error) are not counted: their
    // contents may be hours old. Null when no member read it.
    nlohmann::json view;
    // A member's last backup ended after that member's own newest read (by
    // its own clock): the repository holds a backup no view shows yet, so
    // the schedule waits for the read rather than take another.
    bool unread_backup = false;
    // The latest end of any member's last backup (for the cluster summary).
    std::string last_end;
};
RepositoryView newest_repository_view(const std::vector<MemberView>& views);

}  // namespace im
