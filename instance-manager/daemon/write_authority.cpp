// The write authority on the daemon (quorum/ has the pieces): this member's
// promises and grants, the write right it holds as primary, what happens
// when that right is lost, and the watchdog that does not depend on us.
#include "daemon/daemon.hpp"
#include "http_client.hpp"
#include "log.hpp"

namespace im {

namespace {
uint64_t newest_lsn(const PgObservation& pg) {
    return std::max({parse_lsn(pg.receive_lsn), parse_lsn(pg.replay_lsn), parse_lsn(pg.current_lsn)});
}
}  // namespace

CommandAnswer Daemon::authority(const std::string& what, const nlohmann::json& body) {
    const auto now = quorum::own_now();
    if (what == "promise") {
        // A restore makes the first primary of a new history: joining a
        // membership now would make its own promotion a write without the
        // write right (it is adopted afterwards, as a fresh primary is).
        if (state_.restoring)
            return make_error("restoring from the repository: it promotes itself, then it can "
                              "be adopted",
                              409);
        // A check of postgres at once: a controller that promotes in
        // synchronous mode asks again after its wait, for positions read
        // after the old primary could last commit.
        monitor_.poke();
        return authority_.promise(body, newest_lsn(state_.pg), now);
    }
    if (what == "grant") return authority_.grant(body, now);
    if (what == "release") return authority_.release(body);
    return make_error("unknown authority call " + what, 404);
}

void Daemon::ensure_peer_tls() {
    if (peer_tls_) return;
    bool https = false;
    for (const auto& [name, url] : prepared_->persistent.member_urls)
        if (auto u = http_client::parse_url(url); u && u->tls) https = true;
    if (!https) return;
    // Made only when a member speaks https (OpenSSL's set-up costs memory).
    // The members' certificates are not verified (there is no CA for them
    // here; the token is what a member checks); ours is presented, so that
    // members with --tls-client-ca (mTLS) take our grant requests.
    http_client::TlsClientOptions peers;
    peers.insecure = true;
    peers.cert_file = cfg_.tls_cert;
    peers.key_file = cfg_.tls_key;
    auto tls = http_client::make_client_tls(peers);
    if (!tls) {
        log::error("authority", "cannot set up TLS towards the members",
                   {{"error", tls.error().message}});
        return;
    }
    peer_tls_ = *tls;
    keeper_.set_tls(peer_tls_);
}

awaitable<CommandAnswer> Daemon::do_members(const nlohmann::json& body) {
    auto urls = body["member_urls"].get<std::map<std::string, std::string>>();
    auto& p = prepared_->persistent;
    if (urls == p.member_urls) co_return nlohmann::json{{"changed", false}};
    p.member_urls = urls;
    if (auto st = save_persistent(); !st) co_return make_error(st.error().message, 500);
    ensure_peer_tls();
    keeper_.set_urls(urls);
    co_return nlohmann::json{{"changed", true}};
}

awaitable<quorum::GatherVerdict> Daemon::take_write_right(
    uint64_t term, const authority::DurabilityRecord& inherited) {
    ensure_peer_tls();
    if (!keeper_.holding() || keeper_.term() != term) {
        keeper_.hold(term, authority_.membership(), prepared_->persistent.member_urls);
        // What this member stored last, or what the promotion found, whichever
        // is newer; with the set postgres will use.
        // The inherited sets join in any case: more sets ask more of a
        // failover, never less.
        auto start = authority::newest_record({authority_.durable().durability, inherited});
        for (const auto& s : inherited.sets) start.sets = authority::switching_sets(start.sets, s);
        keeper_.continue_record(start);
        switch_since_ = 0;
        keeper_.set_sets(authority::switching_sets(keeper_.record()->sets, configured_set()));
    }
    // Two renewal rounds' worth: a member that misses the first is asked again.
    auto verdict = co_await keeper_.gather(std::max(cfg_.grant_ttl, std::chrono::milliseconds(1500)));
    sync_watchdog();
    co_return verdict;
}

awaitable<StartVerdict> Daemon::ask_members() {
    const uint64_t term = prepared_->persistent.write_term;
    auto verdict = co_await take_write_right(term);
    switch (verdict) {
        case quorum::GatherVerdict::granted:
            co_return StartVerdict::start;
        case quorum::GatherVerdict::superseded:
            log::warn("authority",
                      "a member promised a newer term: staying fenced until the controller "
                      "demotes this instance",
                      {{"write_term", term}});
            keeper_.drop();
            co_return StartVerdict::stand_down;
        case quorum::GatherVerdict::no_majority:
            break;
    }
    co_return StartVerdict::wait;
}

void Daemon::on_write_right_lost(bool superseded, const std::string& why) {
    const bool writable = supervisor_.running() && keeper_.holding();
    if (writable) {
        // Before anything that may block (the fsync below, even the log
        // line): the bound is the kernel's.
        ++state_.write_right_losses;
        quorum::stop_postgres_now(supervisor_.pid());
        stopped_for_ = why;
    }
    nlohmann::json fields = {{"postgres_killed", writable}, {"superseded", superseded}};
    // How long after the deadline the kill was done (bench/fencing-bound.sh).
    if (auto d = keeper_.deadline())
        fields["after_deadline_us"] = (quorum::own_now() - *d).count();
    log::error("authority", why, fields);
    state_.last_error = why;
    if (superseded) {
        keeper_.drop();
        if (prepared_) {
            if (auto st = persist_fence(why); !st)
                log::error("authority", "cannot persist the fence", {{"error", st.error().message}});
        }
        // Down already (a crash, a restart's backoff): fenced now, so that the
        // controller's demote finds a fenced former primary. A running one
        // gets there when its exit is seen (on_postgres_exit).
        if (!writable && state_.role.current() == Role::stopped)
            (void)state_.role.transition(Role::fenced, why);
    }
    // Not superseded (no majority renewed in time): postgres is restarted
    // through the start gate, which asks the members again; a partition that
    // healed without a newer term lets the same primary serve on.
    sync_watchdog();
}

void Daemon::sync_watchdog() {
    if (!watchdog_) return;
    auto d = keeper_.deadline();
    if (supervisor_.running() && keeper_.holding() && d)
        watchdog_->arm(supervisor_.pid(), *d);
    else
        watchdog_->disarm();
}

awaitable<void> Daemon::give_up_write_right() {
    co_await keeper_.release();
    sync_watchdog();
}

nlohmann::json Daemon::authority_view() const {
    return {{"member", authority_.status(quorum::own_now())},
            {"write_term", prepared_ ? prepared_->persistent.write_term : 0},
            {"write_right", keeper_.status()},
            {"former_primary_fork", former_primary_fork()}};
}

}  // namespace im
