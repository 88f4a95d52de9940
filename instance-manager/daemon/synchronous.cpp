// Synchronous durability on the primary (authority/durability.hpp has the
// rule): the set postgres waits for is recorded by a majority, with the sets
// it replaces, before postgres uses it; the older sets leave the record once
// enough of the new set flushed past the LSN where the switch took effect.
#include "daemon/daemon.hpp"
#include "log.hpp"
#include "pg_session.hpp"

namespace im {

using authority::QuorumSet;

namespace {
constexpr auto kSqlTimeout = std::chrono::seconds(10);
}

std::optional<QuorumSet> Daemon::configured_set() const {
    if (!prepared_ || !prepared_->persistent.synchronous) return std::nullopt;
    const auto& spec = *prepared_->persistent.synchronous;
    QuorumSet q{spec.number, spec.standbys};
    std::sort(q.standbys.begin(), q.standbys.end());
    q.standbys.erase(std::unique(q.standbys.begin(), q.standbys.end()), q.standbys.end());
    return q;
}

void Daemon::advance_durability() {
    const auto* record = keeper_.record();
    if (!record || !keeper_.recorded() || !supervisor_.running() ||
        state_.role.current() != Role::primary || switch_since_ == kSwitchPending)
        return;
    auto current = configured_set();
    if (!current) return;  // asynchronous: the record lists no set already
    if (record->sets.size() == 1 && record->sets.front() == *current) return;
    const uint64_t now_lsn = parse_lsn(state_.pg.current_lsn);
    if (switch_since_ == 0) {
        // Started with this set: every commit of an older one lies before
        // what postgres has now.
        switch_since_ = now_lsn;
        return;
    }
    std::vector<std::pair<std::string, uint64_t>> flushed;
    const auto& rows = state_.pg.replication.value("replicas", nlohmann::json::array());
    for (const auto& r : rows)
        if (r.is_object() && r.value("name", nlohmann::json()).is_string() &&
            r.value("flush_lsn", nlohmann::json()).is_string())
            flushed.emplace_back(r["name"].get<std::string>(),
                                 parse_lsn(r["flush_lsn"].get<std::string>()));
    if (!authority::switch_complete(*current, switch_since_, flushed)) return;
    log::info("replication", "synchronous switch complete: older sets leave the record",
              {{"since_lsn", lsn_text(switch_since_)},
               {"sets", authority::describe(record->sets)},
               {"now", authority::describe({*current})}});
    keeper_.set_sets({*current});
}

awaitable<Status> Daemon::switch_synchronous(const std::optional<SyncSpec>& spec,
                                             PgSession& session) {
    auto& p = prepared_->persistent;
    const bool member = keeper_.holding();
    if (member) {
        std::optional<QuorumSet> next;
        if (spec) {
            next = QuorumSet{spec->number, spec->standbys};
            std::sort(next->standbys.begin(), next->standbys.end());
            next->standbys.erase(std::unique(next->standbys.begin(), next->standbys.end()),
                                 next->standbys.end());
        }
        switch_since_ = kSwitchPending;
        keeper_.set_sets(authority::switching_sets(keeper_.record()->sets, next));
        if (!co_await keeper_.confirm(std::chrono::seconds(5))) {
            switch_since_ = 0;
            co_return make_error(
                "no majority stored the new synchronous set in time: the setting is unchanged",
                503);
        }
    }
    p.synchronous = spec;
    if (auto st = save_persistent(); !st) co_return make_error(st.error().message, 500);
    if (auto st = write_managed_files(cfg_, *prepared_); !st)
        co_return make_error(st.error().message, 500);
    // synchronous_standby_names takes effect on reload; commits waiting for
    // a standby that left the set are released by it.
    reload_all();
    const std::string wanted = spec ? synchronous_standby_names(*spec) : "";
    asio::steady_timer timer(io_);
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);;) {
        auto r = co_await session.query("SHOW synchronous_standby_names", kSqlTimeout);
        if (r && pg_value(r->get(), 0, 0).value_or("?") == wanted) break;
        if (std::chrono::steady_clock::now() > until) {
            log::warn("replication", "the new synchronous setting is not visible yet");
            break;
        }
        timer.expires_after(std::chrono::milliseconds(20));
        co_await timer.async_wait(use_awaitable);
    }
    if (member) {
        // Walsenders apply the reload in their own loops, within moments of
        // our session: the switch point is taken a little after.
        timer.expires_after(std::chrono::milliseconds(200));
        co_await timer.async_wait(use_awaitable);
        auto r = co_await session.query("SELECT pg_current_wal_lsn()::text", kSqlTimeout);
        // Unread: 0, the next check takes what postgres has then (later still).
        switch_since_ = r ? parse_lsn(pg_value(r->get(), 0, 0).value_or("0/0")) : 0;
    }
    monitor_.poke();
    co_return Ok{};
}

}  // namespace im
