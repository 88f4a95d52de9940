// Synchronous durability on the primary (authority/durability.hpp has the
// rule): the set postgres waits for is recorded by a majority, with the sets
// it replaces, before postgres uses it; the older sets leave the record once
// enough of the new set flushed past the LSN where the switch took effect.
#include <filesystem>

#include "daemon/daemon.hpp"
#include "fs_util.hpp"
#include "log.hpp"
#include "pg_session.hpp"

namespace im {

using authority::QuorumSet;

namespace {
constexpr auto kSqlTimeout = std::chrono::seconds(10);

// The record's form of a setting: FIRST and ANY alike (any `number` of them
// may be the ones that acknowledged), names sorted.
std::optional<QuorumSet> quorum_set_of(const std::optional<SyncSpec>& spec) {
    if (!spec) return std::nullopt;
    QuorumSet q{spec->number, spec->standbys};
    std::sort(q.standbys.begin(), q.standbys.end());
    q.standbys.erase(std::unique(q.standbys.begin(), q.standbys.end()), q.standbys.end());
    return q;
}
}  // namespace

std::optional<QuorumSet> Daemon::configured_set() const {
    if (!prepared_) return std::nullopt;
    return quorum_set_of(prepared_->persistent.synchronous);
}

nlohmann::json Daemon::former_primary_fork() const {
    if (!prepared_ || prepared_->replica || supervisor_.running()) return nullptr;
    // The newest timeline's history file names the timeline it branched
    // from and where; none (timeline 1, from initdb): it branched from
    // nothing, and holds nothing of any other history.
    uint32_t newest = 0;
    std::string file;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(cfg_.pgdata + "/pg_wal", ec)) {
        const std::string name = e.path().filename().string();
        if (name.size() != 16 || name.substr(8) != ".history" ||
            name.find_first_not_of("0123456789ABCDEF") != 8)
            continue;
        const auto tli = static_cast<uint32_t>(std::stoul(name.substr(0, 8), nullptr, 16));
        if (tli > newest) newest = tli, file = e.path().string();
    }
    if (ec) return nullptr;
    if (file.empty()) return {{"timeline", 0}, {"lsn", "0/0"}};
    auto text = fs::read_file(file);
    if (!text) return nullptr;
    auto fork = last_fork(*text);
    if (!fork) return nullptr;
    return {{"timeline", fork->first}, {"lsn", lsn_text(fork->second)}};
}

void Daemon::advance_durability() {
    const auto* record = keeper_.record();
    if (!record || !keeper_.recorded() || !supervisor_.running() ||
        state_.role.current() != Role::primary || switch_since_ == kSwitchPending)
        return;
    auto current = configured_set();
    if (!current && record->sets.empty()) return;  // asynchronous, nothing left to find
    if (current && record->sets.size() == 1 && record->sets.front() == *current) return;
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
    if (!authority::switch_complete(current, record->sets, switch_since_, flushed)) return;
    std::vector<QuorumSet> now;
    if (current) now.push_back(*current);
    log::info("replication", "synchronous switch complete: older sets leave the record",
              {{"since_lsn", lsn_text(switch_since_)},
               {"sets", authority::describe(record->sets)},
               {"now", authority::describe(now)}});
    keeper_.set_sets(std::move(now));
}

awaitable<Status> Daemon::reload_barrier(PgSession& session, const std::string& wanted,
                                         bool checkpoint) {
    // Our own session shows the new value once the postmaster re-read the
    // file and signalled every child (it does so before our backend gets
    // its SIGHUP); a CHECKPOINT then returns only after the checkpointer
    // handled its SIGHUP, which is what makes commits wait at all
    // (sync_standbys_defined) when a set appears.
    asio::steady_timer timer(io_);
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);;) {
        auto r = co_await session.query("SHOW synchronous_standby_names", kSqlTimeout);
        if (r && pg_value(r->get(), 0, 0).value_or("?") == wanted) break;
        if (std::chrono::steady_clock::now() > until)
            co_return make_error("postgres did not take the new synchronous_standby_names in 5 s",
                                 503);
        timer.expires_after(std::chrono::milliseconds(20));
        co_await timer.async_wait(use_awaitable);
    }
    if (!checkpoint) co_return Ok{};
    auto ckpt = co_await session.query("CHECKPOINT", std::chrono::seconds(60));
    if (!ckpt) co_return make_error("CHECKPOINT after the reload: " + ckpt.error().message, 503);
    co_return Ok{};
}

awaitable<Status> Daemon::walsender_barrier(PgSession& session) {
    // A walsender releases waiting commits while it handles a standby's
    // reply, under the setting it last loaded, and reloads at the top of its
    // loop. A little WAL of our own (a commit that waits for nobody) makes
    // every standby reply at once; once each walsender handled a reply sent
    // after now, what it released under the old setting came from replies
    // we have seen, at positions before the switch LSN read after this.
    // Bounded (1 s): a walsender whose standby does not answer releases
    // nothing, and the controller waits for this command.
    asio::steady_timer timer(io_);
    auto t0 = co_await session.query("SELECT clock_timestamp()::text", kSqlTimeout);
    if (!t0) co_return t0.error();
    std::vector<std::optional<std::string>> params = {pg_value(t0->get(), 0, 0).value_or("")};
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);;) {
        auto wal = co_await session.query(
            "BEGIN; SET LOCAL synchronous_commit = local; SELECT txid_current(); COMMIT",
            kSqlTimeout);
        if (!wal) co_return wal.error();
        auto r = co_await session.query(
            "SELECT count(*) FILTER (WHERE reply_time IS NULL OR reply_time <= $1::timestamptz)"
            " FROM pg_stat_replication",
            kSqlTimeout, params);
        if (!r) co_return r.error();
        if (pg_value(r->get(), 0, 0).value_or("1") == "0") co_return Ok{};
        if (std::chrono::steady_clock::now() > until) co_return Ok{};  // silent standbys
        timer.expires_after(std::chrono::milliseconds(20));
        co_await timer.async_wait(use_awaitable);
    }
}

awaitable<Status> Daemon::switch_synchronous(const std::optional<SyncSpec>& spec,
                                             PgSession& session) {
    auto& p = prepared_->persistent;
    const bool member = keeper_.holding();
    const bool before = p.synchronous.has_value();
    if (member) {
        switch_since_ = kSwitchPending;
        keeper_.set_sets(authority::switching_sets(keeper_.record()->sets, quorum_set_of(spec)));
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
    monitor_.poke();
    const std::string wanted = spec ? synchronous_standby_names(*spec) : "";
    // From no set to one, the checkpointer must take it too (a CHECKPOINT):
    // it is what makes commits wait at all.
    const bool flips = spec && !before;
    if (auto st = co_await reload_barrier(session, wanted, flips); !st) {
        // The record keeps the old and the new sets (switch_since_ stays
        // pending): a failover asks more, never less.
        log::warn("replication", "synchronous switch not confirmed: the record keeps both sets",
                  {{"error", st.error().message}});
        co_return st;
    }
    if (member) {
        if (auto st = co_await walsender_barrier(session); !st) {
            log::warn("replication",
                      "synchronous switch not confirmed: the record keeps both sets",
                      {{"error", st.error().message}});
            co_return st;
        }
        // Every commit acknowledged under an older set lies before this.
        auto r = co_await session.query("SELECT pg_current_wal_lsn()::text", kSqlTimeout);
        if (!r) co_return r.error();
        switch_since_ = parse_lsn(pg_value(r->get(), 0, 0).value_or("0/0"));
    }
    co_return Ok{};
}

}  // namespace im
