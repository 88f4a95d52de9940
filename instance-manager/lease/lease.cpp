// The primary lease (POST /v1/lease): the controller renews it every round.
// When it lapses, the primary asks the other members' managers whether they
// are there; without a majority it is the isolated side of a partition and
// fences itself before the controller's failover delay runs out. With a
// majority it serves on (a dead controller alone never stops writes), unless
// one of them is primary now: then the controller failed over without
// reaching us, and we fence.
#include "daemon/daemon.hpp"
#include "http_client.hpp"
#include "lease/lease_rules.hpp"
#include "log.hpp"

namespace im {

namespace {
constexpr auto kWatchPeriod = std::chrono::milliseconds(100);
constexpr auto kMajorityRecheck = std::chrono::milliseconds(250);

std::chrono::milliseconds probe_timeout(std::chrono::milliseconds ttl) {
    return std::clamp(ttl / 4, std::chrono::milliseconds(100), std::chrono::milliseconds(500));
}
}  // namespace

awaitable<CommandAnswer> Daemon::do_lease(const nlohmann::json& body) {
    if (state_.role.current() != Role::primary || !supervisor_.running())
        co_return make_error("only a running primary holds a lease (role " +
                                 std::string(to_string(state_.role.current())) + ")",
                             409);
    auto members = body["members"].get<std::map<std::string, std::string>>();
    auto ttl = static_cast<uint64_t>(body["ttl_ms"].get<int64_t>());
    auto& p = prepared_->persistent;
    if (members != p.lease_members || ttl != p.lease_ttl_ms) {
        // Persisted: a primary that restarts knows it runs under leases.
        p.lease_members = members;
        p.lease_ttl_ms = ttl;
        p.members.clear();
        for (const auto& [name, url] : members) p.members.push_back(name);
        if (auto st = save_persistent(); !st) co_return make_error(st.error().message, 500);
        log::info("lease", "members changed", {{"members", members}});
    }
    state_.lease_ttl = std::chrono::milliseconds(body["ttl_ms"].get<int64_t>());
    state_.lease_expires = std::chrono::steady_clock::now() + state_.lease_ttl;
    lease_lapse_logged_ = false;
    co_return nlohmann::json{{"changed", true},
                             {"role", to_string(state_.role.current())},
                             {"expires_in_ms", state_.lease_ttl.count()}};
}

awaitable<std::vector<PeerView>> Daemon::ask_peers(const std::string& path,
                                                   std::chrono::milliseconds timeout) {
    std::vector<std::string> names;
    std::vector<http_client::HttpCall> calls;
    for (const auto& [name, url] : prepared_->persistent.lease_members) {
        if (name == cfg_.name) continue;
        auto parsed = http_client::parse_url(url);
        if (!parsed) continue;
        parsed->path = path;
        if (parsed->tls && !peer_tls_) {
            // Made only when a peer speaks https: OpenSSL's set-up costs memory.
            // Peers are asked only whether they are alive (and their term):
            // their certificates are not checked, as there is no CA for them here.
            http_client::TlsClientOptions insecure;
            insecure.insecure = true;
            if (auto tls = http_client::make_client_tls(insecure)) peer_tls_ = *tls;
        }
        names.push_back(name);
        calls.push_back({"GET", *parsed, ""});
    }
    auto answers = co_await http_client::async_http_all(calls, "", timeout, peer_tls_, false);
    std::vector<PeerView> out;
    for (size_t i = 0; i < answers.size(); ++i) {
        PeerView v;
        v.name = names[i];
        if (answers[i] && answers[i]->status == 200) {
            v.reachable = true;
            auto j = nlohmann::json::parse(answers[i]->body, nullptr, false);
            if (j.is_object()) {
                v.role = j.value("role", "");
                v.term = j.value("term", uint64_t{0});
            }
        }
        out.push_back(std::move(v));
    }
    co_return out;
}

size_t Daemon::lease_member_count() const {
    const auto& m = prepared_->persistent.lease_members;
    return m.size() + (m.count(cfg_.name) ? 0 : 1);
}

awaitable<void> Daemon::lease_watchdog() {
    asio::steady_timer timer(io_);
    while (!shutting_down_) {
        timer.expires_after(kWatchPeriod);
        co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored_ec_));
        if (shutting_down_) break;
        auto now = std::chrono::steady_clock::now();
        if (!state_.lease_expires || now < *state_.lease_expires || commands_.busy() ||
            state_.role.current() != Role::primary || !prepared_)
            continue;
        auto peers = co_await ask_peers("/v1/status", probe_timeout(state_.lease_ttl));
        size_t reachable = 1;
        std::string other_primary;
        for (const auto& p : peers) {
            reachable += p.reachable ? 1 : 0;
            if (p.reachable && p.role == "primary") other_primary = p.name;
        }
        size_t members = lease_member_count();
        // The answers took a while: the lease may have been renewed meanwhile.
        if (state_.lease_expires && std::chrono::steady_clock::now() < *state_.lease_expires)
            continue;
        if (reachable >= majority_of(members) && other_primary.empty()) {
            if (!lease_lapse_logged_)
                log::warn("lease", "the lease lapsed but a majority answers: serving on",
                          {{"reachable", reachable}, {"members", members}});
            lease_lapse_logged_ = true;
            timer.expires_after(kMajorityRecheck);
            co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored_ec_));
            continue;
        }
        if (commands_.busy() || state_.role.current() != Role::primary) continue;
        std::string reason = other_primary.empty()
                                 ? "the lease lapsed and only " + std::to_string(reachable) +
                                       " of " + std::to_string(members) + " members answer: fencing"
                                 : "the lease lapsed and " + other_primary + " is primary: fencing";
        log::warn("lease", reason);
        std::optional<CommandAnswer> fenced;
        {
            auto slot = commands_.try_take();
            fenced.emplace(co_await do_fence());
        }
        state_.last_error = *fenced ? reason : fenced->error().message;
        state_.lease_expires.reset();
    }
}

awaitable<StartVerdict> Daemon::majority_verdict(std::vector<PeerView>& peers) {
    peers = co_await ask_peers("/v1/status", std::chrono::milliseconds(1000));
    co_return primary_start_verdict(prepared_->persistent.term, peers, lease_member_count());
}

awaitable<StartVerdict> Daemon::ask_members() {
    std::vector<PeerView> peers;
    auto verdict = co_await majority_verdict(peers);
    if (verdict == StartVerdict::stand_down) {
        nlohmann::json seen = nlohmann::json::array();
        for (const auto& p : peers)
            if (p.reachable) seen.push_back({{"name", p.name}, {"role", p.role}, {"term", p.term}});
        log::warn("lease",
                  "another member is primary or has a newer term: staying fenced until the "
                  "controller demotes this instance",
                  {{"our_term", prepared_->persistent.term}, {"members", seen}});
    }
    co_return verdict;
}

void Daemon::arm_lease() {
    const auto& p = prepared_->persistent;
    if (p.lease_members.empty() || p.lease_ttl_ms == 0) return;
    state_.lease_ttl = std::chrono::milliseconds(p.lease_ttl_ms);
    state_.lease_expires = std::chrono::steady_clock::now() + state_.lease_ttl;
}

}  // namespace im
