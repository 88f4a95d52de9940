#pragma once
// pgBackRest as the manager drives it: one place that says which options
// the manager owns (the stanza, this instance's data directory and socket,
// its private spool and lock directories) and hands them to every
// pgbackrest process, the postmaster's archive_command and restore_command
// included. Everything else (repository type, keys, compression, cipher)
// comes from the user's pgBackRest configuration file or PGBACKREST_*
// variables, as pgBackRest documents them. Pure: no I/O here.
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "process.hpp"
#include "result.hpp"

namespace im::backup {

// Beside the data directory, never in it (a base backup or a restore would
// carry it): <pgdata>.pgbackrest/{spool,lock}.
std::string work_dir(const Config& cfg);

// The variables every pgbackrest child gets: the user's PGBACKREST_* first,
// then the options the manager owns (which win). Options in variables, not
// on the command line: pgBackRest refuses a command-line option that its
// command does not take, and ignores a variable it does not need.
std::vector<std::string> environment(const Config& cfg);

// A pgbackrest command (`args`: the command and its own options) with the
// manager's environment; `deadline`: killed after this long (0: none);
// `log_progress`: its info lines too (not for a command whose output is data).
SpawnOptions command(const Config& cfg, std::vector<std::string> args,
                     std::chrono::milliseconds deadline = std::chrono::milliseconds(0),
                     bool log_progress = true);

// The postgresql.conf lines that archive every member's WAL to the
// repository and fetch WAL from it (see README, "Continuous archiving").
std::string archive_settings(const Config& cfg);

// What an error message carries of pgBackRest's output: its ERROR lines,
// else the last `n` lines (never the whole output: it names endpoints and
// paths; secure options it prints as <redacted> anyway).
std::string error_lines(const std::string& output, size_t n = 3);

// A word for the shell (archive_command runs through one).
std::string shell_quote(const std::string& word);

// Where a standby backup finds the primary's pgBackRest server and
// database: what the primary's status shows under backup.server, with the
// host others reach it by.
struct PrimaryServer {
    std::string host;
    int port = 0;
    std::string pg_path, socket_path;
    int pg_port = 0;
};
Result<PrimaryServer> parse_primary_server(const nlohmann::json& j);
nlohmann::json to_json(const PrimaryServer& p);

struct BackupRequest {
    std::string type = "full";
    std::optional<PrimaryServer> primary;  // set: a standby backup of this replica
};
// A POST /v1/backup body: {"type": "full"|"diff"|"incr", "primary": {...}}
// ({}: a full backup of this primary).
Result<BackupRequest> parse_backup_request(const nlohmann::json& body);

// `pgbackrest server` on this member (cfg.backup_server()): mutual TLS,
// clients allowed by `clients` (certificate common names) for this stanza.
SpawnOptions server_command(const Config& cfg, const std::vector<std::string>& clients);

// The variables that make this replica's backup a standby backup: pg2 is
// the primary, reached through its server; pg1 (this instance) gives the files.
std::vector<std::string> standby_environment(const Config& cfg, const PrimaryServer& primary);

struct BackupSet {
    std::string label, type, prior;
    std::time_t start = 0, stop = 0;
    uint64_t size = 0;        // the database's size
    uint64_t repo_size = 0;   // stored in the repository (compressed)
    uint64_t delta = 0;       // what this backup copied
    std::string wal_start, wal_stop;  // WAL segment names
    std::string lsn_start, lsn_stop;
};

struct RepositoryInfo {
    bool stanza_exists = false;
    int status_code = 0;  // pgBackRest's: 0 ok, 1 missing stanza path, 2 no valid backups, ...
    std::string status_message;
    std::vector<BackupSet> backups;  // oldest first
    std::string archive_min, archive_max;  // WAL segments in the archive (current database)
    bool backup_running = false;
    std::optional<double> progress;  // of the backup running, 0..100
};

// The stanza's part of `pgbackrest info --output=json`.
Result<RepositoryInfo> parse_info(const std::string& json_text, const std::string& stanza);
nlohmann::json to_json(const BackupSet& b);
nlohmann::json to_json(const RepositoryInfo& info);

// What the restore asked for can be reached with what the repository
// holds: a backup (the one named), a time between its end and now, an LSN
// between its end and the archive's end. Names and transaction ids are
// checked by recovery itself.
Status check_restore_target(const Config& cfg, const RepositoryInfo& info, std::time_t now,
                            uint64_t wal_segment_size = 16 * 1024 * 1024);

// `pgbackrest restore` arguments for the configured target (promote there).
std::vector<std::string> restore_args(const Config& cfg);

// After a promotion to `timeline` (its history file's text): the complete
// segments of the parent timeline, before the switch, among `wal_files` (the
// names in pg_wal). The failed primary may not have archived them; this
// instance streamed them and pushes them (the repository takes a segment it
// holds already with the same checksum). The segment holding the switch
// point is postgres's own to archive, as .partial.
std::vector<std::string> fork_segments(const std::vector<std::string>& wal_files,
                                       const std::string& history, uint64_t wal_segment_size);

// postgresql.auto.conf without what pgbackrest restore wrote there for its
// recovery (recovery_target*, restore_command): kept, a replica cloned from
// the restored primary would stop at the same target and promote itself,
// and the restore's restore_command would win over the manager's.
std::string without_restore_settings(const std::string& auto_conf);

// The WAL position just past the end of segment `name` (24 hex digits); 0
// when malformed.
uint64_t segment_end_lsn(const std::string& name, uint64_t wal_segment_size);

}  // namespace im::backup
