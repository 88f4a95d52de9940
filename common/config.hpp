#pragma once
// The configuration of `instance-manager run`: parsed whole, validated, and
// then immutable. Every flag has an environment variable (see README).
#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "result.hpp"

namespace CLI {
class App;
}

namespace im {

enum class RestartPolicy { always, never };

struct Config {
    std::string name;
    std::string pgdata;
    std::string pg_bin;  // directory holding postgres, initdb, pg_controldata
    int pg_port = 5432;
    // Empty: a directory of this instance's own (default_socket_dir), so that
    // no other postmaster's socket can ever be mistaken for ours.
    std::string socket_dir;
    std::string http_host = "0.0.0.0";
    int http_port = 8000;

    std::string api_token_file;
    std::string app_password_file;  // default: <pgdata>/instance-manager/app.password
    std::string
        replication_password_file;        // default: <pgdata>/instance-manager/replication.password
    std::string superuser_password_file;  // empty: no superuser over TCP
    std::string pg_tls_cert;
    std::string pg_tls_key;
    // TLS for the HTTP API; with a client CA, mutating calls need a client certificate.
    std::string tls_cert;
    std::string tls_key;
    std::string tls_client_ca;

    // Replication: where a new replica clones from and streams from.
    std::string primary_conninfo;     // without password: it comes from the passfile
    std::string replication_ca_file;  // verify-full against this CA; else sslmode=require
    // With --primary-conninfo: the instance that starts a new cluster (initdb)
    // when its data directory is empty and no primary answers; every other
    // instance with an empty data directory clones (a StatefulSet's pod 0).
    std::string bootstrap_instance;
    // A failed pg_rewind: stay fenced (false) or replace the data directory
    // with a fresh base backup (true, --on-rewind-failure reclone).
    bool reclone_on_rewind_failure = false;
    // pg_basebackup and pg_rewind are killed when they print no progress for
    // this long (a clone of a big database may rightly take hours).
    std::chrono::milliseconds copy_stall_timeout{std::chrono::minutes(10)};
    // The write authority (quorum/): how long a primary asks each member's
    // grant to run, and the longest this member grants (renewed every third).
    std::chrono::milliseconds grant_ttl{1'000};
    // The members of the write authority this instance belongs to (sorted;
    // empty: the membership of the first promise it gets). Set it on every
    // member (a StatefulSet's pods by name) so that no proposer can make it
    // join another membership.
    std::vector<std::string> membership;

    // The cluster's PostgreSQL parameters and extra client-authentication
    // rules (parameters/): the same files on every member, re-read when
    // they change. Empty: none.
    std::string pg_parameters_file;
    std::string pg_hba_file;

    RestartPolicy restart_policy = RestartPolicy::always;
    std::chrono::milliseconds smart_shutdown_timeout{10'000};
    std::chrono::milliseconds fast_shutdown_timeout{20'000};
    std::chrono::milliseconds check_interval{1'000};
    std::chrono::milliseconds restart_backoff_min{1'000};
    std::chrono::milliseconds restart_backoff_max{30'000};

    std::chrono::milliseconds http_timeout{10'000};  // a request must arrive within this
    size_t http_max_connections = 512;
    size_t http_max_body = 64 * 1024;

    std::string log_level = "info";

    // Backups (backup/): pgBackRest, on when a repository or a pgBackRest
    // configuration file is given. Every member of a cluster names the same
    // stanza (the cluster's name) and the same repository.
    std::string backup_repo;    // repo1-path: a POSIX path (a shared volume)
    std::string backup_config;  // a pgBackRest configuration file (S3, GCS, Azure, cipher...)
    std::string backup_stanza;
    int backup_retention_full = 2;  // full backups kept (repo1-retention-full)
    std::string pgbackrest_bin;     // found on PATH
    // PGBACKREST_* of the manager's environment (keys, repository options):
    // kept before the PG* variables are dropped, handed to pgBackRest only.
    std::vector<std::string> backup_env;
    bool backups() const { return !backup_repo.empty() || !backup_config.empty(); }
    // Standby backups: every member runs pgBackRest's TLS server (mutual
    // TLS) so that a backup taken on a replica can start and stop it on the
    // primary and copy the few files only the primary has. The certificate
    // serves and identifies this member; the CA checks the others'.
    std::string backup_tls_cert, backup_tls_key, backup_tls_ca;
    int backup_server_port = 8432;
    // The name others reach this member's server by; it must be in the
    // certificate (pgBackRest checks DNS names, not IP addresses). Empty: the
    // host of the member's API address, as the controller knows it.
    std::string backup_server_host;
    // Certificate common names allowed to use this member's server; empty:
    // the common name of this member's own certificate (one certificate
    // naming scheme for the cluster).
    std::vector<std::string> backup_tls_clients;
    bool backup_server() const { return backups() && !backup_tls_cert.empty(); }

    // `run --restore-from-backup`: an empty data directory is restored from
    // the repository, replayed to the target (none: the end of the archive)
    // and promoted, as the first primary of a new history.
    bool restore_from_backup = false;
    // A new replica's data from the repository's newest backup (then the
    // archive, then streaming) instead of pg_basebackup from the primary.
    bool clone_from_backup = false;
    std::string backup_set;            // a backup's label; empty: pgBackRest chooses
    // The stanza restored from (empty: backup_stanza). Another than the one
    // this cluster archives to keeps a copy restored beside a running
    // cluster out of that cluster's archive and retention.
    std::string restore_from_stanza;
    const std::string& source_stanza() const {
        return restore_from_stanza.empty() ? backup_stanza : restore_from_stanza;
    }
    std::string recovery_target_kind;  // "", "time", "lsn", "name", "xid"
    std::string recovery_target;

    // max_slot_wal_keep_size in MB: -1 unlimited; kSlotKeepAuto: a quarter of
    // the data directory's file system, worked out when it exists.
    static constexpr int64_t kSlotKeepAuto = -2;
    int64_t max_slot_wal_keep_mb = kSlotKeepAuto;

    // Derived paths, filled by finalize.
    std::string state_dir() const { return pgdata + "/instance-manager"; }
    // What this member promised and granted: beside the data directory, not
    // in it, so that no re-clone or restore of the directory ever forgets it.
    std::string authority_file() const { return pgdata + ".authority.json"; }
};

// Exit codes of the command line: 0 help shown, 2 bad usage.
struct ParseOutcome {
    bool exit_now = false;  // --help or --version was printed
    int exit_code = 0;
};

// Runs a CLI11 parser over `args` (--help printed: exit code 0; a parse
// error: exit code 2). On success *outcome says exit code 2 for the
// caller's own checks that follow.
Status parse_cli(CLI::App& app, const std::vector<std::string>& args, ParseOutcome* outcome);

// Parses `run` arguments (without the program and subcommand names) and the
// environment; validates files and values. Errors say what is wrong in one line.
Result<Config> parse_run_args(const std::vector<std::string>& args,
                              ParseOutcome* outcome = nullptr);

// Validates a config built in code (tests) or by the parser.
Status validate(Config& cfg);

// The socket directory of an instance that names none: private to it.
std::string default_socket_dir(const std::string& name);

// A PostgreSQL size: "512MB", "4GB", "1TB", "2048kB" or a bare number of MB,
// in MB; "-1" is -1 (unlimited).
bool parse_size_mb(const std::string& text, int64_t& out_mb);

// 'YYYY-MM-DD HH:MM:SS[.ffffff][Z|+HH|+HH:MM]' (UTC without a zone): the
// moment, or nullopt. The forms a recovery target time is accepted in.
std::optional<std::time_t> parse_timestamp(const std::string& text);
// The same moment as 'YYYY-MM-DD HH:MM:SS[.ffffff]+00': the one form
// pgBackRest and postgres both read alike (no 'T', no 'Z').
std::optional<std::string> utc_timestamp(const std::string& text);

// "16/B374D848" -> its value; 0 when malformed.
uint64_t parse_lsn(const std::string& text);

// "HOST:PORT" or "[V6]:PORT".
bool parse_host_port(const std::string& text, std::string& host, int& port);

// "10s", "500ms", "2m", "6h", "7d", or a bare number of seconds.
bool parse_duration(const std::string& text, std::chrono::milliseconds& out);

}  // namespace im
