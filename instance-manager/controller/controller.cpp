#include "controller/controller.hpp"

#include <signal.h>
#include <unistd.h>

#include <ctime>
#include <random>

#include "api/status_report.hpp"
#include "bootstrap/replication_config.hpp"
#include "cli/cluster_table.hpp"
#include "controller/backup_schedule.hpp"
#include "controller/role_labels.hpp"
#include "fs_util.hpp"
#include "json_fields.hpp"
#include "json_text.hpp"
#include "log.hpp"
#include "quorum/member_service.hpp"
#include "secrets.hpp"

namespace im {

namespace {
using Clock = std::chrono::steady_clock;
constexpr auto kCommandTimeout = std::chrono::seconds(120);  // a rewind or a clone may be slow
constexpr auto kCooldown = std::chrono::seconds(2);
constexpr size_t kDecisionsKept = 30;
constexpr auto kFirstFailoverWait = std::chrono::seconds(30);

long long ms_since(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}
}  // namespace

Controller::Controller(asio::io_context& io, ControllerConfig cfg, std::string token)
    : io_(io),
      cfg_(std::move(cfg)),
      token_(std::move(token)),
      signals_(io, SIGTERM, SIGINT),
      http_(io.get_executor(), HttpLimits{},
            [this](HttpRequest req, PeerInfo peer) { return handle(std::move(req), peer); }) {
    for (const auto& [name, url] : cfg_.members) views_.push_back(member_view(name, url, nullptr));
    membership_ = authority::Membership{1, cfg_.membership};
    // Unique per run: two controllers proposing the same term are told apart.
    std::random_device rd;
    char host[64] = {0};
    ::gethostname(host, sizeof host - 1);
    id_ =
        std::string(host) + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 100000);
    bool https = cfg_.kube.enabled && cfg_.kube.member_scheme == "https";
    for (const auto& [name, url] : cfg_.members)
        if (auto u = http_client::parse_url(url); u && u->tls) https = true;
    if (https)
        if (auto ctx = http_client::make_client_tls(cfg_.tls)) tls_ = *ctx;
}

Controller::~Controller() = default;

int Controller::run() {
    if (auto st = http_.listen(cfg_.listen_host, cfg_.listen_port); !st) {
        log::error("controller", st.error().message);
        return 1;
    }
    signals_.async_wait([this](boost::system::error_code ec, int sig) {
        if (ec) return;
        log::info("controller", "stopping", {{"signal", sig}});
        stopping_ = true;
        http_.stop();
        io_.stop();
    });
    if (cfg_.kube.enabled) {
        auto api = KubeApi::make(cfg_.kube);
        if (!api) {
            log::error("controller", "Kubernetes API: " + api.error().message);
            return 1;
        }
        kube_ = std::move(*api);
    }
    log::info("controller", "starting",
              {{"members",
                cfg_.kube.enabled ? nlohmann::json("pods " + cfg_.kube.selector) : member_urls()},
               {"membership", cfg_.membership},
               {"proposer", id_},
               {"interval_ms", cfg_.interval.count()},
               {"failover_delay_ms", cfg_.failover_delay.count()},
               {"durability", durability_mode()},
               {"data_durability", cfg_.preferred ? "preferred" : "required"}});
    // A loop that dies is a controller that silently stops: say so and exit.
    auto on_exit = [this](const char* what) {
        return [this, what](std::exception_ptr e) {
            if (!e || stopping_) return;
            std::string why = "unknown exception";
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                why = ex.what();
            } catch (...) {
            }
            log::error("controller", std::string(what) + " failed: exiting", {{"error", why}});
            exit_code_ = 1;
            io_.stop();
        };
    };
    asio::co_spawn(io_, control_loop(), on_exit("the control loop"));
    if (kube_) {
        asio::co_spawn(io_, pod_watch_loop(), on_exit("the pod watch"));
        asio::co_spawn(io_, label_loop(), on_exit("the label loop"));
        asio::co_spawn(io_, revision_loop(), on_exit("the revision loop"));
    }
    if (cfg_.backup_schedule.enabled())
        asio::co_spawn(io_, backup_loop(), on_exit("the backup schedule"));
    io_.run();
    return exit_code_;
}

void Controller::decide_now_and_then(const std::string& action, const std::string& member,
                                     const std::string& reason) {
    // Said once every 5 s: a condition that holds for a while is not news
    // every round (keyed without the reason, whose details vary).
    std::string key = "/" + action + "/" + member;
    if (auto it = cooldown_.find(key); it != cooldown_.end() && Clock::now() < it->second) return;
    decide(action, member, reason);
    cooldown_[key] = Clock::now() + std::chrono::seconds(5);
}

std::optional<std::pair<std::string, std::string>> Controller::failover_holdoff() const {
    // A primary on its way up (postgres starting, or its manager asking the
    // members before it serves) is worth waiting for, a while: promoting
    // another instead would rewind it, and with asynchronous replication
    // lose what only it has.
    if (auto why = rollout_holdoff()) return std::make_pair(primary_, *why);
    if (primary_lost_since_ &&
        Clock::now() - *primary_lost_since_ < cfg_.failover_delay + kFirstFailoverWait)
        for (const auto& m : views_)
            // (A primary that reports its role before it is ready is on its way up too.)
            if (m.reachable && !m.standby &&
                (m.role == "starting" || (m.role == "primary" && !m.ready) ||
                 m.status.value("restarting_on_request", false)))
                return std::make_pair(m.name, std::string("a primary on its way up: waiting"));
    // A member that restores the cluster from its backup promotes itself at
    // the restore's target: nobody else is promoted meanwhile.
    for (const auto& m : views_)
        if (m.reachable && m.status.value("restoring", false))
            return std::make_pair(m.name, std::string("it restores the cluster from its backup "
                                                      "and promotes itself: waiting"));
    // A controller that has not seen a primary yet (it just started, or the
    // whole cluster did) does not know who was primary: it waits for every
    // member, up to kFirstFailoverWait, before its first failover.
    if (!adopted_once_ && Clock::now() - started_ < kFirstFailoverWait) {
        size_t missing = std::count_if(views_.begin(), views_.end(),
                                       [](const MemberView& m) { return !m.reachable; });
        if (missing > 0 || views_.empty())
            return std::make_pair(std::string(),
                                  "a new controller waits for every member before "
                                  "its first failover (" +
                                      std::to_string(missing) + " unreachable)");
    }
    return std::nullopt;
}

void Controller::decide(const std::string& action, const std::string& member,
                        const std::string& reason, nlohmann::json extra) {
    metrics_.count_decision(action);
    extra["action"] = action;
    if (!member.empty()) extra["member"] = member;
    extra["reason"] = reason;
    extra["term"] = term_;
    log::info("controller", "decision", extra);
    extra["time"] = iso8601(std::chrono::system_clock::now());
    decisions_.push_front(extra);
    if (decisions_.size() > kDecisionsKept) decisions_.pop_back();
}

