#include "backup/pgbackrest.hpp"

#include <algorithm>
#include <cstdio>

#include "bootstrap/data_dir.hpp"
#include "bootstrap/pg_files.hpp"
#include "bootstrap/replication_config.hpp"

namespace im::backup {

namespace {

std::string name_of(const std::string& entry) { return entry.substr(0, entry.find('=')); }

bool user_sets(const Config& cfg, const std::string& name) {
    return std::any_of(cfg.backup_env.begin(), cfg.backup_env.end(),
                       [&](const std::string& e) { return name_of(e) == name; });
}

std::string iso(std::time_t t) {
    char buf[32];
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

uint64_t number(const nlohmann::json& j, const char* a, const char* b = nullptr) {
    const nlohmann::json* v = j.is_object() && j.contains(a) ? &j[a] : nullptr;
    if (v && b) v = v->is_object() && v->contains(b) ? &(*v)[b] : nullptr;
    return v && v->is_number_unsigned() ? v->get<uint64_t>()
           : v && v->is_number_integer() && v->get<int64_t>() >= 0 ? v->get<int64_t>()
                                                                   : 0;
}

std::string text(const nlohmann::json& j, const char* a, const char* b = nullptr) {
    const nlohmann::json* v = j.is_object() && j.contains(a) ? &j[a] : nullptr;
    if (v && b) v = v->is_object() && v->contains(b) ? &(*v)[b] : nullptr;
    return v && v->is_string() ? v->get<std::string>() : std::string();
}

}  // namespace

std::string error_lines(const std::string& out, size_t n) {
    std::string errors;
    for (size_t at = out.find("ERROR: "); at != std::string::npos;
         at = out.find("ERROR: ", at + 1)) {
        size_t end = out.find('\n', at);
        if (!errors.empty()) errors += "; ";
        errors += out.substr(at, end == std::string::npos ? std::string::npos : end - at);
    }
    if (!errors.empty()) return errors;
    std::string s = out;
    while (!s.empty() && s.back() == '\n') s.pop_back();
    size_t pos = s.size();
    for (size_t i = 0; i < n && pos != std::string::npos && pos > 0; ++i)
        pos = s.rfind('\n', pos - 1);
    return pos == std::string::npos ? s : s.substr(pos + 1);
}

std::string work_dir(const Config& cfg) { return beside_data_dir(cfg.pgdata, ".pgbackrest"); }

std::vector<std::string> environment(const Config& cfg) {
    std::vector<std::pair<std::string, std::string>> ours = {
        {"PGBACKREST_STANZA", cfg.backup_stanza},
        {"PGBACKREST_PG1_PATH", cfg.pgdata},
        {"PGBACKREST_PG1_SOCKET_PATH", cfg.socket_dir},
        {"PGBACKREST_PG1_PORT", std::to_string(cfg.pg_port)},
        // The manager's own role, over the socket (peer, mapped: pg_files.cpp).
        {"PGBACKREST_PG1_USER", "postgres"},
        // Private to this instance: two instances of one stanza on one host
        // (a test, a laptop) must not take each other's archive locks.
        {"PGBACKREST_LOCK_PATH", work_dir(cfg) + "/lock"},
        {"PGBACKREST_SPOOL_PATH", work_dir(cfg) + "/spool"},
        // Every line goes to stdout, which the manager (or postgres, for
        // archive_command) turns into JSON log lines; no log files.
        {"PGBACKREST_LOG_LEVEL_FILE", "off"},
        {"PGBACKREST_LOG_LEVEL_STDERR", "off"},
        {"PGBACKREST_LOG_LEVEL_CONSOLE", "warn"},
        // postgres hands a segment over and goes on; a background process
        // pushes (and, on a standby, prefetches) in batches.
        {"PGBACKREST_ARCHIVE_ASYNC", "y"},
    };
    if (!cfg.backup_config.empty())
        ours.emplace_back("PGBACKREST_CONFIG", cfg.backup_config);
    else if (!user_sets(cfg, "PGBACKREST_CONFIG"))
        // Not the host's /etc/pgbackrest.conf: what runs is what was configured.
        ours.emplace_back("PGBACKREST_CONFIG", "/dev/null");
    if (!cfg.backup_repo.empty()) ours.emplace_back("PGBACKREST_REPO1_PATH", cfg.backup_repo);
    if (!user_sets(cfg, "PGBACKREST_REPO1_RETENTION_FULL"))
        ours.emplace_back("PGBACKREST_REPO1_RETENTION_FULL",
                          std::to_string(cfg.backup_retention_full));

    std::vector<std::string> out;
    for (const auto& e : cfg.backup_env) {
        bool owned = std::any_of(ours.begin(), ours.end(),
                                 [&](const auto& o) { return o.first == name_of(e); });
        if (!owned) out.push_back(e);
    }
    for (const auto& [k, v] : ours) out.push_back(k + "=" + v);
    return out;
}

SpawnOptions command(const Config& cfg, std::vector<std::string> args,
                     std::chrono::milliseconds deadline, bool log_progress) {
    SpawnOptions opts;
    opts.argv = {cfg.pgbackrest_bin};
    // The manager's own runs log their progress (archive_command stays at warn).
    if (log_progress) opts.argv.push_back("--log-level-console=info");
    opts.argv.insert(opts.argv.end(), args.begin(), args.end());
    opts.env = environment(cfg);
    opts.parent_death_signal = SIGTERM;
    opts.deadline = deadline;
    return opts;
}

std::string shell_quote(const std::string& word) {
    std::string out = "'";
    for (char c : word) {
        if (c == '\'')
            out += "'\\''";
        else
            out.push_back(c);
    }
    return out + "'";
}

std::string archive_settings(const Config& cfg) {
    std::string bin = shell_quote(cfg.pgbackrest_bin);
    const auto q = conf_quote;
    // 'on', not 'always': pgBackRest refuses to back up a cluster that
    // archives from its standbys. What a failed primary did not archive, its
    // successor pushes from its own pg_wal (fork_segments).
    return "# Continuous archiving to the pgBackRest repository.\n"
           "archive_mode = 'on'\n"
           "archive_command = " +
           q(bin + " archive-push %p") +
           "\n"
           // A segment is archived within a minute even when little is written:
           // a restore reaches any minute.
           "archive_timeout = '60s'\n"
           "restore_command = " +
           q(bin + " archive-get %f \"%p\"") + "\n";
}

Result<PrimaryServer> parse_primary_server(const nlohmann::json& j) {
    const char* want =
        "{\"host\", \"port\", \"pg_path\", \"pg_port\", \"socket_path\"} "
        "(the primary's backup.server in its status)";
    if (!j.is_object()) return make_error(want, 400);
    PrimaryServer p;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const auto& k = it.key();
        const auto& v = it.value();
        if (k == "host" && v.is_string())
            p.host = v.get<std::string>();
        else if ((k == "port" || k == "pg_port") && v.is_number_integer() &&
                 v.get<int64_t>() >= 1 && v.get<int64_t>() <= 65535)
            (k == "port" ? p.port : p.pg_port) = v.get<int>();
        else if ((k == "pg_path" || k == "socket_path") && v.is_string())
            (k == "pg_path" ? p.pg_path : p.socket_path) = v.get<std::string>();
        else
            return make_error(std::string(want) + ": bad or unknown field '" + k + "'", 400);
    }
    // A host name (no options smuggled in: the values become pgBackRest
    // options), and absolute paths.
    auto plain_host = [](const std::string& h) {
        return !h.empty() && h.size() <= 253 &&
               h.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789.-:[]") == std::string::npos;
    };
    auto abs_path = [](const std::string& s) {
        return !s.empty() && s.front() == '/' && s.size() < 1024 &&
               s.find_first_of("\n\r") == std::string::npos;
    };
    if (!plain_host(p.host) || p.port == 0 || p.pg_port == 0 || !abs_path(p.pg_path) ||
        !abs_path(p.socket_path))
        return make_error(want, 400);
    return p;
}

nlohmann::json to_json(const PrimaryServer& p) {
    return {{"host", p.host},
            {"port", p.port},
            {"pg_path", p.pg_path},
            {"pg_port", p.pg_port},
            {"socket_path", p.socket_path}};
}

Result<BackupRequest> parse_backup_request(const nlohmann::json& body) {
    if (!body.is_object()) return make_error("the body must be a JSON object", 400);
    BackupRequest req;
    for (auto it = body.begin(); it != body.end(); ++it) {
        if (it.key() == "primary") {
            auto p = parse_primary_server(it.value());
            if (!p) return make_error("primary must be " + p.error().message, 400);
            req.primary = std::move(*p);
            continue;
        }
        if (it.key() != "type") return make_error("unknown field '" + it.key() + "'", 400);
        if (!it.value().is_string() ||
            (it.value() != "full" && it.value() != "diff" && it.value() != "incr"))
            return make_error("type must be \"full\", \"diff\" or \"incr\"", 400);
        req.type = it.value().get<std::string>();
    }
    return req;
}

SpawnOptions server_command(const Config& cfg, const std::vector<std::string>& clients) {
    // Listens where the API does; only this stanza, only these clients.
    std::vector<std::string> args = {
        "--tls-server-address=" + (cfg.http_host == "0.0.0.0" ? std::string("*") : cfg.http_host),
        "--tls-server-port=" + std::to_string(cfg.backup_server_port),
        "--tls-server-cert-file=" + cfg.backup_tls_cert,
        "--tls-server-key-file=" + cfg.backup_tls_key,
        "--tls-server-ca-file=" + cfg.backup_tls_ca};
    for (const auto& cn : clients) args.push_back("--tls-server-auth=" + cn + "=" + cfg.backup_stanza);
    args.push_back("server");
    return command(cfg, std::move(args), std::chrono::milliseconds(0), false);
}

std::vector<std::string> standby_environment(const Config& cfg, const PrimaryServer& p) {
    return {"PGBACKREST_BACKUP_STANDBY=y",
            "PGBACKREST_PG2_HOST=" + p.host,
            "PGBACKREST_PG2_HOST_TYPE=tls",
            "PGBACKREST_PG2_HOST_PORT=" + std::to_string(p.port),
            "PGBACKREST_PG2_HOST_CERT_FILE=" + cfg.backup_tls_cert,
            "PGBACKREST_PG2_HOST_KEY_FILE=" + cfg.backup_tls_key,
            "PGBACKREST_PG2_HOST_CA_FILE=" + cfg.backup_tls_ca,
            "PGBACKREST_PG2_PATH=" + p.pg_path,
            "PGBACKREST_PG2_PORT=" + std::to_string(p.pg_port),
            "PGBACKREST_PG2_SOCKET_PATH=" + p.socket_path,
            "PGBACKREST_PG2_USER=postgres"};
}

Result<RepositoryInfo> parse_info(const std::string& json_text, const std::string& stanza) {
    auto j = nlohmann::json::parse(json_text, nullptr, false);
    if (!j.is_array())
        return make_error("pgbackrest info: not a JSON array: " + json_text.substr(0, 200));
    RepositoryInfo out;
    for (const auto& s : j) {
        if (!s.is_object() || s.value("name", "") != stanza) continue;
        out.status_code = static_cast<int>(number(s, "status", "code"));
        out.status_message = text(s, "status", "message");
        // 1: missing stanza path, 3: missing stanza data.
        out.stanza_exists = out.status_code != 1 && out.status_code != 3;
        const auto& lock = s.value("status", nlohmann::json::object())
                               .value("lock", nlohmann::json::object())
                               .value("backup", nlohmann::json::object());
        out.backup_running = lock.value("held", false);
        if (out.backup_running && lock.contains("size") && lock.contains("size-cplt") &&
            number(lock, "size") > 0)
            out.progress = 100.0 * static_cast<double>(number(lock, "size-cplt")) /
                           static_cast<double>(number(lock, "size"));
        uint64_t current_db = 0;
        for (const auto& db : s.value("db", nlohmann::json::array()))
            current_db = std::max(current_db, number(db, "id"));
        for (const auto& a : s.value("archive", nlohmann::json::array()))
            if (number(a, "database", "id") == current_db) {
                out.archive_min = text(a, "min");
                out.archive_max = text(a, "max");
            }
        for (const auto& b : s.value("backup", nlohmann::json::array())) {
            BackupSet set;
            set.label = text(b, "label");
            set.type = text(b, "type");
            set.prior = text(b, "prior");
            set.start = static_cast<std::time_t>(number(b, "timestamp", "start"));
            set.stop = static_cast<std::time_t>(number(b, "timestamp", "stop"));
            set.size = number(b, "info", "size");
            set.delta = number(b, "info", "delta");
            if (b.contains("info")) set.repo_size = number(b["info"], "repository", "size");
            set.wal_start = text(b, "archive", "start");
            set.wal_stop = text(b, "archive", "stop");
            set.lsn_start = text(b, "lsn", "start");
            set.lsn_stop = text(b, "lsn", "stop");
            if (!set.label.empty()) out.backups.push_back(std::move(set));
        }
        std::sort(out.backups.begin(), out.backups.end(),
                  [](const BackupSet& a, const BackupSet& b) { return a.stop < b.stop; });
        return out;
    }
    return out;  // no such stanza in the repository
}

nlohmann::json to_json(const BackupSet& b) {
    nlohmann::json j = {{"label", b.label},
                        {"type", b.type},
                        {"start", iso(b.start)},
                        {"stop", iso(b.stop)},
                        {"stop_unix", b.stop},
                        {"duration_s", b.stop >= b.start ? b.stop - b.start : 0},
                        {"size_bytes", b.size},
                        {"repository_bytes", b.repo_size},
                        {"copied_bytes", b.delta},
                        {"wal_start", b.wal_start},
                        {"wal_stop", b.wal_stop},
                        {"lsn_start", b.lsn_start},
                        {"lsn_stop", b.lsn_stop}};
    if (!b.prior.empty()) j["prior"] = b.prior;
    return j;
}

nlohmann::json to_json(const RepositoryInfo& info) {
    nlohmann::json sets = nlohmann::json::array();
    for (const auto& b : info.backups) sets.push_back(to_json(b));
    nlohmann::json j = {{"stanza_exists", info.stanza_exists},
                        {"status", info.status_message},
                        {"backups", sets},
                        {"archive_min", info.archive_min},
                        {"archive_max", info.archive_max},
                        {"backup_running", info.backup_running}};
    if (info.progress) j["progress_pct"] = *info.progress;
    return j;
}

std::string without_restore_settings(const std::string& auto_conf) {
    std::string out;
    size_t start = 0;
    while (start < auto_conf.size()) {
        size_t end = auto_conf.find('\n', start);
        std::string line = auto_conf.substr(start, end == std::string::npos ? end : end - start + 1);
        start = end == std::string::npos ? auto_conf.size() : end + 1;
        size_t k = line.find_first_not_of(" \t");
        std::string key = k == std::string::npos ? "" : line.substr(k, line.find_first_of(" \t=", k) - k);
        if (key.rfind("recovery_target", 0) == 0 || key == "restore_command") continue;
        out += line;
    }
    return out;
}

std::vector<std::string> fork_segments(const std::vector<std::string>& wal_files,
                                       const std::string& history, uint64_t wal_segment_size) {
    auto fork = last_fork(history);
    if (!fork) return {};
    char tli[9];
    std::snprintf(tli, sizeof tli, "%08X", fork->first);
    // The segment that holds the switch point (lsn / size): excluded.
    std::string first_new = wal_segment_suffix(fork->second + 1, wal_segment_size);
    std::vector<std::string> out;
    for (const auto& f : wal_files)
        if (f.size() == 24 && f.find_first_not_of("0123456789ABCDEF") == std::string::npos &&
            f.compare(0, 8, tli) == 0 && f.substr(8) < first_new)
            out.push_back(f);
    std::sort(out.begin(), out.end());
    return out;
}

uint64_t segment_end_lsn(const std::string& name, uint64_t wal_segment_size) {
    if (name.size() < 24 || name.find_first_not_of("0123456789ABCDEF") < 24) return 0;
    uint64_t log = std::stoull(name.substr(8, 8), nullptr, 16);
    uint64_t seg = std::stoull(name.substr(16, 8), nullptr, 16);
    uint64_t per_log = 0x100000000ULL / wal_segment_size;
    return (log * per_log + seg + 1) * wal_segment_size;
}

Status check_restore_target(const Config& cfg, const RepositoryInfo& info, std::time_t now,
                            uint64_t wal_segment_size) {
    if (!info.stanza_exists)
        return make_error("the repository holds no stanza '" + cfg.source_stanza() + "'");
    if (info.backups.empty())
        return make_error("the repository holds no backup of stanza '" + cfg.source_stanza() + "'");
    const BackupSet* first = &info.backups.front();
    if (!cfg.backup_set.empty()) {
        auto it = std::find_if(info.backups.begin(), info.backups.end(),
                               [&](const BackupSet& b) { return b.label == cfg.backup_set; });
        if (it == info.backups.end())
            return make_error("no backup '" + cfg.backup_set + "' in stanza '" +
                              cfg.source_stanza() + "' (see `instance-manager backups`)");
        first = &*it;
    }
    const std::string& kind = cfg.recovery_target_kind;
    if (kind == "time") {
        auto t = parse_timestamp(cfg.recovery_target);
        if (!t) return make_error("--recovery-target-time: cannot read '" + cfg.recovery_target + "'");
        if (*t > now)
            return make_error("--recovery-target-time " + cfg.recovery_target +
                              " is in the future (now " + iso(now) + ")");
        if (*t <= first->stop)
            return make_error("--recovery-target-time " + cfg.recovery_target +
                              " is not after the end of " +
                              (cfg.backup_set.empty() ? "the oldest backup " : "backup ") +
                              first->label + " (" + iso(first->stop) +
                              "): no backup can be replayed to it");
    } else if (kind == "lsn") {
        uint64_t lsn = parse_lsn(cfg.recovery_target);
        if (lsn < parse_lsn(first->lsn_stop))
            return make_error("--recovery-target-lsn " + cfg.recovery_target +
                              " is before the end of " +
                              (cfg.backup_set.empty() ? "the oldest backup " : "backup ") +
                              first->label + " (" + first->lsn_stop + ")");
        uint64_t end = segment_end_lsn(info.archive_max, wal_segment_size);
        if (end != 0 && lsn > end)
            return make_error("--recovery-target-lsn " + cfg.recovery_target +
                              " is beyond the end of the archive (segment " + info.archive_max +
                              ")");
    }
    return Ok{};
}

std::vector<std::string> restore_args(const Config& cfg) {
    std::vector<std::string> out = {"restore"};
    // On the command line (it wins over the environment's stanza): the
    // restore_command pgBackRest writes for the recovery reads from it too.
    if (cfg.source_stanza() != cfg.backup_stanza) out.push_back("--stanza=" + cfg.source_stanza());
    if (!cfg.backup_set.empty()) out.push_back("--set=" + cfg.backup_set);
    if (cfg.recovery_target_kind.empty()) {
        // To the end of the archive, then promote (no target to pause at).
        out.push_back("--type=default");
        return out;
    }
    std::string target = cfg.recovery_target;
    if (cfg.recovery_target_kind == "time")
        // UTC, as the manager read it (postgres would read a time without a
        // zone in its own TimeZone; pgBackRest refuses 'T' and 'Z').
        target = utc_timestamp(target).value_or(target);
    out.push_back("--type=" + cfg.recovery_target_kind);
    out.push_back("--target=" + target);
    out.push_back("--target-action=promote");
    return out;
}

}  // namespace im::backup
