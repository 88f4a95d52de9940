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
        if (eq == std::string::npos) return make_error(shape, 2);
        std::string type = part.substr(0, eq);
        std::chrono::milliseconds every{};
        if (!parse_duration(part.substr(eq + 1), every) || every < std::chrono::minutes(1))
            return make_error(shape, 2);
        auto secs = std::chrono::duration_cast<std::chrono::seconds>(every);
        std::chrono::seconds* slot = type == "full"   ? &s.full
                                     : type == "diff" ? &s.diff
                                     : type == "incr" ? &s.incr
                                                      : nullptr;
        if (!slot || slot->count() != 0) return make_error(shape, 2);
        *slot = secs;
    }
    if (!s.enabled()) return make_error(shape, 2);
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

}  // namespace im
