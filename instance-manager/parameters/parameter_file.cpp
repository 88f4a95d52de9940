#include "parameters/parameter_file.hpp"
#include "parameters/file_lines.hpp"

#include <algorithm>
#include <cctype>
#include <map>

#include "bootstrap/pg_files.hpp"

namespace im::parameters {

namespace {
bool name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// One line: the parameter, nothing (blank or a comment), or why not.
struct LineOutcome {
    bool empty = false;
    Parameter param;
    std::string error;
};

LineOutcome parse_line(std::string_view line) {
    LineOutcome out;
    size_t i = 0;
    auto skip_space = [&] {
        while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    };
    skip_space();
    if (i == line.size() || line[i] == '#') {
        out.empty = true;
        return out;
    }
    size_t start = i;
    while (i < line.size() && name_char(line[i])) ++i;
    if (i == start) {
        out.error = "expected a parameter name";
        return out;
    }
    out.param.name = lower(std::string(line.substr(start, i - start)));
    skip_space();
    if (i < line.size() && line[i] == '=') ++i;
    skip_space();
    if (i == line.size() || line[i] == '#') {
        out.error = out.param.name + ": no value";
        return out;
    }
    if (line[i] == '\'') {
        ++i;
        bool closed = false;
        while (i < line.size()) {
            char c = line[i++];
            if (c == '\'' && i < line.size() && line[i] == '\'') {
                out.param.value.push_back('\'');
                ++i;
            } else if (c == '\\' && i < line.size()) {
                out.param.value.push_back(line[i++]);
            } else if (c == '\'') {
                closed = true;
                break;
            } else {
                out.param.value.push_back(c);
            }
        }
        if (!closed) {
            out.error = out.param.name + ": unterminated quoted value";
            return out;
        }
    } else {
        start = i;
        while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i])) &&
               line[i] != '#')
            ++i;
        out.param.value = std::string(line.substr(start, i - start));
    }
    skip_space();
    if (i < line.size() && line[i] != '#')
        out.error = out.param.name + ": unexpected text after the value (quote a value with spaces)";
    return out;
}
}  // namespace

std::string managed_parameter(std::string_view raw) {
    const std::string name = lower(std::string(raw));
    static const std::map<std::string, const char*> kManaged = {
        {"listen_addresses", "the manager listens on every address"},
        {"port", "use --pg-port"},
        {"unix_socket_directories", "use --socket-dir"},
        {"cluster_name", "the manager names the instance (--name)"},
        {"data_directory", "use --pgdata"},
        {"config_file", "the manager's file layout"},
        {"hba_file", "use --pg-hba-file for extra rules"},
        {"ident_file", "the manager's file layout"},
        {"external_pid_file", "the manager supervises postgres"},
        {"restart_after_crash", "the manager restarts postgres itself"},
        {"hot_standby", "replicas serve reads"},
        {"wal_level", "replication needs replica"},
        {"wal_log_hints", "pg_rewind needs it"},
        {"full_page_writes", "pg_rewind and crash safety need it"},
        {"fsync", "acknowledged commits must survive a crash"},
        {"synchronous_commit", "the controller's durability mode decides (--synchronous)"},
        {"synchronous_standby_names", "the controller's durability mode decides (--synchronous)"},
        {"max_wal_senders", "the manager sizes replication"},
        {"max_replication_slots", "the manager keeps a slot per member"},
        {"wal_keep_size", "pg_rewind after a demotion needs it"},
        {"max_slot_wal_keep_size", "use --max-slot-wal-keep-size"},
        {"primary_conninfo", "the controller points replicas at the primary"},
        {"primary_slot_name", "the manager names the slots"},
        {"promote_trigger_file", "promotions go through the write authority"},
        {"password_encryption", "passwords are SCRAM"},
        {"ssl", "replication runs over TLS"},
        {"ssl_cert_file", "use --pg-tls-cert"},
        {"ssl_key_file", "use --pg-tls-key"},
        {"ssl_min_protocol_version", "the manager sets TLS 1.2 at least"},
        {"logging_collector", "the manager captures postgres's log"},
        {"log_destination", "the manager captures postgres's log"},
        {"log_line_prefix", "the manager reads postgres's log lines"},
        {"archive_mode", "use --backup-repo or --backup-config"},
        {"archive_command", "use --backup-repo or --backup-config"},
        {"archive_library", "use --backup-repo or --backup-config"},
        {"archive_timeout", "use --backup-repo or --backup-config"},
        {"restore_command", "the manager restores from the repository"},
        {"recovery_target", "use --recovery-target-*"},
        {"recovery_target_time", "use --recovery-target-time"},
        {"recovery_target_lsn", "use --recovery-target-lsn"},
        {"recovery_target_name", "use --recovery-target-name"},
        {"recovery_target_xid", "use --recovery-target-xid"},
        {"recovery_target_action", "the manager promotes at the target"},
        {"recovery_target_inclusive", "use --recovery-target-*"},
        {"recovery_target_timeline", "the manager follows the latest timeline"},
    };
    auto it = kManaged.find(name);
    return it == kManaged.end() ? std::string() : std::string(it->second);
}

bool hot_standby_sensitive(std::string_view name) {
    return name == "max_connections" || name == "max_prepared_transactions" ||
           name == "max_locks_per_transaction" || name == "max_worker_processes" ||
           name == "max_wal_senders";
}

Result<std::vector<Parameter>> parse_parameters(std::string_view text) {
    std::vector<Parameter> out;
    std::map<std::string, size_t> seen;  // name -> line
    LineErrors errors;
    auto fail = [&](size_t line, const std::string& why) { errors.add(line, why); };
    const auto lines = split_lines(text);
    for (size_t number = 1; number <= lines.size(); ++number) {
        std::string_view line = lines[number - 1];
        if (line.find('\0') != std::string_view::npos) {
            fail(number, "a NUL byte");
            continue;
        }
        auto parsed = parse_line(line);
        if (parsed.empty) continue;
        if (!parsed.error.empty()) {
            fail(number, parsed.error);
            continue;
        }
        const auto& name = parsed.param.name;
        if (name == "include" || name == "include_if_exists" || name == "include_dir") {
            fail(number, name + ": include directives are not followed; list the parameters here");
            continue;
        }
        if (auto why = managed_parameter(name); !why.empty()) {
            fail(number, name + " is set by the manager (" + why + ")");
            continue;
        }
        if (auto [it, fresh] = seen.emplace(name, number); !fresh) {
            fail(number, name + " is set twice (first on line " + std::to_string(it->second) + ")");
            continue;
        }
        out.push_back(std::move(parsed.param));
    }
    if (!errors.empty()) return make_error(errors.text());
    std::sort(out.begin(), out.end(),
              [](const Parameter& a, const Parameter& b) { return a.name < b.name; });
    return out;
}

std::string render_parameters(const std::vector<Parameter>& params) {
    std::string out;
    for (const auto& p : params) out += p.name + " = " + conf_quote(p.value) + "\n";
    return out;
}

std::vector<std::string> check_arguments(const std::vector<Parameter>& params) {
    std::vector<std::string> out;
    for (const auto& p : params) {
        out.push_back("-c");
        out.push_back(p.name + "=" + p.value);
    }
    return out;
}

}  // namespace im::parameters
