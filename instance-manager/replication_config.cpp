#include "replication_config.hpp"

#include "pg_files.hpp"
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

ConninfoMap public_upstream(const std::string& conninfo) {
    ConninfoMap out;
    auto parsed = parse_conninfo(conninfo);
    if (!parsed) return out;
    for (const char* k : {"host", "hostaddr", "port", "application_name"})
        if (parsed->count(k)) out[k] = parsed->at(k);
    return out;
}

}  // namespace im
