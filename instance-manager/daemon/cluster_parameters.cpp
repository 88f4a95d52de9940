// The daemon's side of the parameter watch (parameters/parameter_watch.hpp):
// pg_hba.conf rewritten with the extra rules, the server's reading of it,
// the reload, and what status says.
#include "daemon/daemon.hpp"
#include "parameters/parameter_file.hpp"

namespace im {

Status Daemon::write_hba(const std::string& extra_rules) {
    if (!prepared_) return make_error("the instance is still bootstrapping");
    std::string before = prepared_->extra_hba;
    prepared_->extra_hba = extra_rules;
    auto st = write_managed_files(cfg_, *prepared_);
    if (!st) prepared_->extra_hba = before;
    return st;
}

awaitable<Result<std::string>> Daemon::hba_errors() {
    PgSession session(io_.get_executor());
    if (auto st = co_await monitor_.connect_local(session, std::chrono::seconds(10)); !st)
        co_return st.error();
    // pg_hba_file_rules reads the file as it is on disk, as a reload would.
    auto r = co_await session.query(
        "SELECT COALESCE(string_agg('line ' || line_number || ': ' || error, '; '"
        " ORDER BY line_number), '') FROM pg_hba_file_rules WHERE error IS NOT NULL",
        std::chrono::seconds(10));
    if (!r) co_return r.error();
    co_return pg_value(r->get(), 0, 0).value_or("");
}

awaitable<Status> Daemon::reload() {
    supervisor_.reload();
    monitor_.poke();
    co_return Ok{};
}

nlohmann::json Daemon::parameters_view() const {
    nlohmann::json out = params_.view();
    if (!out.is_object()) return out;
    nlohmann::json pending = nlohmann::json::array();
    // Hot standby needs at least its primary's value of a few settings: a
    // decrease must reach the primary before its replicas (the controller
    // then restarts the primary first), an increase the replicas first. The
    // value a restart gives is the server's reading of the files (a name
    // taken out of the file falls back to its default).
    nlohmann::json lowered = nlohmann::json::array(), raised = nlohmann::json::array();
    for (const auto& p : state_.pg.pending_settings) {
        const std::string name = p.value("name", "");
        // Only what the cluster's file changed: a setting pending from ALTER
        // SYSTEM or a hand edit is not the controller's to restart for (it
        // shows in postgres.pending_restart_settings; a restart on request
        // applies it).
        if (!params_.ever_applied(name)) continue;
        pending.push_back(name);
        if (!parameters::hot_standby_sensitive(name)) continue;
        // Plain integers only (these settings have no unit); the file's text
        // is raw: anything else is reported neither way.
        auto number = [](const std::string& text) -> std::optional<long long> {
            if (text.empty() || text.size() > 18 ||
                text.find_first_not_of("0123456789") != std::string::npos)
                return std::nullopt;
            return std::stoll(text);
        };
        const auto now = number(p.value("setting", ""));
        const auto next = number(p.value("pending", ""));
        if (now && next && *next < *now) lowered.push_back(name);
        if (now && next && *next > *now) raised.push_back(name);
    }
    out["lowered"] = lowered;
    out["raised"] = raised;
    const bool primary_first = !lowered.empty();
    out["pending_restart"] = pending;
    out["primary_first"] = primary_first;
    // Whether `pending_restart` is known for this version: a check of
    // postgres that began well after the reload (postgres and the monitor's
    // session take in the new file asynchronously). The controller's
    // rolling restart acts on a version only once every member knows.
    out["pending_known"] = state_.pg.checks > 0 && state_.pg.accepting &&
                           state_.pg.checked_steady > params_.applied_steady() + std::chrono::seconds(1);
    return out;
}

}  // namespace im
