#include "config.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sstream>

extern char** environ;

#include "conninfo.hpp"
#include "fs_util.hpp"
#include "log.hpp"

namespace im {

bool parse_host_port(const std::string& text, std::string& host, int& port) {
    std::string h, p;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return false;
        h = text.substr(1, close - 1);
        p = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string::npos) return false;
        h = text.substr(0, colon);
        p = text.substr(colon + 1);
    }
    if (h.empty() || p.empty() || p.size() > 5) return false;
    for (char c : p)
        if (c < '0' || c > '9') return false;
    int n = std::stoi(p);
    if (n < 0 || n > 65535) return false;
    host = h;
    port = n;
    return true;
}

bool parse_duration(const std::string& text, std::chrono::milliseconds& out) {
    size_t i = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == 0 || i > 9) return false;
    long long n = std::stoll(text.substr(0, i));
    std::string unit = text.substr(i);
    if (unit == "ms")
        out = std::chrono::milliseconds(n);
    else if (unit.empty() || unit == "s")
        out = std::chrono::seconds(n);
    else if (unit == "m")
        out = std::chrono::minutes(n);
    else if (unit == "h")
        out = std::chrono::hours(n);
    else if (unit == "d")
        out = std::chrono::hours(24 * n);
    else
        return false;
    return true;
}

namespace {

std::string default_name() {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) == 0 && buf[0] != '\0') return buf;
    return "instance";
}

bool executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// pg_config --bindir first (that is where the matching server lives on Debian),
// then the directory of `postgres` on PATH.
std::string discover_pg_bin() {
    if (FILE* p = ::popen("pg_config --bindir 2>/dev/null", "r")) {
        char buf[4096] = {};
        size_t n = std::fread(buf, 1, sizeof buf - 1, p);
        ::pclose(p);
        std::string dir(buf, n);
        while (!dir.empty() && (dir.back() == '\n' || dir.back() == ' ')) dir.pop_back();
        if (!dir.empty() && executable(dir + "/postgres")) return dir;
    }
    if (const char* path = std::getenv("PATH")) {
        std::stringstream ss(path);
        std::string dir;
        while (std::getline(ss, dir, ':'))
            if (!dir.empty() && executable(dir + "/postgres")) return dir;
    }
    return {};
}

Status check_readable(const std::string& what, const std::string& path) {
    if (path.empty()) return Ok{};
    if (::access(path.c_str(), R_OK) != 0) return make_error(what + ": cannot read " + path);
    return Ok{};
}

// A password file may not exist yet (it is then created), but its directory must.
Status check_secret_target(const std::string& what, const std::string& path) {
    if (path.empty()) return Ok{};
    if (fs::exists(path)) return check_readable(what, path);
    std::string dir = fs::dirname(path);
    if (!fs::is_dir(dir) || ::access(dir.c_str(), W_OK) != 0)
        return make_error(what + ": " + path + " does not exist and its directory is not writable");
    return Ok{};
}

std::string on_path(const std::string& program) {
    if (const char* path = std::getenv("PATH")) {
        std::stringstream ss(path);
        std::string dir;
        while (std::getline(ss, dir, ':'))
            if (!dir.empty() && executable(dir + "/" + program)) return dir + "/" + program;
    }
    return {};
}

std::vector<std::string> backup_environment() {
    std::vector<std::string> out;
    for (char** e = environ; e && *e; ++e)
        if (std::string_view(*e).substr(0, 11) == "PGBACKREST_") out.emplace_back(*e);
    return out;
}

bool plain_name(const std::string& s) {
    if (s.empty() || s.size() > 63) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    return true;
}

