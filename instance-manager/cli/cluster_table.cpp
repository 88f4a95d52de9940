#include "cli/cluster_table.hpp"

#include <iomanip>
#include <sstream>

#include "json_text.hpp"

namespace im {

namespace {
std::string lsn_text(uint64_t lsn) {
    if (lsn == 0) return "";
    std::ostringstream o;
    o << std::uppercase << std::hex << (lsn >> 32) << "/" << (lsn & 0xffffffffULL);
    return o.str();
}

std::string cell(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return "-";
    if (it->is_string()) return it->get<std::string>().empty() ? "-" : it->get<std::string>();
    if (it->is_boolean()) return it->get<bool>() ? "yes" : "no";
    return json_text(*it);
}
}  // namespace

nlohmann::json member_summary(const MemberView& m, const std::vector<MemberView>& all) {
    nlohmann::json upstream = nullptr;
    if (!m.upstream_host.empty()) {
        upstream = m.upstream_host + ":" + m.upstream_port;
        for (const auto& other : all)
            if (other.name != m.name && follows(m, other)) upstream = other.name;
    }
    bool primary = m.role == "primary";
    // A replica's sync_state as its primary reports it (async, potential,
    // sync, quorum); the primary's: its setting's method and number.
    nlohmann::json sync_state = nullptr;
    if (primary) {
        auto names = m.synchronous_standby_names;
        sync_state = names.empty() ? "async" : names.substr(0, names.find(" ("));
    } else {
        for (const auto& other : all)
            if (other.role == "primary" && other.reachable && follows(m, other))
                if (auto it = other.sync_states.find(m.name); it != other.sync_states.end())
                    sync_state = it->second;
    }
    return {{"name", m.name},
            {"url", m.url},
            {"reachable", m.reachable},
            {"role", m.reachable ? nlohmann::json(m.role) : nlohmann::json("unreachable")},
            {"ready", m.ready},
            {"running", m.running},
            {"standby", m.standby},
            {"timeline", m.timeline ? nlohmann::json(m.timeline) : nlohmann::json()},
            {"term", m.reachable ? nlohmann::json(m.term) : nlohmann::json()},
            {"lsn", lsn_text(primary ? m.current_lsn : m.received_lsn)},
            {"replayed_lsn", primary ? "" : lsn_text(m.replayed_lsn)},
            {"lag_bytes", primary || !m.reachable ? nlohmann::json() : nlohmann::json(m.lag_bytes)},
            {"streaming", m.streaming},
            {"upstream", upstream},
            {"sync", primary ? nlohmann::json(m.synchronous_standby_names) : nlohmann::json()},
            {"sync_state", sync_state},
            {"pending_restart", m.pending_restart}};
}

nlohmann::json backup_summary(const nlohmann::json& v) {
    if (!v.is_object()) return nullptr;
    const auto& archiver = v.value("archiver", nlohmann::json());
    const auto& last = v.value("last_backup", nlohmann::json());
    std::string archive = v.value("archive_failing", false) ? "failing"
                          : v.value("stanza_ready", false)  ? "ok"
                                                            : "not ready";
    nlohmann::json out = {
        {"stanza", v.value("stanza", "")},
        {"archive", archive},
        {"last_archived_wal",
         archiver.is_object() ? archiver.value("last_archived_wal", nlohmann::json())
                              : nlohmann::json()},
        {"ready_segments", archiver.is_object() ? archiver.value("ready_segments", 0) : 0},
        {"backups", v.value("backups", 0)},
        {"last_backup", last.is_object() ? last.value("label", "") : ""},
        {"last_backup_type", last.is_object() ? last.value("type", "") : ""},
        {"last_backup_stop", last.is_object() ? last.value("stop", "") : ""},
        {"running", v.value("running", nlohmann::json())}};
    if (const auto& check = v.value("check", nlohmann::json());
        check.is_object() && !check.value("ok", true))
        out["check_error"] = check.value("error", "");
    return out;
}

std::string render_table(const nlohmann::json& cluster) {
    std::vector<std::vector<std::string>> rows = {
        {"MEMBER", "ROLE", "READY", "TL", "LSN", "LAG(B)", "TERM", "UPSTREAM", "SYNC", "RESTART"}};
    for (const auto& m : cluster.value("members", nlohmann::json::array())) {
        // The cluster-file settings waiting for a restart.
        std::string pending;
        if (auto p = m.find("pending_restart"); p != m.end() && p->is_array())
            for (const auto& n : *p)
                if (n.is_string()) pending += (pending.empty() ? "" : ",") + n.get<std::string>();
        rows.push_back({cell(m, "name"), cell(m, "role"), cell(m, "ready"), cell(m, "timeline"),
                        cell(m, "lsn"), cell(m, "lag_bytes"), cell(m, "term"),
                        cell(m, "upstream"), cell(m, "sync_state"),
                        pending.empty() ? "-" : pending});
    }
    std::vector<size_t> width(rows[0].size(), 0);
    for (const auto& r : rows)
        for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
    std::ostringstream o;
    o << "Cluster: term " << cell(cluster, "term") << ", primary " << cell(cluster, "primary");
    // Asked of the controller: its durability setting, and why no failover.
    if (auto s = cluster.find("settings"); s != cluster.end() && s->is_object())
        o << ", durability " << cell(*s, "durability") << " (" << cell(*s, "data_durability")
          << ")";
    o << "\n";
    if (auto b = cluster.find("failover_blocked"); b != cluster.end() && b->is_string())
        o << "Failover blocked: " << b->get<std::string>() << "\n";
    if (auto r = cluster.find("rollout");
        r != cluster.end() && r->is_object() && r->value("active", false)) {
        o << "Rolling restart since " << cell(*r, "started_at") << ": " << cell(*r, "restarts")
          << " restarts, " << cell(*r, "switchovers") << " switchovers so far";
        if (auto st = r->find("step"); st != r->end() && st->is_object())
            o << "; " << cell(*st, "kind") << " " << cell(*st, "member") << ": "
              << cell(*st, "reason");
        o << "\n";
    }
    if (auto b = cluster.find("backup"); b != cluster.end() && b->is_object()) {
        o << "Backups: stanza " << cell(*b, "stanza") << ", " << cell(*b, "backups") << " held";
        if (!b->value("last_backup", "").empty())
            o << ", newest " << cell(*b, "last_backup_type") << " " << cell(*b, "last_backup")
              << " (ended " << cell(*b, "last_backup_stop") << ")";
        if (b->value("running", nlohmann::json()).is_object())
            o << ", a " << cell((*b)["running"], "type") << " backup running"
              << ((*b)["running"].contains("member") ? " on " + cell((*b)["running"], "member")
                                                     : std::string());
        o << "; archive " << cell(*b, "archive") << " (last " << cell(*b, "last_archived_wal")
          << ", " << cell(*b, "ready_segments") << " waiting)";
        if (b->contains("check_error")) o << "; check: " << cell(*b, "check_error");
        o << "\n";
    }
    for (const auto& r : rows) {
        for (size_t i = 0; i < r.size(); ++i) {
            if (i + 1 == r.size()) {
                o << r[i];  // the last column unpadded: no trailing blanks
                break;
            }
            o << std::left << std::setw(static_cast<int>(width[i])) << r[i] << "  ";
        }
        o << "\n";
    }
    return o.str();
}

std::string render_backups(const nlohmann::json& j) {
    std::ostringstream o;
    o << "Stanza " << cell(j, "stanza") << " (" << cell(j, "status") << "), read on "
      << cell(j, "member") << "; WAL archived " << cell(j, "archive_min") << " .. "
      << cell(j, "archive_max") << "\n";
    auto mb = [](const nlohmann::json& b, const char* k) {
        std::ostringstream v;
        v << std::fixed << std::setprecision(1) << b.value(k, 0.0) / (1024.0 * 1024.0) << " MB";
        return v.str();
    };
    o << std::left << std::setw(26) << "LABEL" << std::setw(6) << "TYPE" << std::setw(22)
      << "STOP" << std::setw(8) << "TOOK" << std::setw(12) << "SIZE" << std::setw(12) << "STORED"
      << "WAL\n";
    const auto& list = j.value("backups", nlohmann::json::array());
    for (const auto& b : list)
        o << std::left << std::setw(26) << cell(b, "label") << std::setw(6) << cell(b, "type")
          << std::setw(22) << cell(b, "stop") << std::setw(8)
          << (std::to_string(b.value("duration_s", 0)) + " s") << std::setw(12)
          << mb(b, "size_bytes") << std::setw(12) << mb(b, "repository_bytes")
          << cell(b, "wal_start") << " .. " << cell(b, "wal_stop") << "\n";
    if (list.empty()) o << "(no backups yet)\n";
    if (j.value("backup_running", false)) o << "A backup is running.\n";
    return o.str();
}

}  // namespace im
