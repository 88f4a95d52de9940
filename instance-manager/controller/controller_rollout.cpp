// The controller's side of the rolling restart (rollout.hpp decides): the
// state it keeps between steps, each step carried out beside the control
// loop, the operator's POST /v1/restart, and what /v1/cluster shows.
#include "api/status_report.hpp"
#include "controller/controller.hpp"
#include "json_text.hpp"
#include "log.hpp"

namespace im {

namespace {
using Clock = std::chrono::steady_clock;
constexpr auto kRestartTimeout = std::chrono::seconds(120);
constexpr auto kRetryAfterFailure = std::chrono::seconds(5);
// How long a primary restarting in place is waited for before a failover
// may replace it (its restart takes seconds; a manager that stops answering
// is not waited for at all).
constexpr auto kPrimaryRestartWait = std::chrono::seconds(60);
constexpr size_t kStepsKept = 20;
// A switchover that failed left a failover to follow (or refused early): the
// next attempt waits longer than after a failed restart.
constexpr auto kRetryAfterSwitchoverFailure = std::chrono::seconds(30);

const MemberView* view_of(const std::vector<MemberView>& views, const std::string& name) {
    for (const auto& v : views)
        if (v.name == name) return &v;
    return nullptr;
}
}  // namespace

rollout::Input Controller::rollout_input() const {
    rollout::Input in;
    in.membership = membership_.names;
    in.priority = cfg_.priority;
    in.requested = rollout_.requested;
    in.out_of_date = rollout_.out_of_date;
    in.in_flight = rollout_.in_flight;
    in.min_replay_lsn = rollout_.min_replay_lsn;
    return in;
}

std::optional<std::string> Controller::rollout_holdoff() const {
    if (!rollout_.primary_restart_sent || !rollout_.in_flight.count(primary_)) return std::nullopt;
    const MemberView* p = view_of(views_, primary_);
    if (!p || !p->reachable) return std::nullopt;
    if (Clock::now() - *rollout_.primary_restart_sent > cfg_.failover_delay + kPrimaryRestartWait)
        return std::nullopt;
    return std::string("the rolling restart restarts the primary in place: waiting");
}

void Controller::rollout_step() {
    auto& r = rollout_;
    if (r.acting || Clock::now() < r.retry_at) return;
    // Only readings asked for after the last step ended: an answer from
    // before could show a member as it was before its restart.
    if (poll_sent_ <= r.acted_at) return;
    // Restarts seen done: the member reports another postgres start time.
    for (auto it = r.in_flight.begin(); it != r.in_flight.end();) {
        const MemberView* m = view_of(views_, it->first);
        if (!m && !membership_.contains(it->first)) {
            it = r.in_flight.erase(it);  // neither listed nor a member: nothing to wait for
            continue;
        }
        if (m && m->reachable && !m->pg_start_time.empty() && m->pg_start_time != it->second) {
            // The primary restarted in place: its replicas must replay its
            // new settings' record before they restart.
            if (r.primary_restart_sent && it->first == primary_) {
                r.await_primary_lsn = true;
                r.primary_restart_sent.reset();
            }
            it = r.in_flight.erase(it);
            continue;
        }
        ++it;
    }
    if (r.in_flight.empty()) r.primary_restart_sent.reset();
    for (auto it = r.requested.begin(); it != r.requested.end();) {
        const MemberView* m = view_of(views_, it->first);
        if (!m || (m->reachable && !m->pg_start_time.empty() && m->pg_start_time != it->second))
            it = r.requested.erase(it);
        else
            ++it;
    }
    if (r.await_primary_lsn) {
        const auto p = find_primary(views_);
        if (p && views_[*p].current_lsn != 0) {
            r.min_replay_lsn = views_[*p].current_lsn;
            r.min_replay_primary = views_[*p].name;
            r.min_replay_timeline = views_[*p].timeline;
            r.await_primary_lsn = false;
        }
    }
    // Another primary since (a failover): its WAL is another history, and
    // the position says nothing about it.
    if (r.min_replay_lsn != 0) {
        const auto p = find_primary(views_);
        if (r.min_replay_primary != primary_ ||
            (p && views_[*p].timeline != r.min_replay_timeline))
            r.min_replay_lsn = 0;
    }
    // Kubernetes: pods made from an older template of their StatefulSet.
    r.out_of_date.clear();
    for (const auto& [name, pod] : pods_) {
        auto rev = update_revisions_.find(pod.owner);
        if (pod.deleting || rev == update_revisions_.end()) continue;
        if (auto why = out_of_date_reason(pod, rev->second); !why.empty())
            r.out_of_date[name] = why;
    }
    auto step = r.await_primary_lsn
                    ? rollout::Step{rollout::Step::Kind::wait, primary_,
                                    "restarted in place: waiting for it to serve again"}
                    : rollout::next_step(views_, find_primary(views_), rollout_input());
    using Kind = rollout::Step::Kind;
    if (step.kind == Kind::idle) {
        if (!r.started_at.empty())
            decide("rollout-done", "",
                   "the rolling restart is done: " + std::to_string(r.restarts) +
                       " restarts, " + std::to_string(r.switchovers) + " switchovers");
        r.started_at.clear();
        r.min_replay_lsn = 0;
        r.step = step;
        return;
    }
    if (r.started_at.empty()) {
        r.started_at = iso8601(std::chrono::system_clock::now());
        r.restarts = r.switchovers = 0;
        nlohmann::json why = nlohmann::json::object();
        for (const auto& [name, reason] : rollout::restart_reasons(views_, rollout_input()))
            why[name] = reason;
        decide("rollout", "", "members need a restart: replicas first, the primary last",
               {{"members", why}});
    }
    if (step.kind == Kind::wait) {
        // Said once for each member waited for, then every 5 s (a lag's
        // byte count changes every poll).
        decide_now_and_then("rollout-wait", step.member, step.reason);
        r.step = step;
        return;
    }
    r.step = step;
    r.acting = true;
    asio::co_spawn(io_, rollout_act(step), [this](std::exception_ptr e) {
        rollout_.acting = false;
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            log::error("controller", "a rolling-restart step failed", {{"error", ex.what()}});
        }
        rollout_.retry_at = Clock::now() + kRetryAfterFailure;
    });
}