Status validate_backup_server(Config& cfg) {
    bool any =
        !cfg.backup_tls_cert.empty() || !cfg.backup_tls_key.empty() || !cfg.backup_tls_ca.empty();
    if (!any) {
        if (!cfg.backup_server_host.empty() || !cfg.backup_tls_clients.empty())
            return make_error(
                "--backup-server-host and --backup-tls-clients need "
                "--backup-tls-cert, --backup-tls-key and --backup-tls-ca");
        return Ok{};
    }
    if (cfg.backup_tls_cert.empty() || cfg.backup_tls_key.empty() || cfg.backup_tls_ca.empty())
        return make_error(
            "standby backups need all three: --backup-tls-cert, --backup-tls-key "
            "and --backup-tls-ca");
    for (auto [flag, path] : {std::pair{"--backup-tls-cert", &cfg.backup_tls_cert},
                              std::pair{"--backup-tls-key", &cfg.backup_tls_key},
                              std::pair{"--backup-tls-ca", &cfg.backup_tls_ca}}) {
        if (path->front() != '/') return make_error(std::string(flag) + ": an absolute path");
        if (auto st = check_readable(flag, *path); !st) return st;
    }
    if (cfg.backup_server_port < 1 || cfg.backup_server_port > 65535)
        return make_error("--backup-server-port: 1 to 65535");
    if (cfg.backup_server_port == cfg.pg_port || cfg.backup_server_port == cfg.http_port)
        return make_error("--backup-server-port: a port of its own (not postgres's or the API's)");
    for (const auto& cn : cfg.backup_tls_clients)
        if (cn.empty() || cn.find_first_of(",=*") != std::string::npos)
            return make_error(
                "--backup-tls-clients: certificate common names without ',', '=' "
                "or '*'");
    return Ok{};
}

Status validate_backup(Config& cfg) {
    bool restoring = cfg.restore_from_backup;
    if (!cfg.recovery_target_kind.empty() && !restoring)
        return make_error("--recovery-target-" + cfg.recovery_target_kind +
                          " needs --restore-from-backup");
    if (!cfg.backup_set.empty() && !restoring)
        return make_error("--backup-set needs --restore-from-backup");
    if (!cfg.restore_from_stanza.empty() && !restoring)
        return make_error("--restore-from-stanza needs --restore-from-backup");
    if (!cfg.restore_from_stanza.empty() && !plain_name(cfg.restore_from_stanza))
        return make_error(
            "--restore-from-stanza: a stanza's name (letters, digits, '-', '_', '.')");
    if (!cfg.backups()) {
        if (restoring)
            return make_error(
                "--restore-from-backup needs the repository: --backup-repo or "
                "--backup-config");
        if (cfg.clone_from_backup)
            return make_error(
                "--clone-from-backup needs the repository: --backup-repo or "
                "--backup-config");
        if (!cfg.backup_stanza.empty())
            return make_error("--backup-stanza needs --backup-repo or --backup-config");
        if (!cfg.backup_tls_cert.empty() || !cfg.backup_tls_key.empty() ||
            !cfg.backup_tls_ca.empty())
            return make_error(
                "--backup-tls-cert, --backup-tls-key and --backup-tls-ca need "
                "--backup-repo or --backup-config");
        return Ok{};
    }
    if (!plain_name(cfg.backup_stanza))
        return make_error(
            "--backup-stanza is required with a repository: the cluster's name, the same on "
            "every member (letters, digits, '-', '_', '.')");
    if (!cfg.backup_repo.empty() && cfg.backup_repo.front() != '/')
        return make_error("--backup-repo: an absolute path");
    if (auto st = check_readable("--backup-config", cfg.backup_config); !st) return st;
    if (cfg.backup_retention_full < 1 || cfg.backup_retention_full > 9999999)
        return make_error("--backup-retention-full: at least 1");
    if (cfg.pgbackrest_bin.empty()) cfg.pgbackrest_bin = on_path("pgbackrest");
    if (cfg.pgbackrest_bin.empty())
        return make_error("backups need pgBackRest: no pgbackrest on PATH");
    if (!cfg.backup_set.empty() && !plain_name(cfg.backup_set))
        return make_error("--backup-set: a backup label like 20261202-101500F");
    if (auto st = validate_backup_server(cfg); !st) return st;
    const auto& k = cfg.recovery_target_kind;
    const auto& v = cfg.recovery_target;
    if (k == "time" && !parse_timestamp(v))
        return make_error(
            "--recovery-target-time: expected 'YYYY-MM-DD HH:MM:SS' with an optional "
            "fraction and zone (+02, +05:30, Z; none: UTC), got '" +
            v + "'");
    if (k == "lsn" && parse_lsn(v) == 0)
        return make_error("--recovery-target-lsn: expected a WAL position like 0/3000060, got '" +
                          v + "'");
    if (k == "xid" && (v.empty() || v.size() > 19 ||
                       v.find_first_not_of("0123456789") != std::string::npos || v == "0"))
        return make_error("--recovery-target-xid: a transaction id (digits), got '" + v + "'");
    if (k == "name" &&
        (v.empty() || v.size() > 63 || v.find_first_of("'\\\n") != std::string::npos))
        return make_error(
            "--recovery-target-name: a restore point's name (at most 63 "
            "characters, no quotes)");
    return Ok{};
}

}  // namespace

