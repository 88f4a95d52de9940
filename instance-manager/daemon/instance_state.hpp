#pragma once
// What the manager knows about its instance. Written by the supervisor and
// the monitor on the loop; read by probes, status and metrics (no I/O there).
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "daemon/role_machine.hpp"

namespace im {

// The last observation of postgres by the monitor.
struct PgObservation {
    bool accepting = false;    // the last check connected and ran its query
    bool starting_up = false;  // postmaster alive, still in startup/recovery
    std::string pm_status;     // from postmaster.pid: starting, ready, standby, stopping
    bool in_recovery = false;
    std::string version;
    int version_num = 0;
    std::string system_identifier;
    uint32_t timeline = 0;
    std::string current_lsn;
    std::string receive_lsn;
    std::string replay_lsn;
    bool pending_restart = false;
    // The settings whose new value waits for a restart: [{"name", "setting"}]
    // (the running value).
    nlohmann::json pending_settings = nlohmann::json::array();
    std::string pg_start_time;
    nlohmann::json activity = nlohmann::json::object();  // commits, rollbacks, connections
    // Replication, from the same check: for a replica its WAL receiver, for a
    // primary its pg_stat_replication rows and physical slots.
    nlohmann::json replication = nlohmann::json::object();
    bool streaming = false;  // replica: WAL receiver is streaming
    uint64_t lag_bytes = 0;  // replica: primary's reported end of WAL - replayed
    std::string last_error;
    std::chrono::system_clock::time_point checked_at{};
    // The same instant on the steady clock: status says how long ago the
    // last check began (a controller tells a reading taken after a moment
    // of its own from an older one).
    std::chrono::steady_clock::time_point checked_steady{};
    // Backups configured: pg_stat_archiver and pg_wal (backup/archive_status.hpp).
    nlohmann::json archiver;
    uint64_t checks = 0;
    uint64_t check_failures = 0;
};

struct ProcessInfo {
    pid_t pid = -1;
    bool running = false;
    uint64_t restarts = 0;  // unexpected exits that were followed by a restart
    uint64_t crashes = 0;   // unexpected exits
    std::chrono::system_clock::time_point started_at{};
    std::string last_exit;
};

struct InstanceState {
    RoleMachine role;
    PgObservation pg;
    ProcessInfo process;
    bool ever_ready = false;  // postgres accepted connections at least once
    bool setup_done = false;  // roles and database are in place
    bool in_control = true;   // false once the manager is giving up (restart policy never)
    std::optional<int> clone_progress;  // pg_basebackup's percentage while a replica is cloned
    std::string upstream;               // a replica's primary_conninfo as given (no secrets)
    uint64_t term = 0;                  // highest accepted command term
    bool standby = false;               // standby.signal: a replica's data, also when fenced
    // The write authority, as status and metrics show it (quorum/): what this
    // member promised and granted, and the write right it holds as primary.
    // Read when a status or metrics answer is built (times left change).
    std::function<nlohmann::json()> authority_view;
    // pgBackRest's work on this instance (backup/backup_jobs.hpp); null
    // without a repository.
    std::function<nlohmann::json()> backup_view;
    // The cluster's parameters in force (parameters/parameter_watch.hpp);
    // null without --pg-parameters-file or --pg-hba-file.
    std::function<nlohmann::json()> parameters_view;
    // Restored from the repository, replaying to its target (not yet promoted).
    bool restoring = false;
    // A restart asked over the API (POST /v1/restart) is under way: a
    // controller waits for a primary doing one rather than replace it.
    bool restart_requested = false;
    uint64_t write_right_losses = 0;  // rights lost while postgres ran writable
    std::string last_error;
    std::chrono::system_clock::time_point manager_started = std::chrono::system_clock::now();
    std::chrono::steady_clock::time_point manager_started_mono = std::chrono::steady_clock::now();
};

}  // namespace im
