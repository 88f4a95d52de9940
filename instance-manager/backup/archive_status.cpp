#include "backup/archive_status.hpp"

namespace im::backup {

const char* const kArchiverSql =
    "SELECT json_build_object("
    " 'archived_count', archived_count, 'last_archived_wal', last_archived_wal,"
    " 'last_archived_time', extract(epoch FROM last_archived_time),"
    " 'failed_count', failed_count, 'last_failed_wal', last_failed_wal,"
    " 'last_failed_time', extract(epoch FROM last_failed_time),"
    " 'ready_segments', (SELECT count(*) FROM pg_ls_archive_statusdir()"
    "                    WHERE name LIKE '%.ready'),"
    " 'wal_bytes', (SELECT COALESCE(sum(size), 0) FROM pg_ls_waldir()))::text"
    " FROM pg_stat_archiver";

bool archive_failing(const nlohmann::json& a) {
    if (!a.is_object()) return false;
    auto num = [&](const char* k) {
        return a.contains(k) && a[k].is_number() ? a[k].get<double>() : 0.0;
    };
    if (num("failed_count") == 0 || !a.contains("last_failed_time") || a["last_failed_time"].is_null())
        return false;
    // The newest attempt failed: nothing archived since.
    return num("last_failed_time") > num("last_archived_time");
}

}  // namespace im::backup