nlohmann::json Controller::member_names() const {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [name, url] : cfg_.members) out.push_back(name);
    return out;
}

nlohmann::json Controller::member_urls() const {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [name, url] : cfg_.members) out[name] = url;
    return out;
}

awaitable<Result<nlohmann::json>> Controller::command(const MemberView& m, const std::string& name,
                                                      nlohmann::json body,
                                                      std::chrono::milliseconds timeout) {
    auto url = http_client::parse_url(m.url);
    if (!url) co_return url.error();
    url->path = "/v1/" + name;
    auto reply =
        co_await http_client::async_http_request("POST", *url, json_text(body), token_, timeout,
                                                 tls_, cfg_.tls.ca_file.empty() ? false : true);
    if (!reply) co_return make_error(reply.error().message);
    auto j = nlohmann::json::parse(reply->body, nullptr, false);
    if (reply->status != 200) {
        std::string why = j.is_object() && j.contains("error") && j["error"].is_string()
                              ? j["error"].get<std::string>()
                              : "HTTP " + std::to_string(reply->status);
        Error e = make_error(why, static_cast<int>(reply->status));
        if (j.is_object())
            for (auto it = j.begin(); it != j.end(); ++it) e.fields[it.key()] = json_as_text(*it);
        if (reply->status == 409 && json_string(j, "reason") == "stale_term" && proposer_) {
            // A member accepted a newer term: another controller is in charge.
            uint64_t accepted = 0;
            try {
                accepted = std::stoull(json_string(j, "accepted_term"));
            } catch (...) {
            }
            proposer_->on_superseded(std::max(accepted, term_), quorum::own_now());
            if (!superseded_) {
                superseded_ = true;
                decide("stand-by", m.name, "a member refused our term: " + why);
            }
        }
        co_return e;
    }
    co_return j;
}

awaitable<bool> Controller::command_once(const MemberView& m, const std::string& name,
                                         const nlohmann::json& body, const std::string& reason) {
    std::string key = m.name + "/" + name;
    if (auto it = cooldown_.find(key); it != cooldown_.end() && Clock::now() < it->second)
        co_return false;
    decide(name, m.name, reason);
    auto r = co_await command(m, name, body, kCommandTimeout);
    if (!r) {
        log::warn("controller", "command failed",
                  {{"member", m.name}, {"command", name}, {"error", r.error().message}});
        cooldown_[key] = Clock::now() + kCooldown;
        co_return false;
    }
    cooldown_.erase(key);
    co_return true;
}

awaitable<void> Controller::poll() {
    // A copy: in Kubernetes mode pods come and go while the polls run.
    const auto members = cfg_.members;
    std::vector<http_client::HttpCall> calls;
    std::vector<size_t> asked;  // calls[k] asks members[asked[k]]
    for (size_t i = 0; i < members.size(); ++i) {
        auto url = http_client::parse_url(members[i].second);
        if (!url) continue;  // a pod without an address yet
        http_client::HttpCall c;
        c.url = *url;
        c.url.path = "/v1/status";
        calls.push_back(c);
        asked.push_back(i);
    }
    const auto sent = Clock::now();
    auto answers = co_await http_client::async_http_all(calls, "", cfg_.request_timeout, tls_,
                                                        !cfg_.tls.ca_file.empty());
    // Polls can overlap (the control loop's, an API request's): answers
    // asked for before the views in place are older than them, and dropped.
    if (sent < poll_sent_) co_return;
    poll_sent_ = sent;
    std::vector<nlohmann::json> statuses(members.size());
    for (size_t k = 0; k < answers.size(); ++k) {
        if (!answers[k] || answers[k]->status != 200) continue;
        auto status = nlohmann::json::parse(answers[k]->body, nullptr, false);
        if (!status.is_discarded()) statuses[asked[k]] = std::move(status);
    }
    uint64_t highest = 0;
    bool any = false, writable = false;
    views_.clear();
    for (size_t i = 0; i < members.size(); ++i) {
        views_.push_back(member_view(members[i].first, members[i].second, statuses[i]));
        const auto& v = views_.back();
        if (v.reachable) {
            any = true;
            highest = std::max({highest, v.term, v.promised_term});
        }
    }
    writable = find_primary(views_).has_value();
    backups_running_.observe(views_, sent);
    if (!any) co_return;
    const auto now = quorum::own_now();
    if (!term_learned_) {
        // Take over with a term above everything the members accepted or
        // promised: a controller still running with an older term gets 409s
        // (or sees ours in the polls) and stands by.
        term_ = highest + 1;
        term_learned_ = true;
        authority::ProposerParams pp;
        pp.failover_delay = std::chrono::duration_cast<authority::Duration>(cfg_.failover_delay);
        pp.takeover_delay = std::chrono::duration_cast<authority::Duration>(cfg_.takeover_delay);
        proposer_.emplace(id_, pp, term_);
        decide("take-over", "", "learned the term back from the members");
    }
    for (const auto& v : views_) {
        if (!v.reachable) continue;
        proposer_->observe_term(v.term, now);
        proposer_->observe_term(v.promised_term, now);
    }
    proposer_->observe_poll(writable, now);
    if (proposer_->stood_by() && !superseded_) {
        superseded_ = true;
        decide("stand-by", "",
               "a member accepted or promised term " + std::to_string(highest) +
                   ": a newer controller is in charge");
    }
}