std::optional<std::time_t> parse_timestamp(const std::string& text) {
    // 'YYYY-MM-DD HH:MM:SS[.ffffff][Z|+HH|+HH:MM|+HHMM]' (a space or 'T').
    int y, mo, d, h, mi, s;
    char sep;
    int used = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &s,
                    &used) != 7 ||
        (sep != ' ' && sep != 'T') || used != 19)
        return std::nullopt;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 || y < 1970)
        return std::nullopt;
    std::string rest = text.substr(19);
    size_t i = 0;
    if (i < rest.size() && rest[i] == '.') {
        ++i;
        size_t digits = 0;
        while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') ++i, ++digits;
        if (digits == 0 || digits > 6) return std::nullopt;
    }
    long offset = 0;
    std::string zone = rest.substr(i);
    if (zone == "Z" || zone.empty()) {
    } else if ((zone[0] == '+' || zone[0] == '-') && zone.size() >= 3) {
        std::string digits;
        for (size_t j = 1; j < zone.size(); ++j) {
            if (zone[j] == ':' && j == 3) continue;
            if (zone[j] < '0' || zone[j] > '9') return std::nullopt;
            digits.push_back(zone[j]);
        }
        if (digits.size() != 2 && digits.size() != 4) return std::nullopt;
        long zh = std::stol(digits.substr(0, 2));
        long zm = digits.size() == 4 ? std::stol(digits.substr(2)) : 0;
        if (zh > 15 || zm > 59) return std::nullopt;
        offset = (zh * 3600 + zm * 60) * (zone[0] == '-' ? -1 : 1);
    } else {
        return std::nullopt;
    }
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    std::time_t t = ::timegm(&tm);
    if (t == -1) return std::nullopt;
    // A day the month does not have (02-31) comes back as another date.
    std::tm back{};
    ::gmtime_r(&t, &back);
    if (back.tm_mday != d || back.tm_mon != mo - 1 || back.tm_year != y - 1900) return std::nullopt;
    return t - offset;
}

