#include "controller/cluster_rules.hpp"

#include <algorithm>

#include "api/status_report.hpp"
#include "bootstrap/replication_config.hpp"
#include "http_client.hpp"
#include "json_fields.hpp"

namespace im {

MemberView member_view(const std::string& name, const std::string& url,
                       const nlohmann::json& status) {
    MemberView m;
    m.name = name;
    m.url = url;
    if (auto parsed = http_client::parse_url(url)) m.host = parsed->host;
    if (!status.is_object()) return m;
    m.reachable = true;
    m.status = status;
    m.role = json_string(status, "role");
    m.ready = status.value("ready", false);
    m.standby = status.value("standby", false);
    m.term = status.value("term", uint64_t{0});
    if (auto a = status.find("authority"); a != status.end() && a->is_object()) {
        auto u64 = [](const nlohmann::json& j, const char* key) {
            auto it = j.is_object() ? j.find(key) : j.end();
            return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : uint64_t{0};
        };
        const nlohmann::json member = a->value("member", nlohmann::json());
        m.promised_term = u64(member, "promised_term");
        m.granted_term = u64(member, "granted_term");
        m.granted_to = json_string(member, "granted_to");
        m.joined = member.is_object() && member.value("membership", nlohmann::json()).is_object();
        m.write_term = u64(*a, "write_term");
        const nlohmann::json right = a->value("write_right", nlohmann::json());
        auto w = right.is_object() ? right.find("may_write") : right.end();
        m.may_write = w != right.end() && w->is_boolean() && w->get<bool>();
    }
    const auto& pg = status.value("postgres", nlohmann::json::object());
    m.running = pg.value("running", false);
    m.timeline =
        pg.value("timeline", nlohmann::json()).is_number() ? pg["timeline"].get<uint32_t>() : 0;
    m.system_identifier = json_string(pg, "system_identifier");
    m.pg_port = pg.value("port", 0);
    m.current_lsn = parse_lsn(json_string(pg, "current_lsn"));
    const auto& repl = status.value("replication", nlohmann::json::object());
    m.received_lsn = parse_lsn(json_string(repl, "received_lsn"));
    if (auto a = status.find("check_age_ms"); a != status.end() && a->is_number_integer())
        m.check_age_ms = a->get<int64_t>();
    if (auto auth = status.find("authority"); auth != status.end() && auth->is_object())
        if (auto f = auth->find("former_primary_fork"); f != auth->end() && f->is_object() &&
                                                        (*f)["timeline"].is_number_unsigned())
            m.former_fork = std::make_pair((*f)["timeline"].get<uint32_t>(),
                                           parse_lsn(json_string(*f, "lsn")));
    m.replayed_lsn = parse_lsn(json_string(repl, "replayed_lsn"));
    if (m.received_lsn == 0) m.received_lsn = parse_lsn(json_string(pg, "receive_lsn"));
    if (m.replayed_lsn == 0) m.replayed_lsn = parse_lsn(json_string(pg, "replay_lsn"));
    m.streaming = repl.value("streaming", false);
    m.pg_start_time = json_string(pg, "start_time");
    if (auto par = status.find("parameters"); par != status.end() && par->is_object()) {
        if (auto p = par->find("pending_restart"); p != par->end() && p->is_array())
            for (const auto& n : *p)
                if (n.is_string()) m.pending_restart.push_back(n.get<std::string>());
        // A version counts once its pending settings are known.
        auto known = par->find("pending_known");
        if (known != par->end() && known->is_boolean() && known->get<bool>())
            m.parameters_version = json_string(*par, "version");
        for (const auto* key : {"lowered", "raised"})
            if (auto l = par->find(key); l != par->end() && l->is_array())
                for (const auto& n : *l)
                    if (n.is_string())
                        (std::string(key) == "lowered" ? m.lowered : m.raised)
                            .push_back(n.get<std::string>());
    }
    m.lag_bytes = repl.value("lag_bytes", nlohmann::json()).is_number_unsigned()
                      ? repl["lag_bytes"].get<uint64_t>()
                      : 0;
    const auto& up = repl.value("upstream", nlohmann::json::object());
    m.upstream_host = json_string(up, "host");
    if (m.upstream_host.empty()) m.upstream_host = json_string(up, "hostaddr");
    m.upstream_port = json_string(up, "port");
    m.synchronous_standby_names = json_string(repl, "synchronous_standby_names");
    if (auto reps = repl.find("replicas"); reps != repl.end() && reps->is_array())
        for (const auto& r : *reps) {
            if (json_string(r, "sync_state") == "sync" || json_string(r, "sync_state") == "quorum")
                m.synchronous_peers.push_back(json_string(r, "name"));
            m.sync_states[json_string(r, "name")] = json_string(r, "sync_state");
        }
    return m;
}

std::optional<size_t> find_primary(const std::vector<MemberView>& members) {
    std::optional<size_t> best;
    for (size_t i = 0; i < members.size(); ++i) {
        const auto& m = members[i];
        if (!m.reachable || m.role != "primary" || !m.ready) continue;
        if (m.write_term != 0 && !m.may_write) continue;  // its grants run out: not writable
        if (!best || m.term > members[*best].term) best = i;
    }
    return best;
}

std::string cluster_system_identifier(const std::vector<MemberView>& members) {
    std::map<std::string, int> votes;
    for (const auto& m : members)
        if (m.reachable && !m.system_identifier.empty()) ++votes[m.system_identifier];
    std::string best;
    int most = 0;
    for (const auto& [id, n] : votes)
        if (n > most) best = id, most = n;
    return best;
}

std::optional<size_t> pick_candidate(const std::vector<MemberView>& members,
                                     const std::string& system_identifier,
                                     const std::map<std::string, int>& priority,
                                     const std::optional<std::set<std::string>>& only) {
    auto prio = [&](const MemberView& m) {
        auto it = priority.find(m.name);
        return it == priority.end() ? 0 : it->second;
    };
    std::optional<size_t> best;
    for (size_t i = 0; i < members.size(); ++i) {
        const auto& m = members[i];
        if (!m.reachable || m.role != "replica" || !m.running) continue;
        if (!system_identifier.empty() && m.system_identifier != system_identifier) continue;
        if (only && !only->count(m.name)) continue;
        if (prio(m) < 0) continue;  // a negative priority: never promoted
        if (!best) {
            best = i;
            continue;
        }
        const auto& b = members[*best];
        auto key = [&](const MemberView& x) {
            return std::make_tuple(x.received_lsn, x.replayed_lsn, prio(x));
        };
        if (key(m) > key(b) || (key(m) == key(b) && m.name < b.name)) best = i;
    }
    return best;
}

bool follows(const MemberView& replica, const MemberView& primary) {
    return replica.upstream_host == primary.host &&
           replica.upstream_port == std::to_string(primary.pg_port);
}

std::string conninfo_of(const MemberView& m) {
    return "host=" + m.host + " port=" + std::to_string(m.pg_port);
}

nlohmann::json synchronous_spec(const std::vector<std::string>& membership,
                                const std::string& primary, const std::string& method, unsigned n,
                                const std::map<std::string, int>& priority,
                                const std::optional<std::set<std::string>>& streaming) {
    if (n == 0) return nullptr;
    std::vector<std::pair<int, std::string>> order;
    unsigned healthy = 0;
    for (const auto& name : membership) {
        if (name == primary) continue;
        auto it = priority.find(name);
        // A member never promoted is no synchronous standby: the only holder
        // of a commit it acknowledged could never be promoted, and the
        // synchronous failover rule would hold every failover back.
        if (it != priority.end() && it->second < 0) continue;
        order.push_back({-(it == priority.end() ? 0 : it->second), name});
        if (streaming && streaming->count(name)) ++healthy;
    }
    std::sort(order.begin(), order.end());
    nlohmann::json standbys = nlohmann::json::array();
    for (const auto& [p, name] : order) standbys.push_back(name);
    unsigned number = std::min<unsigned>(n, static_cast<unsigned>(standbys.size()));
    if (streaming) number = std::min(number, healthy);
    if (number == 0) return nullptr;
    return {{"method", method}, {"number", number}, {"standbys", standbys}};
}

}  // namespace im