awaitable<void> Controller::control_loop() {
    asio::steady_timer timer(io_);
    while (!stopping_) {
        auto start = Clock::now();
        co_await poll();
        if (term_learned_ && !busy_ && !superseded_) co_await converge();
        if (term_learned_ && !busy_ && !superseded_) rollout_step();
        // Standing by, but no writable primary for the takeover delay: the
        // controller in charge is gone (or cut off); take over, higher term.
        // The same waits as the controller in charge (a primary restarting
        // on request, one on its way up, a restore), timed from when this
        // one stopped seeing a writable primary.
        if (term_learned_ && superseded_) {
            if (find_primary(views_))
                primary_lost_since_.reset();
            else if (!primary_lost_since_)
                primary_lost_since_ = Clock::now();
        }
        auto holdoff = term_learned_ && !busy_ && superseded_ ? failover_holdoff() : std::nullopt;
        if (holdoff && proposer_->should_propose(quorum::own_now()))
            decide_now_and_then("no-failover", holdoff->first, holdoff->second);
        if (term_learned_ && !busy_ && superseded_ && !holdoff &&
            proposer_->should_propose(quorum::own_now())) {
            decide("take-over", "", "no writable primary while standing by");
            superseded_ = false;
            co_await failover(std::nullopt);
        }
        timer.expires_at(start + cfg_.interval);
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
}

awaitable<void> Controller::converge() {
    auto p = find_primary(views_);
    if (!p) {
        if (!primary_lost_since_) {
            primary_lost_since_ = Clock::now();
            decide("primary-lost", primary_,
                   primary_.empty() ? "no member is a writable primary"
                                    : "the primary is unreachable, not ready, or without grants");
        }
        if (proposer_->should_propose(quorum::own_now())) {
            if (auto why = failover_holdoff()) {
                decide_now_and_then("no-failover", why->first, why->second);
                co_return;
            }
            std::optional<size_t> old;
            for (size_t i = 0; i < views_.size(); ++i)
                if (views_[i].name == primary_) old = i;
            co_await failover(old);
        }
        co_return;
    }
    const MemberView primary = views_[*p];
    if (primary.write_term != 0) authorized_.insert(primary.name);
    last_primary_lsn_ = std::max(last_primary_lsn_, primary.current_lsn);
    if (primary_ != primary.name) {
        decide("adopt-primary", primary.name, "the member reports itself a writable primary");
        primary_ = primary.name;
        adopted_once_ = true;
        // Where its members are, with our term: an older controller sees the
        // term in the polls and stands by.
        nlohmann::json body = {{"term", term_}, {"member_urls", member_urls()}};
        (void)co_await command(primary, "members", body, cfg_.request_timeout);
    }
    if (primary_lost_since_) {
        decide("primary-back", primary.name,
               "writable again after " + std::to_string(ms_since(*primary_lost_since_)) + " ms");
        primary_lost_since_.reset();
    }
    if (primary.write_term == 0) {
        // A primary from before the write authority (it bootstrapped the
        // cluster): it takes the write right, and from then on writes only
        // while a majority grants it.
        co_await adopt(primary);
        co_return;
    }

    const std::string conninfo = conninfo_of(primary);
    const auto members = views_;  // a stable copy while commands are awaited
    for (const auto& m : members) {
        if (m.name == primary.name || !m.reachable) continue;
        nlohmann::json rejoin = {{"term", term_}, {"primary_conninfo", conninfo}};
        if (m.role == "primary")
            co_await command_once(m, "demote", rejoin,
                                  "a second primary (term " + std::to_string(m.term) + ", " +
                                      primary.name + " has " + std::to_string(primary.term) + ")");
        else if (m.role == "replica" && m.running && !follows(m, primary))
            co_await command_once(m, "follow", rejoin,
                                  "the replica does not stream from " + primary.name);
        else if (m.role == "fenced" && m.standby)
            co_await command_once(m, "follow", rejoin, "a fenced replica rejoins " + primary.name);
        else if ((m.role == "fenced" || m.role == "stopped") && !m.standby && m.write_term != 0 &&
                 m.write_term < primary.write_term)
            // Stopped by the write authority (its grants ran out, or a newer
            // term was promised) and a newer primary exists: it rejoins.
            co_await command_once(m, "demote", rejoin,
                                  "a former primary (term " + std::to_string(m.write_term) +
                                      ") rejoins as a replica of " + primary.name);
        else if (m.role == "fenced" && !m.standby)
            co_await command_once(
                m, "demote", rejoin,
                "a fenced former primary rejoins as a replica of " + primary.name);
    }
    // The durability setting (also back to asynchronous when it says so).
    nlohmann::json spec = wanted_sync(primary.name, false);
    auto parsed = parse_sync_spec(spec);
    std::string wanted = parsed && *parsed ? synchronous_standby_names(**parsed) : "";
    if (primary.synchronous_standby_names != wanted) {
        nlohmann::json body = {{"term", term_}, {"synchronous", spec}};
        std::string why = "synchronous standbys: " + (wanted.empty() ? "none" : wanted);
        if (cfg_.preferred && cfg_.synchronous > 0) {
            const unsigned n = spec.is_null() ? 0 : spec["number"].get<unsigned>();
            why += n < cfg_.synchronous
                       ? " (preferred durability: only " + std::to_string(n) + " of " +
                             std::to_string(cfg_.synchronous) +
                             " wanted standbys stream; commits do not wait for the others)"
                       : " (preferred durability: every wanted standby streams again)";
        }
        co_await command_once(primary, "replication", body, why);
    }
}

nlohmann::json Controller::wanted_sync(const std::string& primary, bool promoting) const {
    std::optional<std::set<std::string>> streaming;
    if (cfg_.preferred) {
        streaming.emplace();
        const MemberView* p = nullptr;
        for (const auto& m : views_)
            if (m.name == primary) p = &m;
        for (const auto& m : views_) {
            if (m.name == primary || !m.reachable || m.role != "replica" || !m.running) continue;
            if (promoting || (p && m.streaming && follows(m, *p))) streaming->insert(m.name);
        }
    }
    return synchronous_spec(membership_.names, primary, cfg_.sync_method, cfg_.synchronous,
                            cfg_.priority, streaming);
}

uint64_t Controller::next_term() {
    term_ = proposer_->begin_round(quorum::own_now());
    superseded_ = false;
    return term_;
}

std::map<std::string, int> Controller::only_candidate(const std::string& only) const {
    std::map<std::string, int> out;
    for (const auto& name : membership_.names) {
        auto it = cfg_.priority.find(name);
        out[name] = name == only ? (it == cfg_.priority.end() ? 0 : std::max(it->second, 0)) : -1;
    }
    return out;
}

nlohmann::json Controller::promote_body(uint64_t term, const std::string& candidate,
                                        const authority::DurabilityRecord& record) const {
    nlohmann::json body = {{"term", term},
                           {"members", member_names()},
                           {"member_urls", member_urls()},
                           {"synchronous", wanted_sync(candidate, true)}};
    if (record.term > 0) body["durability"] = authority::to_json(record);
    return body;
}

awaitable<authority::SyncChoice> Controller::synchronous_choice(
    const authority::DurabilityRecord& record, std::chrono::steady_clock::time_point waited,
    uint64_t term) {
    // Readings taken after `waited` (the old primary could no longer commit):
    // a member's status is its last check of postgres, check_age_ms old, so
    // a reading counts once the poll left at least that long after `waited`.
    // The round's own answers may predate commits the old primary made
    // while its grants still ran.
    std::set<std::string> in_sets;
    for (const auto& s : record.sets) in_sets.insert(s.standbys.begin(), s.standbys.end());
    // The same promise again (idempotent for this proposer and term): a
    // member checks postgres when it answers one, so fresh positions come
    // within milliseconds instead of at its next regular check.
    std::vector<http_client::HttpCall> again;
    for (const auto& [name, url_text] : cfg_.members) {
        auto url = http_client::parse_url(url_text);
        if (!url || !in_sets.count(name)) continue;
        url->path = "/v1/authority/promise";
        nlohmann::json body = {{"term", term},
                               {"proposer", id_},
                               {"membership_version", membership_.version},
                               {"members", membership_.names},
                               {"to", name}};
        again.push_back({"POST", *url, json_text(body)});
    }
    (void)co_await http_client::async_http_all(again, token_, cfg_.request_timeout, tls_,
                                               !cfg_.tls.ca_file.empty());
    std::vector<authority::Reading> readings;
    for (auto until = Clock::now() + std::chrono::seconds(3);;) {
        co_await poll();
        const std::string system_id = cluster_system_identifier(views_);
        readings.clear();
        bool stale = false;
        for (const auto& m : views_) {
            if (m.reachable && !m.running && m.former_fork && membership_.contains(m.name) &&
                (m.system_identifier.empty() || m.system_identifier == system_id)) {
                // A stopped former primary: it holds the history it branched
                // from up to its fork (its own branch was no standby's). Its
                // postgres is down: the position cannot change. Never a
                // candidate (fenced; demoted once a primary exists).
                readings.push_back({m.name, m.former_fork->first, m.former_fork->second, false, 0});
                continue;
            }
            if (!m.reachable || !m.running || m.system_identifier != system_id) continue;
            if (m.role != "replica") continue;  // only a standby's position says what it holds
            // What it flushed: none received since a restart, while its own
            // pg_wal may hold more than it replayed: no reading. Once its WAL
            // receiver ran, the startup process had replayed all local WAL
            // (the receiver starts where that ends, at the segment's start):
            // the larger of the two is on disk.
            if (m.received_lsn == 0) continue;
            if (m.check_age_ms < 0 ||
                poll_sent_ - std::chrono::milliseconds(m.check_age_ms) < waited) {
                if (in_sets.count(m.name)) stale = true;
                continue;
            }
            auto it = cfg_.priority.find(m.name);
            const int prio = it == cfg_.priority.end() ? 0 : it->second;
            readings.push_back({m.name, m.timeline, std::max(m.received_lsn, m.replayed_lsn),
                                prio >= 0 && membership_.contains(m.name), prio});
        }
        if (!stale || Clock::now() >= until) break;
        co_await pause(std::chrono::milliseconds(30));
    }
    co_return authority::choose_candidate(record, readings);
}

awaitable<Controller::RoundEnd> Controller::promotion_round(uint64_t term,
                                                            std::map<std::string, int> priority) {
    authority::PromotionParams params;
    auto round = std::make_shared<authority::Promotion>(id_, term, membership_, std::move(priority),
                                                        params, quorum::own_now());
    const auto& req = round->request();
    const nlohmann::json body = {{"term", req.term},
                                 {"proposer", req.proposer},
                                 {"membership_version", req.membership_version},
                                 {"members", membership_.names}};
    std::map<std::string, std::string> urls(cfg_.members.begin(), cfg_.members.end());
    auto ask = [this, round, body](std::string name, http_client::Url url) -> awaitable<void> {
        nlohmann::json mine = body;
        mine["to"] = name;  // a member answers only for itself (an address may be reused)
        std::string text = json_text(mine);
        auto reply = co_await http_client::async_http_request(
            "POST", url, text, token_, cfg_.request_timeout, tls_, !cfg_.tls.ca_file.empty());
        if (!reply || reply->status != 200) co_return;
        auto j = parse_json_object(reply->body);
        if (!j) co_return;
        // A refusal counts too (it may name a newer term); an answer from
        // another member than the one asked counts for nothing.
        auto ok = j->find("ok");
        const bool promised = ok != j->end() && ok->is_boolean() && ok->get<bool>();
        if (promised && json_string(*j, "member") != name) co_return;
        round->on_answer(name, quorum::promise_answer_from(*j), quorum::own_now());
    };
    asio::steady_timer timer(io_);
    for (;;) {
        const auto now = quorum::own_now();
        for (const auto& name : round->due_sends(now)) {
            auto it = urls.find(name);
            if (it == urls.end()) continue;  // a declared member without a pod yet
            auto url = http_client::parse_url(it->second);
            if (!url) continue;
            url->path = "/v1/authority/promise";
            asio::co_spawn(io_, ask(name, *url), asio::detached);
        }
        auto step = round->step(now);
        if (round->done()) co_return RoundEnd{step, round->promisers(), round->newest_record()};
        // Answers arrive between wake-ups: look again soon.
        auto wake = std::min(round->next_wakeup(), now + std::chrono::milliseconds(10));
        timer.expires_after(std::max(wake - now, authority::Duration{0}));
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
}

awaitable<void> Controller::adopt(const MemberView& primary) {
    std::string key = primary.name + "/adopt";
    if (auto it = cooldown_.find(key); it != cooldown_.end() && Clock::now() < it->second)
        co_return;
    ScopedFlag running{busy_};
    uint64_t term = next_term();
    auto end = co_await promotion_round(term, only_candidate(primary.name));
    if (end.step.kind != authority::PromotionStep::Kind::promote) {
        if (end.step.kind == authority::PromotionStep::Kind::superseded)
            proposer_->on_superseded(end.step.newer_term, quorum::own_now());
        decide_now_and_then(
            "no-write-right", primary.name,
            "the promise round for term " + std::to_string(term) + " did not " +
                "succeed: " + (end.step.reason.empty() ? "superseded" : end.step.reason));
        cooldown_[key] = Clock::now() + kCooldown;
        co_return;
    }
    decide("write-right", primary.name,
           "the primary takes the write right: a majority promised term " + std::to_string(term),
           {{"majority", end.promisers}});
    nlohmann::json body = {
        {"term", term}, {"members", member_names()}, {"member_urls", member_urls()}};
    auto r = co_await command(primary, "promote", body, kCommandTimeout);
    if (!r) {
        decide("write-right-failed", primary.name, r.error().message);
        cooldown_[key] = Clock::now() + kCooldown;
        co_return;
    }
    authorized_.insert(primary.name);
    proposer_->on_promoted(quorum::own_now());
}

awaitable<void> Controller::failover(std::optional<size_t> old_index) {
    ScopedFlag running{busy_};
    const std::string system_id = cluster_system_identifier(views_);
    auto idx = pick_candidate(views_, system_id, cfg_.priority, std::nullopt);
    if (!idx) {
        decide_now_and_then("no-failover", "", "no reachable, running replica of this cluster");
        co_return;
    }
    // A primary from before the write authority does not stop by itself: it
    // may be alive behind a partition. Evidence that the cluster runs under
    // the authority is durable, on the members (one of them granted), not
    // only in this controller's memory (a new controller knows nothing).
    const bool granted_before = std::any_of(views_.begin(), views_.end(), [](const MemberView& m) {
        return m.reachable && m.granted_term > 0;
    });
    if (!granted_before || (!primary_.empty() && !authorized_.count(primary_) &&
                            !std::any_of(views_.begin(), views_.end(), [&](const MemberView& m) {
                                return m.reachable && m.granted_term > 0 &&
                                       m.granted_to == primary_;
                            }))) {
        decide_now_and_then("no-failover", primary_,
                            "the lost primary was never seen under the write authority: it could "
                            "still be serving writes behind a partition");
        co_return;
    }
    // Who may be promoted: reachable, running replicas of the cluster; the
    // round picks the most advanced of them among the members that promised
    // (synchronous durability then reads them again: below).
    std::map<std::string, int> priority;
    for (const auto& name : membership_.names) priority[name] = -1;
    for (const auto& m : views_) {
        if (!priority.count(m.name) || !m.reachable || m.role != "replica" || !m.running ||
            m.system_identifier != system_id)
            continue;
        auto it = cfg_.priority.find(m.name);
        priority[m.name] = it == cfg_.priority.end() ? 0 : it->second;
    }
    std::string old_name = old_index ? views_[*old_index].name : "";
    uint64_t term = next_term();
    auto end = co_await promotion_round(term, priority);
    const auto waited = Clock::now();  // the round's wait is over: no older grant is in use
    using Kind = authority::PromotionStep::Kind;
    if (end.step.kind == Kind::superseded) {
        proposer_->on_superseded(end.step.newer_term, quorum::own_now());
        superseded_ = true;
        decide("stand-by", "",
               "term " + std::to_string(term) + " was refused: term " +
                   std::to_string(end.step.newer_term) + " exists");
        co_return;
    }
    if (end.step.kind != Kind::promote) {
        decide_now_and_then(
            "no-failover", "",
            "the promise round for term " + std::to_string(term) + " failed: " + end.step.reason);
        co_return;
    }
    std::string chosen = end.step.candidate;
    uint64_t must_hold = end.step.candidate_lsn;
    nlohmann::json durability = {{"sets", authority::describe(end.record.sets)}};
    if (!end.record.sets.empty()) {
        // Synchronous durability: the candidate must hold every commit the
        // old primary acknowledged (R + k > N, the most advanced reading).
        auto choice = co_await synchronous_choice(end.record, waited, term);
        if (!choice.ok) {
            failover_blocked_ = "synchronous durability (" + authority::describe(end.record.sets) +
                                "): " + choice.reason;
            decide_now_and_then("no-failover", "", failover_blocked_);
            co_return;
        }
        chosen = choice.candidate;
        must_hold = choice.min_lsn;
        durability["holds_every_acknowledged_commit"] = true;
        durability["min_lsn"] = lsn_text(choice.min_lsn);
    }
    failover_blocked_.clear();
    auto cand = std::find_if(views_.begin(), views_.end(),
                             [&](const MemberView& m) { return m.name == chosen; });
    if (cand == views_.end()) co_return;
    const MemberView candidate = *cand;
    decide("failover", candidate.name,
           "primary " + (old_name.empty() ? std::string("(none)") : old_name) + " lost for " +
               std::to_string(primary_lost_since_ ? ms_since(*primary_lost_since_) : 0) +
               " ms; a majority promised term " + std::to_string(term) +
               " and the candidate is its most advanced eligible member",
           {{"majority", end.promisers},
            {"candidate_lsn", lsn_text(end.step.candidate_lsn)},
            // Beyond the candidate's: what an asynchronous failover may lose.
            {"most_advanced_lsn", lsn_text(end.step.min_lsn)},
            {"received_lsn", candidate.received_lsn},
            {"replayed_lsn", candidate.replayed_lsn},
            {"durability", durability}});
    nlohmann::json body = promote_body(term, candidate.name, end.record);
    // At least what it reported when it promised (its WAL only grows), or in
    // synchronous mode the most advanced reading.
    if (must_hold > 0) body["min_lsn"] = lsn_text(must_hold);
    auto promoted = co_await command(candidate, "promote", body, kCommandTimeout);
    if (!promoted) {
        decide("promote-failed", candidate.name, promoted.error().message);
        co_return;
    }
    proposer_->on_promoted(quorum::own_now());
    primary_ = candidate.name;
    authorized_.insert(candidate.name);
    primary_lost_since_.reset();
}

awaitable<Result<nlohmann::json>> Controller::switchover(const std::string& to) {
    if (superseded_)
        co_return make_error("this controller stands by: a newer one is in charge", 409);
    if (busy_) co_return make_error("busy: a failover or switchover is under way", 409);
    auto p = find_primary(views_);
    if (!p) co_return make_error("there is no writable primary to switch over from", 409);
    auto t = std::find_if(views_.begin(), views_.end(),
                          [&](const MemberView& m) { return m.name == to; });
    if (t == views_.end()) co_return make_error("no member named " + to, 404);
    if (t->name == views_[*p].name) co_return make_error(to + " is already the primary", 409);
    if (t->role != "replica" || !t->ready || !t->streaming)
        co_return make_error(to + " is not a ready, streaming replica (role " + t->role + ")", 409);
    if (!membership_.contains(to)) co_return make_error(to + " is not in the membership", 409);
    ScopedFlag running{busy_};
    const MemberView primary = views_[*p];
    const MemberView target = *t;
    auto start = Clock::now();
    uint64_t term = next_term();
    decide("switchover", target.name, "requested: " + primary.name + " -> " + target.name);
    // Fast shutdown of the old primary sends all its WAL to the standbys;
    // then it gives its grants back, so the promise round need not wait them out.
    nlohmann::json demote = {{"term", term}};
    auto demoted = co_await command(primary, "demote", demote, kCommandTimeout);
    if (!demoted) {
        decide("switchover-failed", primary.name, "demote: " + demoted.error().message);
        co_return make_error("demote of " + primary.name + " failed: " + demoted.error().message,
                             502);
    }
    std::string checkpoint = demoted->value("shutdown_checkpoint_lsn", "");
    auto end = co_await promotion_round(term, only_candidate(target.name));
    if (end.step.kind != authority::PromotionStep::Kind::promote) {
        std::string why = end.step.kind == authority::PromotionStep::Kind::superseded
                              ? "term " + std::to_string(end.step.newer_term) + " exists"
                              : end.step.reason;
        decide("switchover-failed", target.name, "promise round: " + why);
        co_return make_error("the promise round for term " + std::to_string(term) + " failed: " +
                                 why + "; the old primary stays stopped, a failover follows",
                             502);
    }
    nlohmann::json promote = promote_body(term, target.name, end.record);
    if (!checkpoint.empty()) promote["min_lsn"] = checkpoint;
    Result<nlohmann::json> promoted = make_error("not tried");
    asio::steady_timer timer(io_);
    // The target may still be receiving the last WAL: 412 is retried briefly.
    for (auto deadline = Clock::now() + std::chrono::seconds(10);;) {
        promoted = co_await command(target, "promote", promote, kCommandTimeout);
        if (promoted || promoted.error().http_status != 412 || Clock::now() > deadline) break;
        timer.expires_after(std::chrono::milliseconds(50));
        co_await timer.async_wait(use_awaitable);
    }
    if (!promoted) {
        decide("switchover-failed", target.name, "promote: " + promoted.error().message);
        co_return make_error("promote of " + target.name + " failed: " + promoted.error().message +
                                 "; the old primary stays stopped, a failover follows",
                             502);
    }
    auto writable_ms = ms_since(start);
    proposer_->on_promoted(quorum::own_now());
    primary_ = target.name;
    authorized_.insert(target.name);
    primary_lost_since_.reset();
    nlohmann::json follow = {{"term", term}, {"primary_conninfo", conninfo_of(target)}};
    const auto members = views_;  // polls go on while we wait
    for (const auto& m : members)
        if (m.name != target.name && m.reachable)
            (void)co_await command(m, "follow", follow, kCommandTimeout);
    nlohmann::json out = {{"switched", true},
                          {"from", primary.name},
                          {"to", target.name},
                          {"term", term},
                          {"majority", end.promisers},
                          {"shutdown_checkpoint_lsn", checkpoint},
                          {"timeline", promoted->value("timeline", 0)},
                          {"primary_writable_after_ms", writable_ms},
                          {"total_ms", ms_since(start)}};
    decide("switchover-done", target.name, "the old primary follows", out);
    co_return out;
}

awaitable<Result<nlohmann::json>> Controller::forced_failover(const std::string& to, bool accept) {
    if (superseded_)
        co_return make_error("this controller stands by: a newer one is in charge", 409);
    if (busy_) co_return make_error("busy: a failover or switchover is under way", 409);
    co_await poll();
    if (auto p = find_primary(views_))
        co_return make_error(views_[*p].name + " is a writable primary: use switchover", 409);
    auto t = std::find_if(views_.begin(), views_.end(),
                          [&](const MemberView& m) { return m.name == to; });
    if (t == views_.end()) co_return make_error("no member named " + to, 404);
    if (!membership_.contains(to)) co_return make_error(to + " is not in the membership", 409);
    if (!t->reachable || t->role != "replica" || !t->running)
        co_return make_error(to + " is not a reachable, running replica (role " + t->role + ")",
                             409);
    const uint64_t target_lsn = std::max(t->received_lsn, t->replayed_lsn);
    uint64_t newest = last_primary_lsn_;
    std::string newest_at = newest ? "the lost primary " + primary_ + " (last seen)" : "";
    for (const auto& m : views_) {
        if (!m.reachable) continue;
        const uint64_t lsn = std::max({m.received_lsn, m.replayed_lsn, m.current_lsn});
        if (lsn > newest) {
            newest = lsn;
            newest_at = m.name;
        }
    }
    nlohmann::json loss = {
        {"to", to},
        {"target_lsn", lsn_text(target_lsn)},
        {"newest_known_lsn", lsn_text(newest)},
        {"newest_known_at", newest_at},
        {"may_lose_bytes", newest > target_lsn ? newest - target_lsn : 0},
        {"failover_blocked",
         failover_blocked_.empty() ? nlohmann::json() : nlohmann::json(failover_blocked_)}};
    if (newest > target_lsn)
        loss["may_lose"] = "WAL from " + lsn_text(target_lsn) + " to " + lsn_text(newest) +
                           " (commits acknowledged there may be lost)";
    if (!accept) {
        loss["promoted"] = false;
        co_return loss;
    }
    ScopedFlag running{busy_};
    uint64_t term = next_term();
    decide("forced-failover", to, "requested by an operator, accepting data loss", loss);
    auto end = co_await promotion_round(term, only_candidate(to));
    if (end.step.kind != authority::PromotionStep::Kind::promote) {
        std::string why = end.step.kind == authority::PromotionStep::Kind::superseded
                              ? "term " + std::to_string(end.step.newer_term) + " exists"
                              : end.step.reason;
        co_return make_error(
            "the promise round for term " + std::to_string(term) + " failed: " + why, 502);
    }
    auto promoted =
        co_await command(*t, "promote", promote_body(term, to, end.record), kCommandTimeout);
    if (!promoted)
        co_return make_error("promote of " + to + " failed: " + promoted.error().message, 502);
    proposer_->on_promoted(quorum::own_now());
    primary_ = to;
    authorized_.insert(to);
    primary_lost_since_.reset();
    failover_blocked_.clear();
    loss["promoted"] = true;
    loss["term"] = term;
    co_return loss;
}

void Controller::pods_changed() {
    std::vector<std::pair<std::string, std::string>> members;
    for (const auto& [name, pod] : pods_) members.emplace_back(name, member_url(pod, cfg_.kube));
    if (members == cfg_.members) return;
    nlohmann::json urls = nlohmann::json::object();
    for (const auto& [name, url] : members) urls[name] = url;
    decide("members", "", "the selected pods changed", {{"members", urls}});
    cfg_.members = std::move(members);  // the next poll asks these
}

awaitable<void> Controller::pause(std::chrono::milliseconds d) {
    asio::steady_timer timer(io_, d);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(use_awaitable, ec));
}

const MemberView* Controller::backup_member() const {
    for (const auto& v : views_)
        if (v.name == primary_ && v.reachable && v.ready && v.role == "primary") return &v;
    return nullptr;
}

awaitable<Result<std::string>> Controller::start_backup(const std::string& type,
                                                        const std::string& why) {
    const MemberView* p = backup_member();
    if (!p) co_return make_error("no ready primary to take a backup", 503);
    // A standing-by controller (another one holds a newer term) leaves
    // backups to the one in charge, which also keeps them one at a time.
    if (superseded_)
        co_return make_error("this controller is standing by: ask the one in charge", 409);
    if (auto other = backups_running_.any())
        co_return make_error("a backup runs on " + *other +
                                 " (one at a time; a member that stops answering keeps its mark "
                                 "until it is seen idle)",
                             409);
    size_t primary = static_cast<size_t>(p - views_.data());
    // A replica that failed within the hour gives way (to another, or the primary).
    auto src = backup_source(views_, primary, type,
                             iso8601(std::chrono::system_clock::now() - std::chrono::hours(1)));
    if (!src) co_return make_error("no ready primary to take a backup", 503);
    const MemberView& m = views_[src->member];
    if (m.status.value("backup", nlohmann::json()).is_null())
        co_return make_error(m.name +
                                 " has no backup repository (--backup-repo or "
                                 "--backup-config)",
                             409);
    std::string name = m.name, primary_name = p->name;
    auto r = co_await command(m, "backup", src->body, std::chrono::seconds(10));
    if (!r) {
        int code = http_status_or(r.error(), 502);
        co_return make_error(name + ": " + r.error().message, code);
    }
    backups_running_.started(name, Clock::now());
    decide("backup", name,
           why + ": " + type +
               (src->standby ? ", a standby backup (" + primary_name + " starts and stops it)"
                             : ", on the primary (no replica can take it)"));
    co_return name;
}

awaitable<HttpResponse> Controller::backup_request(const HttpRequest& req) {
    if (!bearer_matches(req, token_))
        co_return error_response(http::status::unauthorized, "missing or wrong bearer token",
                                 req.version());
    if (req.method() == http::verb::post) {
        auto parsed = parse_command_body(req.body(), {{"type", {FieldType::backup_type}}});
        if (!parsed)
            co_return error_response(http::status::bad_request, parsed.error().message,
                                     req.version());
        std::string type = parsed->value("type", "full");
        auto started = co_await start_backup(type, "asked over the API");
        if (!started)
            co_return error_response(
                static_cast<http::status>(http_status_or(started.error(), 500)),
                started.error().message, req.version());
        co_return json_response(http::status::ok,
                                {{"started", true}, {"type", type}, {"member", *started}},
                                req.version());
    }
    // The list is the same from any member: the primary's.
    const MemberView* m = backup_member();
    if (!m)
        co_return error_response(http::status::service_unavailable,
                                 "no ready primary to list backups", req.version());
    if (m->status.value("backup", nlohmann::json()).is_null())
        co_return error_response(http::status::conflict,
                                 m->name +
                                     " has no backup repository (--backup-repo or "
                                     "--backup-config)",
                                 req.version());
    auto url = http_client::parse_url(m->url);
    if (!url)
        co_return error_response(http::status::bad_gateway, url.error().message, req.version());
    url->path = "/v1/backups";
    auto reply = co_await http_client::async_http_request(
        "GET", *url, "", token_, std::chrono::minutes(2), tls_, !cfg_.tls.ca_file.empty());
    if (!reply || reply->status != 200)
        co_return error_response(
            http::status::bad_gateway,
            m->name + ": " +
                (reply ? "HTTP " + std::to_string(reply->status) + " " + reply->body
                       : reply.error().message),
            req.version());
    nlohmann::json answer = nlohmann::json::parse(reply->body, nullptr, false);
    if (!answer.is_object())
        co_return error_response(http::status::bad_gateway, m->name + ": not JSON", req.version());
    answer["member"] = m->name;
    co_return json_response(http::status::ok, answer, req.version());
}

awaitable<void> Controller::backup_loop() {
    // A failed or refused attempt is not repeated at once: the schedule's
    // shortest interval, at most ten minutes, goes by first.
    const auto& s = cfg_.backup_schedule;
    auto retry = std::chrono::seconds(600);
    for (auto every : {s.full, s.diff, s.incr})
        if (every.count() > 0) retry = std::min(retry, every);
    while (!stopping_) {
        co_await pause(std::chrono::seconds(5));
        if (stopping_ || busy_ || superseded_) continue;
        const MemberView* p = backup_member();
        if (!p) continue;
        const auto pv = p->status.value("backup", nlohmann::json());
        if (!pv.is_object() || !pv.value("stanza_ready", false) || backups_running_.any()) continue;
        // A backup that ended after its member's newest read of the
        // repository is in no view yet: wait for a read rather than take another.
        RepositoryView repo = newest_repository_view(views_);
        if (!repo.view.is_object() || repo.unread_backup) continue;
        std::string due = backup_due(s, newest_backups(repo.view), std::time(nullptr));
        auto now = std::chrono::steady_clock::now();
        if (due.empty() || now - backup_tried_ < retry) continue;
        backup_tried_ = now;
        std::string primary = p->name;
        auto r = co_await start_backup(due, "scheduled");
        if (!r) decide("backup-refused", primary, "scheduled " + due + ": " + r.error().message);
    }
}

awaitable<void> Controller::pod_watch_loop() {
    while (!stopping_) {
        auto list = co_await kube_->list_pods();
        if (!list) {
            log::warn("controller", "cannot list the pods", {{"error", list.error().message}});
            co_await pause(std::chrono::seconds(1));
            continue;
        }
        pods_.clear();
        for (auto& pod : list->pods) pods_[pod.name] = pod;
        pods_changed();
        std::string version = list->resource_version;
        while (!stopping_) {
            auto on_event = [&](const std::string& type, const Pod& pod) {
                if (!pod.resource_version.empty()) version = pod.resource_version;
                if (type == "BOOKMARK" || pod.name.empty()) return;
                if (type == "DELETED")
                    pods_.erase(pod.name);
                else
                    pods_[pod.name] = pod;
                pods_changed();
            };
            auto began = Clock::now();
            auto st = co_await kube_->watch_pods(version, on_event);
            // A watch the server (or a proxy) ends at once is not asked again at once.
            if (st && Clock::now() - began < std::chrono::seconds(1))
                co_await pause(std::chrono::seconds(1));
            if (!st && st.error().http_status == 410) {
                log::info("controller", "the watch is too old: listing the pods again");
                break;
            }
            if (!st) {
                log::warn("controller", "pod watch failed", {{"error", st.error().message}});
                co_await pause(std::chrono::seconds(1));
            }
        }
    }
}

awaitable<void> Controller::label_loop() {
    while (!stopping_) {
        co_await pause(cfg_.interval);
        // A standing-by controller leaves the labels to the one in charge.
        if (!term_learned_ || superseded_ || Clock::now() < labels_paused_until_) continue;
        std::map<std::string, std::string> current;
        for (const auto& [name, pod] : pods_) current[name] = pod.role;
        for (const auto& change : plan_role_labels(views_, primary_, current)) {
            if (change.role == "primary") {
                // -rw must never select two pods: only once no other has it.
                bool taken = std::any_of(pods_.begin(), pods_.end(), [&](const auto& p) {
                    return p.first != change.pod && p.second.role == "primary";
                });
                if (taken) break;
            }
            if (!co_await set_role_label(change)) {
                // Removals must land first; and an API server in trouble is
                // not asked four times a second.
                labels_paused_until_ = Clock::now() + std::chrono::seconds(2);
                break;
            }
        }
    }
}

awaitable<bool> Controller::set_role_label(const LabelChange& change) {
    for (int attempt = 0; attempt < 3; ++attempt) {
        auto it = pods_.find(change.pod);
        if (it == pods_.end()) co_return true;  // deleted: no label left to change
        Pod pod = it->second;
        auto r = co_await kube_->patch_role(pod, change.role);
        if (r) {
            // The answer is the pod as stored; a watch event may already be newer.
            if (auto now = pods_.find(change.pod); now != pods_.end()) now->second.role = r->role;
            decide("label", change.pod, change.reason,
                   {{"role", change.role ? nlohmann::json(*change.role) : nlohmann::json()}});
            co_return true;
        }
        if (r.error().http_status == 404) {
            pods_.erase(change.pod);
            co_return true;
        }
        if (r.error().http_status != 409) {
            log::warn("controller", "cannot change a role label",
                      {{"pod", change.pod}, {"error", r.error().message}});
            co_return false;
        }
        // The pod changed since we read it: read it again and patch with its
        // new resourceVersion, unless it carries the wanted label by now.
        auto fresh = co_await kube_->get_pod(change.pod);
        if (!fresh) co_return false;
        if (auto now = pods_.find(change.pod); now != pods_.end()) now->second = *fresh;
        if (fresh->role == change.role.value_or("")) co_return true;
    }
    co_return false;
}

nlohmann::json Controller::cluster() const {
    nlohmann::json members = nlohmann::json::array();
    for (const auto& m : views_) members.push_back(member_summary(m, views_));
    nlohmann::json decisions = nlohmann::json::array();
    for (const auto& d : decisions_) decisions.push_back(d);
    nlohmann::json out = {
        {"term", term_},
        {"primary", primary_.empty() ? nlohmann::json() : nlohmann::json(primary_)},
        {"busy", busy_},
        {"standing_by", superseded_},
        {"primary_lost_ms",
         primary_lost_since_ ? nlohmann::json(ms_since(*primary_lost_since_)) : nlohmann::json()},
        {"proposer", id_},
        {"membership", membership_.names},
        {"settings",
         {{"interval_ms", cfg_.interval.count()},
          {"failover_delay_ms", cfg_.failover_delay.count()},
          {"takeover_delay_ms", cfg_.takeover_delay.count()},
          {"durability", durability_mode()},
          {"data_durability", cfg_.preferred ? "preferred" : "required"}}},
        {"failover_blocked",
         failover_blocked_.empty() ? nlohmann::json() : nlohmann::json(failover_blocked_)},
        {"members", members},
        {"rollout", rollout_view()},
        {"decisions", decisions}};
    if (const MemberView* p = backup_member()) {
        // Archiving as the primary says; the repository as last read by any
        // member; a backup running on any member (a standby backup runs on
        // a replica).
        auto summary = backup_summary(p->status.value("backup", nlohmann::json()));
        if (summary.is_object()) {
            auto newest = backup_summary(newest_repository_view(views_).view);
            if (newest.is_object())
                for (const char* k :
                     {"backups", "last_backup", "last_backup_type", "last_backup_stop"})
                    summary[k] = newest[k];
            if (auto on = backups_running_.any()) {
                // Last seen running; a member that does not answer now says nothing more.
                summary["running"] = {{"member", *on}, {"answering", false}};
                for (const auto& m : views_)
                    if (m.name == *on && m.reachable) {
                        const auto& b = m.status.value("backup", nlohmann::json());
                        if (b.is_object() && b.value("running", nlohmann::json()).is_object())
                            summary["running"] = b["running"];
                        summary["running"]["member"] = *on;
                        summary["running"]["answering"] = true;
                    }
            }
        }
        out["backup"] = summary;
    }
    if (cfg_.backup_schedule.enabled())
        out["settings"]["backup_schedule"] = cfg_.backup_schedule.text;
    if (kube_) {
        nlohmann::json pods = nlohmann::json::object();
        for (const auto& [name, pod] : pods_)
            pods[name] = {
                {"ip", pod.ip},
                {"role_label", pod.role.empty() ? nlohmann::json() : nlohmann::json(pod.role)}};
        out["kubernetes"] = {
            {"selector", cfg_.kube.selector}, {"namespace", cfg_.kube.ns}, {"pods", pods}};
    }
    return out;
}

awaitable<HttpResponse> Controller::handle(HttpRequest req, PeerInfo) {
    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    bool get = req.method() == http::verb::get || req.method() == http::verb::head;
    if (path == "/healthz" && get)
        co_return json_response(http::status::ok, {{"status", "ok"}}, req.version());
    if (path == "/v1/cluster" && get)
        co_return json_response(http::status::ok, cluster(), req.version());
    if (path == "/metrics" && get) {
        ControllerSnapshot snap;
        snap.term = term_;
        snap.primary = primary_;
        snap.standing_by = superseded_;
        snap.failover_blocked = !failover_blocked_.empty();
        snap.rollout_active = !rollout_.started_at.empty();
        snap.primary_lost_seconds =
            primary_lost_since_
                ? std::chrono::duration<double>(Clock::now() - *primary_lost_since_).count()
                : 0.0;
        HttpResponse res{http::status::ok, req.version()};
        res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        res.body() = metrics_.render(views_, snap);
        res.prepare_payload();
        co_return res;
    }
    if (path == "/v1/switchover" && req.method() == http::verb::post) {
        if (!bearer_matches(req, token_))
            co_return error_response(http::status::unauthorized, "missing or wrong bearer token",
                                     req.version());
        auto body = parse_command_body(req.body(), {{"to", {FieldType::name, true}}});
        if (!body)
            co_return error_response(http::status::bad_request, body.error().message,
                                     req.version());
        auto r = co_await switchover((*body)["to"].get<std::string>());
        if (!r) {
            nlohmann::json err = {{"error", r.error().message}};
            co_return json_response(static_cast<http::status>(http_status_or(r.error(), 500)), err,
                                    req.version());
        }
        co_return json_response(http::status::ok, *r, req.version());
    }
    if (path == "/v1/failover" && req.method() == http::verb::post) {
        if (!bearer_matches(req, token_))
            co_return error_response(http::status::unauthorized, "missing or wrong bearer token",
                                     req.version());
        auto body = parse_command_body(
            req.body(), {{"to", {FieldType::name, true}}, {"accept_data_loss", {FieldType::flag}}});
        if (!body)
            co_return error_response(http::status::bad_request, body.error().message,
                                     req.version());
        const bool accept = body->value("accept_data_loss", false);
        auto r = co_await forced_failover((*body)["to"].get<std::string>(), accept);
        if (!r) {
            nlohmann::json err = {{"error", r.error().message}};
            co_return json_response(static_cast<http::status>(http_status_or(r.error(), 500)), err,
                                    req.version());
        }
        co_return json_response(http::status::ok, *r, req.version());
    }
    if (path == "/v1/restart" && req.method() == http::verb::post)
        co_return co_await restart_request(req);
    if ((path == "/v1/backup" && req.method() == http::verb::post) ||
        (path == "/v1/backups" && get))
        co_return co_await backup_request(req);
    if (path == "/healthz" || path == "/v1/cluster" || path == "/metrics" ||
        path == "/v1/switchover" || path == "/v1/failover" || path == "/v1/backup" ||
        path == "/v1/backups" || path == "/v1/restart")
        co_return error_response(http::status::method_not_allowed, "method not allowed",
                                 req.version());
    co_return error_response(http::status::not_found, "no such path: " + path, req.version());
}

int controller_main(const std::vector<std::string>& args) {
    ParseOutcome outcome;
    auto cfg = parse_controller_args(args, &outcome);
    if (!cfg) {
        if (outcome.exit_code != 0)
            std::fprintf(stderr, "instance-manager controller: %s\n", cfg.error().message.c_str());
        return outcome.exit_code;
    }
    log::Level level;
    log::parse_level(cfg->log_level, level);
    log::set_level(level);
    auto token = fs::read_secret(cfg->api_token_file);
    if (!token) {
        std::fprintf(stderr, "instance-manager controller: --api-token-file: %s\n",
                     token.error().message.c_str());
        return 2;
    }
    asio::io_context io(1);
    Controller controller(io, std::move(*cfg), *token);
    return controller.run();
}

}  // namespace im