std::optional<std::string> utc_timestamp(const std::string& text) {
    auto t = parse_timestamp(text);
    if (!t) return std::nullopt;
    char buf[32];
    std::tm tm{};
    ::gmtime_r(&*t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    std::string out = buf;
    if (text.size() > 19 && text[19] == '.') {
        size_t end = text.find_first_not_of("0123456789", 20);
        out += text.substr(19, (end == std::string::npos ? text.size() : end) - 19);
    }
    return out + "+00";
}

uint64_t parse_lsn(const std::string& text) {
    auto slash = text.find('/');
    if (slash == std::string::npos || slash == 0 || slash > 8 || text.size() - slash - 1 == 0 ||
        text.size() - slash - 1 > 8)
        return 0;
    auto hex = [](const std::string& h) {
        return !h.empty() && h.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
    };
    std::string hi = text.substr(0, slash), lo = text.substr(slash + 1);
    if (!hex(hi) || !hex(lo)) return 0;
    return (std::stoull(hi, nullptr, 16) << 32) | std::stoull(lo, nullptr, 16);
}

Status validate(Config& cfg) {
    if (cfg.name.empty()) cfg.name = default_name();
    for (char c : cfg.name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok) return make_error("--name: only letters, digits, '-', '_' and '.' are allowed");
    }
    if (cfg.name.size() > 63) return make_error("--name: at most 63 characters");
    if (cfg.pgdata.empty()) return make_error("--pgdata (or PGDATA) is required");
    if (cfg.pgdata.front() != '/') {
        char cwd[4096];
        if (!::getcwd(cwd, sizeof cwd)) return make_error("cannot resolve the current directory");
        cfg.pgdata = fs::join(cwd, cfg.pgdata);
    }
    while (cfg.pgdata.size() > 1 && cfg.pgdata.back() == '/') cfg.pgdata.pop_back();
    if (cfg.pg_bin.empty()) cfg.pg_bin = discover_pg_bin();
    if (cfg.pg_bin.empty())
        return make_error(
            "--pg-bin: no postgres found (pg_config --bindir, then PATH); install PostgreSQL or "
            "set --pg-bin");
    for (const char* tool : {"postgres", "initdb", "pg_controldata"})
        if (!executable(cfg.pg_bin + "/" + tool))
            return make_error(std::string("--pg-bin: ") + cfg.pg_bin + "/" + tool +
                              " is not executable");
    if (cfg.pg_port < 1 || cfg.pg_port > 65535) return make_error("--pg-port: must be 1..65535");
    if (cfg.http_port < 0 || cfg.http_port > 65535) return make_error("--http-listen: bad port");
    if (cfg.socket_dir.empty()) {
        cfg.socket_dir = default_socket_dir(cfg.name);  // made at start-up, mode 0700
    } else if (!fs::is_dir(cfg.socket_dir)) {
        return make_error("--socket-dir: not a directory: " + cfg.socket_dir);
    }
    if (auto st = check_readable("--api-token-file", cfg.api_token_file); !st) return st;
    if (!cfg.api_token_file.empty()) {
        auto tok = fs::read_secret(cfg.api_token_file);
        if (!tok) return make_error("--api-token-file: " + tok.error().message);
    }
    if (cfg.pg_tls_cert.empty() != cfg.pg_tls_key.empty())
        return make_error("--pg-tls-cert and --pg-tls-key go together");
    if (auto st = check_readable("--pg-tls-cert", cfg.pg_tls_cert); !st) return st;
    if (auto st = check_readable("--pg-tls-key", cfg.pg_tls_key); !st) return st;
    if (cfg.tls_cert.empty() != cfg.tls_key.empty())
        return make_error("--tls-cert and --tls-key go together");
    if (!cfg.tls_client_ca.empty() && cfg.tls_cert.empty())
        return make_error("--tls-client-ca needs --tls-cert and --tls-key");
    if (auto st = check_readable("--tls-cert", cfg.tls_cert); !st) return st;
    if (auto st = check_readable("--tls-key", cfg.tls_key); !st) return st;
    if (auto st = check_readable("--tls-client-ca", cfg.tls_client_ca); !st) return st;
    if (auto st = check_secret_target("--app-password-file", cfg.app_password_file); !st) return st;
    if (auto st = check_secret_target("--replication-password-file", cfg.replication_password_file);
        !st)
        return st;
    if (auto st = check_secret_target("--superuser-password-file", cfg.superuser_password_file);
        !st)
        return st;
    if (cfg.smart_shutdown_timeout.count() < 0 || cfg.fast_shutdown_timeout.count() <= 0)
        return make_error("shutdown timeouts must be positive");
    if (cfg.copy_stall_timeout < std::chrono::seconds(1))
        return make_error("--copy-stall-timeout: at least 1s");
    if (cfg.check_interval.count() < 50 || cfg.check_interval.count() > 1000)
        return make_error("--check-interval: must be between 50ms and 1s");
    if (auto st = check_readable("--replication-ca-file", cfg.replication_ca_file); !st) return st;
    if (!cfg.primary_conninfo.empty()) {
        auto parsed = parse_conninfo(cfg.primary_conninfo);
        if (!parsed) return make_error("--primary-conninfo: " + parsed.error().message);
        if (parsed->count("password"))
            return make_error(
                "--primary-conninfo: no password here; use --replication-password-file");
    }
    if (auto st = validate_backup(cfg); !st) return st;
    // Their content is checked when it is read (and again at every change):
    // a bad version is refused while the last good one stays in force.
    if (auto st = check_readable("--pg-parameters-file", cfg.pg_parameters_file); !st) return st;
    if (auto st = check_readable("--pg-hba-file", cfg.pg_hba_file); !st) return st;
    log::Level lvl;
    if (!log::parse_level(cfg.log_level, lvl))
        return make_error("--log-level: debug, info, warn or error");
    return Ok{};
}

std::string default_socket_dir(const std::string& name) { return "/tmp/instance-manager-" + name; }

