#include "controller/backup_schedule.hpp"

#include <algorithm>
#include <sstream>

#include "config.hpp"

namespace im {

Result<BackupSchedule> parse_backup_schedule(const std::string& text) {
    BackupSchedule s;
    std::stringstream in(text);
    std::string part;
    const std::string shape =
        "--backup-schedule: like 'full=7d,diff=1d,incr=1h' (full is required; intervals of at "
        "least 1m)";
    while (std::getline(in, part, ',')) {
        auto eq = part.find('=');
        if (eq == std::string::npos) return make_error(shape);
        std::string type = part.substr(0, eq);
        std::chrono::milliseconds every{};
        if (!parse_duration(part.substr(eq + 1), every) || every < std::chrono::minutes(1))
            return make_error(shape);
        auto secs = std::chrono::duration_cast<std::chrono::seconds>(every);
        std::chrono::seconds* slot = type == "full"   ? &s.full
                                     : type == "diff" ? &s.diff
                                     : type == "incr" ? &s.incr
                                                      : nullptr;
        if (!slot || slot->count() != 0) return make_error(shape);
        *slot = secs;
    }
    if (!s.enabled()) return make_error(shape);
    s.text = text;
    return s;
}

NewestBackups newest_backups(const nlohmann::json& view) {
    NewestBackups out;
    if (!view.is_object() || !view.contains("newest") || !view["newest"].is_object()) return out;
    const auto& n = view["newest"];
    auto get = [&](const char* k) -> std::optional<std::time_t> {
        if (n.contains(k) && n[k].is_number_integer()) return n[k].get<std::time_t>();
        return std::nullopt;
    };
    out.full = get("full");
    out.diff = get("diff");
    out.incr = get("incr");
    return out;
}

std::string backup_due(const BackupSchedule& s, const NewestBackups& n, std::time_t now) {
    if (!s.enabled()) return "";
    auto older = [&](std::optional<std::time_t> t, std::chrono::seconds every) {
        return !t || now - *t >= every.count();
    };
    if (older(n.full, s.full)) return "full";
    // A differential covers what changed since the full; an incremental
    // since whatever is newest.
    std::optional<std::time_t> since_full = n.full;
    if (n.diff && *n.diff > *since_full) since_full = n.diff;
    if (s.diff.count() > 0 && older(since_full, s.diff)) return "diff";
    std::optional<std::time_t> newest = since_full;
    if (n.incr && *n.incr > *newest) newest = n.incr;
    if (s.incr.count() > 0 && older(newest, s.incr)) return "incr";
    return "";
}

namespace {
const nlohmann::json& server_of(const MemberView& m) {
    static const nlohmann::json none;
    const auto& b = m.status.contains("backup") ? m.status["backup"] : none;
    if (!b.is_object() || !b.contains("server") || !b["server"].is_object()) return none;
    return b["server"];
}
}  // namespace

std::optional<BackupSource> backup_source(const std::vector<MemberView>& views, size_t primary,
                                          const std::string& type,
                                          const std::string& failures_since, uint64_t max_lag) {
    if (primary >= views.size()) return std::nullopt;
    const MemberView& p = views[primary];
    BackupSource out{primary, {{"type", type}}, false};
    const auto& ps = server_of(p);
    if (!ps.is_object() || !ps.value("running", false)) return out;
    nlohmann::json server = {
        {"host",
         ps.value("host", nlohmann::json()).is_string() ? ps["host"].get<std::string>() : p.host},
        {"port", ps.value("port", 0)},
        {"pg_path", ps.value("pg_path", "")},
        {"pg_port", ps.value("pg_port", 0)},
        {"socket_path", ps.value("socket_path", "")}};
    std::optional<size_t> best;
    for (size_t i = 0; i < views.size(); ++i) {
        const MemberView& r = views[i];
        if (i == primary || !r.reachable || !r.ready || r.role != "replica" || !r.streaming ||
            !follows(r, p) || r.lag_bytes > max_lag || r.timeline != p.timeline)
            continue;
        const auto& rs = server_of(r);
        if (!rs.is_object()) continue;  // no client certificate to reach the primary with
        const auto& last = r.status["backup"].value("last_result", nlohmann::json());
        if (last.is_object() && !last.value("ok", true) &&
            last.value("finished_at", "") > failures_since)
            continue;
        if (!best || r.lag_bytes < views[*best].lag_bytes ||
            (r.lag_bytes == views[*best].lag_bytes && r.name < views[*best].name))
            best = i;
    }
    if (!best) return out;
    return BackupSource{*best, {{"type", type}, {"primary", server}}, true};
}

void BackupsRunning::observe(const std::vector<MemberView>& views, Time sent) {
    std::set<std::string> listed;
    for (const auto& m : views) {
        listed.insert(m.name);
        if (!m.reachable) continue;  // unknown: the mark, if any, stays
        const auto& b = m.status.value("backup", nlohmann::json());
        if (b.is_object() && b.value("running", nlohmann::json()).is_object()) {
            marks_.try_emplace(m.name, sent);
        } else if (auto it = marks_.find(m.name); it != marks_.end() && it->second <= sent) {
            marks_.erase(it);
        }
    }
    for (auto it = marks_.begin(); it != marks_.end();)
        it = listed.count(it->first) ? std::next(it) : marks_.erase(it);
}

std::optional<std::string> BackupsRunning::any() const {
    if (marks_.empty()) return std::nullopt;
    return marks_.begin()->first;
}

RepositoryView newest_repository_view(const std::vector<MemberView>& views) {
    RepositoryView out;
    std::time_t best = -1;
    std::string best_read;
    for (const auto& m : views) {
        if (!m.reachable || !m.status.contains("backup")) continue;
        const auto& b = m.status["backup"];
        if (!b.is_object()) continue;
        const auto& result = b.value("last_result", nlohmann::json());
        const std::string ended =
            result.is_object() ? result.value("finished_at", std::string()) : std::string();
        out.last_end = std::max(out.last_end, ended);
        if (b.contains("repository_error") || !b.contains("newest")) continue;
        const std::string read_at = b.value("repository_read_at", "");
        if (!ended.empty() && ended >= read_at) out.unread_backup = true;
        NewestBackups n = newest_backups(b);
        std::time_t newest = -1;
        for (auto t : {n.full, n.diff, n.incr})
            if (t) newest = std::max(newest, *t);
        if (out.view.is_null() || newest > best || (newest == best && read_at > best_read)) {
            out.view = b;
            best = newest;
            best_read = read_at;
        }
    }
    return out;
}

}  // namespace im
