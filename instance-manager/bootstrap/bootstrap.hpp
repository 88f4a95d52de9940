#pragma once
// Bringing a data directory to the point where postgres can start: initdb
// for an empty one, reuse of an existing cluster as it is, refusal of
// anything else; then passwords, TLS files and the managed configuration.
#include <functional>
#include <optional>
#include <string>

#include "asio.hpp"
#include "config.hpp"
#include "bootstrap/pg_files.hpp"
#include "process.hpp"
#include "result.hpp"
#include "daemon/state_store.hpp"

namespace im {

struct Prepared {
    bool initialized = false;  // initdb ran in this start
    bool cloned = false;       // pg_basebackup ran in this start
    // Restored from the repository, recovering to its target: it promotes
    // itself there (backup/restore.hpp), no role command may act before.
    bool restoring = false;
    bool superuser_enabled = false;
    bool replica = false;  // standby.signal is present
    TlsFiles tls;
    std::string passfile;  // streaming_replica's password, for libpq
    // The --pg-hba-file rules last accepted (parameters/parameter_watch.hpp).
    std::string extra_hba;
    PersistentState persistent;
};

// The default password-file locations are filled into cfg here. A new
// replica (empty directory and --primary-conninfo) is cloned; on_progress
// gets pg_basebackup's percentage.
awaitable<Result<Prepared>> prepare_data_dir(Config& cfg, Reaper& reaper,
                                             std::function<void(int)> on_progress);

// The conninfo this instance uses towards `upstream` for replication,
// pg_basebackup and pg_rewind.
Result<std::string> upstream_conninfo(const Config& cfg, const Prepared& p,
                                      const std::string& upstream);

// Writes the managed configuration files for the instance as it is now
// (standby settings when it is a replica with a known upstream).
Status write_managed_files(const Config& cfg, const Prepared& p);

// Moves the instance's own state out of the way of a tool that rewrites the
// data directory (pg_rewind copies the source's files) and back afterwards.
Result<std::string> stash_state_dir(const Config& cfg);
Status restore_state_dir(const Config& cfg, const std::string& stash);

// Runs the ensure-roles helper against the local postgres (see role_setup.hpp).
awaitable<Status> setup_roles(Reaper& reaper, const Config& cfg, const std::string& local_conninfo);

}  // namespace im