bool parse_size_mb(const std::string& text, int64_t& out_mb) {
    if (text == "-1") {
        out_mb = -1;
        return true;
    }
    size_t used = 0;
    long long n = 0;
    try {
        n = std::stoll(text, &used);
    } catch (...) {
        return false;
    }
    if (n < 0) return false;
    std::string unit = text.substr(used);
    if (unit == "" || unit == "MB")
        out_mb = n;
    else if (unit == "kB")
        out_mb = n / 1024;
    else if (unit == "GB")
        out_mb = n * 1024;
    else if (unit == "TB")
        out_mb = n * 1024 * 1024;
    else
        return false;
    return true;
}

Status parse_cli(CLI::App& app, const std::vector<std::string>& args, ParseOutcome* outcome) {
    // CLI11 takes the arguments last first.
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    try {
        app.parse(reversed);
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);
        if (outcome) *outcome = {true, 0};
        return make_error("help");
    } catch (const CLI::ParseError& e) {
        if (outcome) *outcome = {true, 2};
        return make_error(e.what());
    }
    // Until the caller's own checks pass, a failure is a usage error.
    if (outcome) *outcome = {true, 2};
    return Ok{};
}

Result<Config> parse_run_args(const std::vector<std::string>& args, ParseOutcome* outcome) {
    Config cfg;
    CLI::App app{"instance-manager run: supervise one PostgreSQL instance", "instance-manager run"};
    std::string http_listen = "0.0.0.0:8000", restart_policy = "always";
    std::string smart = "10s", fast = "20s", interval = "1s", rewind_failure = "fence";
    std::string copy_stall = "10m", grant_ttl = "1s";

    app.add_option("--name", cfg.name, "instance name (default: hostname)")->envname("IM_NAME");
    app.add_option("--pgdata", cfg.pgdata, "data directory")->envname("PGDATA");
    app.add_option("--pg-bin", cfg.pg_bin, "directory of the PostgreSQL binaries")
        ->envname("IM_PG_BIN");
    app.add_option("--pg-port", cfg.pg_port, "PostgreSQL port")->envname("IM_PG_PORT");
    app.add_option("--socket-dir", cfg.socket_dir, "unix socket directory")
        ->envname("IM_SOCKET_DIR");
    app.add_option("--http-listen", http_listen, "HTTP API address HOST:PORT")
        ->envname("IM_HTTP_LISTEN");
    app.add_option("--api-token-file", cfg.api_token_file, "bearer token for mutating calls")
        ->envname("IM_API_TOKEN_FILE");
    app.add_option("--app-password-file", cfg.app_password_file)->envname("IM_APP_PASSWORD_FILE");
    app.add_option("--replication-password-file", cfg.replication_password_file)
        ->envname("IM_REPLICATION_PASSWORD_FILE");
    app.add_option("--superuser-password-file", cfg.superuser_password_file)
        ->envname("IM_SUPERUSER_PASSWORD_FILE");
    app.add_option("--pg-tls-cert", cfg.pg_tls_cert)->envname("IM_PG_TLS_CERT");
    app.add_option("--pg-tls-key", cfg.pg_tls_key)->envname("IM_PG_TLS_KEY");
    app.add_option("--tls-cert", cfg.tls_cert, "serve the HTTP API over TLS with this certificate")
        ->envname("IM_TLS_CERT");
    app.add_option("--tls-key", cfg.tls_key)->envname("IM_TLS_KEY");
    app.add_option("--tls-client-ca", cfg.tls_client_ca,
                   "require client certificates signed by this CA for mutating calls")
        ->envname("IM_TLS_CLIENT_CA");
    app.add_option("--bootstrap-instance", cfg.bootstrap_instance,
                   "with --primary-conninfo: the instance that may start a new cluster")
        ->envname("IM_BOOTSTRAP_INSTANCE");
    app.add_option("--primary-conninfo", cfg.primary_conninfo,
                   "clone from and stream from this primary")
        ->envname("IM_PRIMARY_CONNINFO");
    app.add_option("--replication-ca-file", cfg.replication_ca_file)
        ->envname("IM_REPLICATION_CA_FILE");
    app.add_option("--on-rewind-failure", rewind_failure, "fence | reclone")
        ->envname("IM_ON_REWIND_FAILURE");
    std::string slot_keep = "auto";
    app.add_option("--max-slot-wal-keep-size", slot_keep,
                   "WAL a replication slot may hold back: auto (a quarter of the data "
                   "directory's file system), -1 (unlimited) or a size like 4GB")
        ->envname("IM_MAX_SLOT_WAL_KEEP_SIZE");
    app.add_option("--copy-stall-timeout", copy_stall,
                   "kill pg_basebackup or pg_rewind after this long without progress")
        ->envname("IM_COPY_STALL_TIMEOUT");
    app.add_option("--grant-ttl", grant_ttl,
                   "how long a member's grant of the write right runs (renewed every third; "
                   "the same on every member)")
        ->envname("IM_GRANT_TTL");
    app.add_option("--membership", cfg.membership,
                   "NAME,... the members of the write authority (default: learned from the "
                   "first promise)")
        ->envname("IM_MEMBERSHIP")
        ->delimiter(',');
    app.add_option("--backup-repo", cfg.backup_repo,
                   "pgBackRest repository on a POSIX path (a shared volume): archiving, backups, "
                   "restore")
        ->envname("IM_BACKUP_REPO");
    app.add_option("--backup-config", cfg.backup_config,
                   "pgBackRest configuration file (S3, GCS, Azure, encryption...); PGBACKREST_* "
                   "variables work too")
        ->envname("IM_BACKUP_CONFIG");
    app.add_option("--backup-stanza", cfg.backup_stanza,
                   "the cluster's name in the repository (the same on every member)")
        ->envname("IM_BACKUP_STANZA");
    app.add_option("--backup-retention-full", cfg.backup_retention_full,
                   "full backups kept in the repository (older ones expire with their WAL)")
        ->envname("IM_BACKUP_RETENTION_FULL");
    app.add_option("--backup-tls-cert", cfg.backup_tls_cert,
                   "standby backups: this member's certificate for pgBackRest's TLS server (and "
                   "as its client)")
        ->envname("IM_BACKUP_TLS_CERT");
    app.add_option("--backup-tls-key", cfg.backup_tls_key, "standby backups: its private key")
        ->envname("IM_BACKUP_TLS_KEY");
    app.add_option("--backup-tls-ca", cfg.backup_tls_ca,
                   "standby backups: the CA that signed the members' certificates")
        ->envname("IM_BACKUP_TLS_CA");
    app.add_option("--backup-server-port", cfg.backup_server_port,
                   "standby backups: the port of this member's pgBackRest server")
        ->envname("IM_BACKUP_SERVER_PORT");
    app.add_option("--backup-server-host", cfg.backup_server_host,
                   "standby backups: the name others reach this member's server by, as its "
                   "certificate says (default: the host of its API address)")
        ->envname("IM_BACKUP_SERVER_HOST");
    app.add_option("--backup-tls-clients", cfg.backup_tls_clients,
                   "CN,... certificate common names allowed to use this member's server "
                   "(default: its own certificate's)")
        ->envname("IM_BACKUP_TLS_CLIENTS")
        ->delimiter(',');
    app.add_flag("--restore-from-backup", cfg.restore_from_backup,
                 "restore the empty data directory from the repository, replay to the target, "
                 "promote")
        ->envname("IM_RESTORE_FROM_BACKUP");
    app.add_flag("--clone-from-backup", cfg.clone_from_backup,
                 "a new replica restores the repository's newest backup and catches up from the "
                 "archive, instead of copying the primary (pg_basebackup)")
        ->envname("IM_CLONE_FROM_BACKUP");
    app.add_option("--restore-from-stanza", cfg.restore_from_stanza,
                   "restore from this stanza and archive to --backup-stanza (a copy beside a "
                   "running cluster); default: --backup-stanza")
        ->envname("IM_RESTORE_FROM_STANZA");
    app.add_option("--backup-set", cfg.backup_set, "restore this backup (a label from `backups`)")
        ->envname("IM_BACKUP_SET");
    std::string target_time, target_lsn, target_name, target_xid;
    app.add_option("--recovery-target-time", target_time,
                   "restore to this moment: 'YYYY-MM-DD HH:MM:SS[+TZ]'")
        ->envname("IM_RECOVERY_TARGET_TIME");
    app.add_option("--recovery-target-lsn", target_lsn, "restore to this WAL position (X/X)")
        ->envname("IM_RECOVERY_TARGET_LSN");
    app.add_option("--recovery-target-name", target_name,
                   "restore to this restore point (pg_create_restore_point)")
        ->envname("IM_RECOVERY_TARGET_NAME");
    app.add_option("--recovery-target-xid", target_xid, "restore to this transaction's commit")
        ->envname("IM_RECOVERY_TARGET_XID");
    app.add_option("--pg-parameters-file", cfg.pg_parameters_file,
                   "the cluster's PostgreSQL parameters, `name = value` lines (re-read when it "
                   "changes; the same file on every member)")
        ->envname("IM_PG_PARAMETERS_FILE");
    app.add_option("--pg-hba-file", cfg.pg_hba_file,
                   "extra pg_hba.conf rules, placed after the manager's own")
        ->envname("IM_PG_HBA_FILE");
    app.add_option("--restart-policy", restart_policy, "always | never")
        ->envname("IM_RESTART_POLICY");
    app.add_option("--smart-shutdown-timeout", smart)->envname("IM_SMART_SHUTDOWN_TIMEOUT");
    app.add_option("--fast-shutdown-timeout", fast)->envname("IM_FAST_SHUTDOWN_TIMEOUT");
    app.add_option("--check-interval", interval)->envname("IM_CHECK_INTERVAL");
    app.add_option("--log-level", cfg.log_level)->envname("IM_LOG_LEVEL");

    if (auto st = parse_cli(app, args, outcome); !st) return st.error();
    for (auto [kind, value] : {std::pair<const char*, std::string*>{"time", &target_time},
                               {"lsn", &target_lsn},
                               {"name", &target_name},
                               {"xid", &target_xid}}) {
        if (value->empty()) continue;
        if (!cfg.recovery_target_kind.empty())
            return make_error("--recovery-target-" + cfg.recovery_target_kind +
                              " and --recovery-target-" + kind + ": one recovery target at a time");
        cfg.recovery_target_kind = kind;
        cfg.recovery_target = *value;
    }
    cfg.backup_env = backup_environment();
    if (!parse_host_port(http_listen, cfg.http_host, cfg.http_port))
        return make_error("--http-listen: expected HOST:PORT, got '" + http_listen + "'");
    if (restart_policy == "always")
        cfg.restart_policy = RestartPolicy::always;
    else if (restart_policy == "never")
        cfg.restart_policy = RestartPolicy::never;
    else
        return make_error("--restart-policy: 'always' or 'never', got '" + restart_policy + "'");
    if (rewind_failure != "fence" && rewind_failure != "reclone")
        return make_error("--on-rewind-failure: 'fence' or 'reclone', got '" + rewind_failure +
                          "'");
    cfg.reclone_on_rewind_failure = rewind_failure == "reclone";
    if (slot_keep == "auto")
        cfg.max_slot_wal_keep_mb = Config::kSlotKeepAuto;
    else if (!parse_size_mb(slot_keep, cfg.max_slot_wal_keep_mb))
        return make_error("--max-slot-wal-keep-size: auto, -1 or a size like 4GB, got '" +
                          slot_keep + "'");
    if (!parse_duration(smart, cfg.smart_shutdown_timeout))
        return make_error("--smart-shutdown-timeout: expected a duration like 10s");
    if (!parse_duration(fast, cfg.fast_shutdown_timeout))
        return make_error("--fast-shutdown-timeout: expected a duration like 20s");
    if (!parse_duration(interval, cfg.check_interval))
        return make_error("--check-interval: expected a duration like 1s");
    if (!parse_duration(copy_stall, cfg.copy_stall_timeout))
        return make_error("--copy-stall-timeout: expected a duration like 10m");
    if (!parse_duration(grant_ttl, cfg.grant_ttl) ||
        cfg.grant_ttl < std::chrono::milliseconds(300) || cfg.grant_ttl > std::chrono::minutes(1))
        return make_error("--grant-ttl: a duration between 300ms and 1m, like 1s");
    std::sort(cfg.membership.begin(), cfg.membership.end());
    if (std::adjacent_find(cfg.membership.begin(), cfg.membership.end()) != cfg.membership.end())
        return make_error("--membership: a name appears twice");
    if (auto st = validate(cfg); !st) return make_error(st.error().message);
    if (!cfg.membership.empty() &&
        !std::binary_search(cfg.membership.begin(), cfg.membership.end(), cfg.name))
        return make_error("--membership: this instance (" + cfg.name + ") is not in it");
    if (outcome) *outcome = {false, 0};
    return cfg;
}

}  // namespace im
