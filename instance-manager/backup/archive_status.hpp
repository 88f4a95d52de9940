#pragma once
// What postgres says about its archiving (pg_stat_archiver, the segments
// waiting in pg_wal/archive_status, the size of pg_wal), read by the monitor
// on each check when backups are configured, and what of it is a failure.
#include <nlohmann/json.hpp>

namespace im::backup {

// One row, one column: a JSON object with archived_count, last_archived_wal,
// last_archived_time, failed_count, last_failed_wal, last_failed_time,
// ready_segments, wal_bytes.
extern const char* const kArchiverSql;

// Failing: the newest attempt failed (a failure newer than the last success).
bool archive_failing(const nlohmann::json& archiver);

}  // namespace im::backup