awaitable<void> Controller::rollout_act(rollout::Step step) {
    ScopedFlag acting{rollout_.acting};
    auto& r = rollout_;
    const MemberView* found = view_of(views_, step.member);
    if (!found) co_return;
    const MemberView member = *found;  // polls go on while the step runs
    // A newer controller took over since the step was chosen (or this one
    // was paused): it is not ours to take.
    if (superseded_) co_return;
    nlohmann::json record = {{"time", iso8601(std::chrono::system_clock::now())},
                             {"action", rollout::to_string(step.kind)},
                             {"member", member.name},
                             {"reason", step.reason}};
    const auto began = Clock::now();
    if (step.kind == rollout::Step::Kind::restart) {
        decide("rollout-restart", member.name, step.reason);
        r.in_flight[member.name] = member.pg_start_time;
        if (step.in_place_primary) r.primary_restart_sent = Clock::now();
        Status done = Ok{};
        bool restarted = true;
        auto pod = pods_.find(member.name);
        if (kube_ && step.replace_pod && pod != pods_.end()) {
            // A new pod from the current template: the StatefulSet makes it
            // (updateStrategy OnDelete) on the same volume. Only the pod as
            // read (uid and resourceVersion preconditions), and a replica's
            // only while it carries the replica label: a newer controller
            // that made it primary relabeled it, which also moved its
            // resourceVersion on.
            if (!step.in_place_primary && pod->second.role != "replica")
                done = make_error("its pod is not labeled role=replica (now " +
                                  (pod->second.role.empty() ? std::string("none")
                                                            : pod->second.role) +
                                  ")");
            else
                done = co_await kube_->delete_pod(pod->second);
        } else {
            // The member restarts only if its postgres is still the one we
            // saw (a request on a stale reading restarts nothing twice), and
            // only for the term in charge: a member that accepted a newer
            // controller's term refuses (and this one stands by).
            nlohmann::json body = {{"term", term_}, {"start_time", member.pg_start_time}};
            auto answer = co_await command(member, "restart", body, kRestartTimeout);
            if (!answer)
                done = answer.error();
            else
                restarted = answer->value("restarted", false);
        }
        if (!done) {
            decide("rollout-restart-failed", member.name, done.error().message);
            r.in_flight.erase(member.name);
            r.primary_restart_sent.reset();
            r.retry_at = Clock::now() + kRetryAfterFailure;
        } else if (restarted) {
            ++r.restarts;
        }
        record["ok"] = static_cast<bool>(done);
        record["restarted"] = static_cast<bool>(done) && restarted;
    } else if (step.kind == rollout::Step::Kind::switchover) {
        const MemberView* old = view_of(views_, primary_);
        const std::string old_name = old ? old->name : "";
        // The old primary is done once it runs again (as a replica: its
        // demotion starts postgres anew).
        if (old) r.in_flight[old_name] = old->pg_start_time;
        auto done = co_await switchover(member.name);
        if (!done) {
            decide("rollout-switchover-failed", member.name, done.error().message);
            // Not demoted (refused early): it keeps its start time, and the
            // rule would wait for it for ever.
            if (const MemberView* now = view_of(views_, old_name);
                now && now->pg_start_time == r.in_flight[old_name])
                r.in_flight.erase(old_name);
            r.retry_at = Clock::now() + kRetryAfterSwitchoverFailure;
        } else {
            ++r.switchovers;
            record["from"] = old_name;
            record["primary_writable_after_ms"] = done->value("primary_writable_after_ms", 0);
        }
        record["ok"] = static_cast<bool>(done);
    }
    record["took_ms"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began).count();
    r.done.push_front(record);
    if (r.done.size() > kStepsKept) r.done.pop_back();
    r.acted_at = Clock::now();
}

