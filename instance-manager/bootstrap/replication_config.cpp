#include "bootstrap/replication_config.hpp"

#include <cstdio>
#include <map>
#include <sstream>

#include "api/status_report.hpp"
#include "bootstrap/pg_files.hpp"
#include "pg_session.hpp"

namespace im {

std::string slot_name_for(const std::string& instance_name) {
    std::string out;
    for (char c : instance_name) {
        if (c >= 'A' && c <= 'Z')
            out.push_back(static_cast<char>(c - 'A' + 'a'));
        else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
            out.push_back(c);
        else
            out.push_back('_');
    }
    if (out.size() > 63) out.resize(63);
    return out;
}

std::optional<std::string> slot_name_collision(const std::vector<std::string>& names) {
    std::map<std::string, std::string> by_slot;
    for (const auto& n : names) {
        auto [it, fresh] = by_slot.emplace(slot_name_for(n), n);
        if (!fresh && it->second != n)
            return "members " + it->second + " and " + n + " would share the replication slot " +
                   it->first;
    }
    return std::nullopt;
}

Result<std::string> replication_conninfo(const std::string& upstream,
                                         const std::string& application_name,
                                         const ReplicationAuth& auth) {
    auto parsed = parse_conninfo(upstream);
    if (!parsed) return parsed.error();
    ConninfoMap m = *parsed;
    if (m.count("password"))
        return make_error(
            "primary_conninfo must not carry a password; it comes from the replication password "
            "file");
    if (!m.count("host") && !m.count("hostaddr"))
        return make_error("primary_conninfo needs a host");
    if (m.count("user") && m["user"] != "streaming_replica")
        return make_error("replication connects as streaming_replica, not " + m["user"]);
    m["user"] = "streaming_replica";
    m["passfile"] = auth.passfile;
    m["application_name"] = application_name;
    if (!auth.ca_file.empty()) {
        m["sslmode"] = "verify-full";
        m["sslrootcert"] = auth.ca_file;
    } else if (!m.count("sslmode") || m["sslmode"] == "disable" || m["sslmode"] == "allow" ||
               m["sslmode"] == "prefer") {
        m["sslmode"] = "require";
    }
    if (!m.count("connect_timeout")) m["connect_timeout"] = "5";
    // The walreceiver, pg_basebackup and pg_rewind use this too: none of
    // them may pick up a certificate from whatever HOME they run with.
    pin_client_files(m);
    return build_conninfo(m);
}

std::string render_standby_settings(const std::string& conninfo, const std::string& slot) {
    return "# Standby settings (this instance is a replica)\n"
           "primary_conninfo = " +
           conf_quote(conninfo) + "\nprimary_slot_name = " + conf_quote(slot) +
           "\nrecovery_target_timeline = 'latest'\n";
}

std::string render_passfile(const std::string& password) {
    std::string escaped;
    for (char c : password) {
        if (c == ':' || c == '\\') escaped.push_back('\\');
        escaped.push_back(c);
    }
    return "*:*:*:streaming_replica:" + escaped + "\n";
}

Result<std::optional<SyncSpec>> parse_sync_spec(const nlohmann::json& j) {
    if (j.is_null()) return std::optional<SyncSpec>();
    const char* shape =
        "synchronous must be null or {\"method\": \"any\"|\"first\", \"number\": N, "
        "\"standbys\": [names]}";
    if (!j.is_object()) return make_error(shape);
    SyncSpec s;
    for (auto it = j.begin(); it != j.end(); ++it) {
        const auto& v = it.value();
        if (it.key() == "method") {
            if (!v.is_string() || (v != "any" && v != "first"))
                return make_error("synchronous.method must be \"any\" or \"first\"");
            s.method = v.get<std::string>();
        } else if (it.key() == "number") {
            if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 100)
                return make_error("synchronous.number must be an integer from 1 to 100");
            s.number = v.get<unsigned>();
        } else if (it.key() == "standbys") {
            if (!v.is_array() || v.empty())
                return make_error("synchronous.standbys must be a non-empty array of names");
            for (const auto& n : v) {
                // Names are double-quoted in the setting; keep them plain.
                if (!n.is_string() || n.get<std::string>().empty() ||
                    n.get<std::string>().find_first_of("\"'\\") != std::string::npos)
                    return make_error(
                        "synchronous.standbys must hold instance names without quotes");
                s.standbys.push_back(n.get<std::string>());
            }
        } else {
            return make_error("unknown field 'synchronous." + it.key() + "'");
        }
    }
    if (s.standbys.empty()) return make_error("synchronous.standbys is required");
    if (s.number > s.standbys.size())
        return make_error("synchronous.number (" + std::to_string(s.number) +
                          ") exceeds the number of standbys (" + std::to_string(s.standbys.size()) +
                          ")");
    return std::optional<SyncSpec>(std::move(s));
}

nlohmann::json to_json(const std::optional<SyncSpec>& spec) {
    if (!spec) return nullptr;
    return {{"method", spec->method}, {"number", spec->number}, {"standbys", spec->standbys}};
}

std::string synchronous_standby_names(const SyncSpec& spec) {
    std::string out =
        (spec.method == "first" ? "FIRST " : "ANY ") + std::to_string(spec.number) + " (";
    for (size_t i = 0; i < spec.standbys.size(); ++i) {
        if (i) out += ", ";
        out += "\"" + spec.standbys[i] + "\"";
    }
    return out + ")";
}

std::optional<uint64_t> timeline_switchpoint(const std::string& history, uint32_t tli) {
    // Lines: "<parent tli>\t<switchpoint LSN>\t<reason>"; '#' starts a comment.
    std::istringstream in(history);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string parent, lsn;
        if (!(fields >> parent >> lsn) || parent[0] == '#') continue;
        if (parent.find_first_not_of("0123456789") != std::string::npos) continue;
        if (std::stoul(parent) == tli) {
            uint64_t at = parse_lsn(lsn);
            if (at == 0) return std::nullopt;
            return at;
        }
    }
    return std::nullopt;
}

std::optional<std::pair<uint32_t, uint64_t>> last_fork(const std::string& history) {
    std::istringstream in(history);
    std::string line;
    std::optional<std::pair<uint32_t, uint64_t>> out;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string parent, lsn;
        if (!(fields >> parent >> lsn) || parent[0] == '#') continue;
        if (parent.find_first_not_of("0123456789") != std::string::npos || parent.size() > 9)
            continue;
        if (uint64_t at = parse_lsn(lsn); at != 0)
            out = std::make_pair(static_cast<uint32_t>(std::stoul(parent)), at);
    }
    return out;
}

std::string wal_segment_suffix(uint64_t lsn, uint64_t segment_size) {
    uint64_t segno = (lsn == 0 ? 0 : lsn - 1) / segment_size;
    uint64_t per_id = 0x100000000ULL / segment_size;
    char out[17];
    std::snprintf(out, sizeof out, "%08X%08X", static_cast<unsigned>(segno / per_id),
                  static_cast<unsigned>(segno % per_id));
    return out;
}

ConninfoMap public_upstream(const std::string& conninfo) {
    ConninfoMap out;
    auto parsed = parse_conninfo(conninfo);
    if (!parsed) return out;
    for (const char* k : {"host", "hostaddr", "port", "application_name"})
        if (parsed->count(k)) out[k] = parsed->at(k);
    return out;
}

}  // namespace im
