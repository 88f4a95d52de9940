#pragma once
// What is in the data directory, decided before anything is written to it.
#include <sys/types.h>

#include <string>

#include "result.hpp"

namespace im {

enum class DataDirKind { empty, cluster, foreign };

// Creates a missing directory (0700) and reports it as empty. A directory
// with PG_VERSION and global/pg_control is a cluster; anything else that is
// not empty is foreign and must be left alone.
Result<DataDirKind> inspect_data_dir(const std::string& pgdata);

// PGDATA + suffix, beside the data directory: for what may not be inside it
// (pg_basebackup wants it empty; a re-clone clears it).
std::string beside_data_dir(const std::string& pgdata, const std::string& suffix);

// The major version in PG_VERSION ("15").
Result<int> cluster_major_version(const std::string& pgdata);

struct PidFileInfo {
    pid_t pid = -1;
    std::string status;  // PM_STATUS line: starting, ready, standby, stopping
};
// Reads postmaster.pid; an error when it does not exist.
Result<PidFileInfo> read_pid_file(const std::string& pgdata);

// Removes postmaster.pid left by a postgres that is gone (a crashed
// container, a PID now used by something else). Refuses when a live postgres
// still serves this data directory.
Status clear_stale_pid_file(const std::string& pgdata);

}  // namespace im