awaitable<void> Controller::revision_loop() {
    // Which template each StatefulSet's new pods get: pods made from an
    // older one are replaced by the rolling restart (updateStrategy OnDelete
    // leaves the order to us).
    std::string last_error;
    while (!stopping_) {
        std::set<std::string> owners;
        for (const auto& [name, pod] : pods_)
            if (!pod.owner.empty()) owners.insert(pod.owner);
        for (const auto& owner : owners) {
            auto rev = co_await kube_->update_revision(owner);
            if (rev) {
                update_revisions_[owner] = *rev;
                last_error.clear();
            } else if (rev.error().message != last_error) {
                last_error = rev.error().message;
                log::warn("controller", "cannot read the StatefulSet's revision",
                          {{"statefulset", owner}, {"error", last_error}});
            }
        }
        co_await pause(std::chrono::seconds(5));
    }
}

awaitable<HttpResponse> Controller::restart_request(const HttpRequest& req) {
    if (!bearer_matches(req, token_))
        co_return error_response(http::status::unauthorized, "missing or wrong bearer token",
                                 req.version());
    auto body =
        parse_command_body(req.body(), {{"member", {FieldType::name}}, {"all", {FieldType::flag}}});
    if (!body)
        co_return error_response(http::status::bad_request, body.error().message, req.version());
    const bool all = body->value("all", false);
    if (all == body->contains("member"))
        co_return error_response(http::status::bad_request,
                                 "name one member (\"member\") or all of them (\"all\": true)",
                                 req.version());
    if (superseded_)
        co_return error_response(http::status::conflict,
                                 "this controller stands by: a newer one is in charge",
                                 req.version());
    co_await poll();  // the start times asked against must be current
    std::vector<const MemberView*> asked;
    if (all) {
        for (const auto& v : views_) asked.push_back(&v);
    } else {
        const std::string name = (*body)["member"].get<std::string>();
        const MemberView* m = view_of(views_, name);
        if (!m)
            co_return error_response(http::status::not_found, "no member named " + name,
                                     req.version());
        asked.push_back(m);
    }
    // Each asked member must run now: its restart is done when it reports
    // another start time than this one.
    for (const MemberView* m : asked)
        if (!m->reachable || !m->running || m->pg_start_time.empty())
            co_return error_response(http::status::conflict,
                                     m->name + " is not running (" +
                                         (m->reachable ? "role " + m->role : "unreachable") +
                                         "): nothing changed",
                                     req.version());
    nlohmann::json names = nlohmann::json::array();
    for (const MemberView* m : asked) {
        rollout_.requested.emplace(m->name, m->pg_start_time);
        names.push_back(m->name);
    }
    decide("restart-requested", all ? "" : asked.front()->name,
           "asked over the API: replicas one at a time, the primary by switchover",
           {{"members", names}});
    co_return json_response(http::status::ok, {{"requested", names}, {"rollout", rollout_view()}},
                            req.version());
}

nlohmann::json Controller::rollout_view() const {
    nlohmann::json pending = nlohmann::json::object();
    for (const auto& [name, reason] : rollout::restart_reasons(views_, rollout_input()))
        pending[name] = reason;
    nlohmann::json in_flight = nlohmann::json::array();
    for (const auto& [name, before] : rollout_.in_flight) in_flight.push_back(name);
    nlohmann::json steps = nlohmann::json::array();
    for (const auto& s : rollout_.done) steps.push_back(s);
    const auto& st = rollout_.step;
    return {{"active", !rollout_.started_at.empty()},
            {"started_at", rollout_.started_at.empty() ? nlohmann::json()
                                                      : nlohmann::json(rollout_.started_at)},
            {"pending", pending},
            {"restarting", in_flight},
            {"step",
             st.kind == rollout::Step::Kind::idle
                 ? nlohmann::json()
                 : nlohmann::json{{"kind", rollout::to_string(st.kind)},
                                  {"member", st.member.empty() ? nlohmann::json()
                                                               : nlohmann::json(st.member)},
                                  {"reason", st.reason}}},
            {"restarts", rollout_.restarts},
            {"switchovers", rollout_.switchovers},
            {"steps", steps}};
}

}  // namespace im
