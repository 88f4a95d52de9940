#pragma once
// Synchronous durability under the write authority (pure, no I/O): which
// standbys may hold an acknowledged commit, recorded where a failover can
// read it, and the rule that picks a new primary holding every one of them.
//
// The promise to keep: with synchronous_standby_names = ANY k (S) (or FIRST
// k (S): the first k connected ones, so again any k of S), a commit that
// returned is flushed on at least k members of S. A failover that reads the
// LSN of R members of S, with R + k > |S|, reads at least one holder of every
// such commit; the most advanced of them holds them all (WAL is a prefix).
//
// Where the set comes from (decided here): the primary's durability record,
// carried in its grant requests and kept by every member that grants, next
// to the grant (fsync'd). The primary uses a set only once a majority of
// members stored a record naming it; a promotion's promises come from a
// majority too, so at least one promiser holds a record at least that new,
// and the newest record among the promises covers every set in use. A poll
// of the primary could be stale; the record cannot be older than what the
// primary acts on.
//
// Changing the set (a member added or removed, k changed, a promotion) is
// ordered so that the rule holds at every instant: the record first lists the
// old sets AND the new one, the primary then switches, and only once k
// members of the new set flushed past the LSN where the switch took effect
// (every commit acknowledged under an old set lies before it) is a record
// with the new set alone sent. A record with several sets asks the failover
// to satisfy each one.
//
// The LSNs must be read after the old primary can no longer commit: the
// controller reads them after its promotion round waited out the old grants
// (promises stop renewals; the wait ends their use), never from the round's
// own answers, which may precede commits the old primary made meanwhile.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace im::authority {

// `number` of `standbys` acknowledge every commit.
struct QuorumSet {
    unsigned number = 0;
    std::vector<std::string> standbys;  // sorted, no duplicates
    bool operator==(const QuorumSet&) const = default;
};

struct DurabilityRecord {
    uint64_t term = 0;     // the primary term that wrote it (0: none ever)
    uint64_t version = 0;  // increases with every change within the term
    // The sets commits may have been acknowledged under. Empty: the primary
    // commits asynchronously and promises nothing.
    std::vector<QuorumSet> sets;
    bool operator==(const DurabilityRecord&) const = default;
    bool newer_than(const DurabilityRecord& o) const {
        return term != o.term ? term > o.term : version > o.version;
    }
};

// The sets a record must list while switching from `current` to `next`
// (nullopt: asynchronous): the old sets stay until the switch is complete
// (see above), also on the way to asynchronous, where commits acknowledged
// before still need a failover that finds them.
std::vector<QuorumSet> switching_sets(const std::vector<QuorumSet>& current,
                                      const std::optional<QuorumSet>& next);

// Whether the switch to `next` is complete (flushed: standby name -> flush
// LSN on the primary): `number` of its standbys flushed at least
// `since_lsn`. To asynchronous (`next` empty), every standby of the old
// `sets` did: then whichever member a failover promotes holds what they
// acknowledged.
bool switch_complete(const std::optional<QuorumSet>& next, const std::vector<QuorumSet>& sets,
                     uint64_t since_lsn,
                     const std::vector<std::pair<std::string, uint64_t>>& flushed);

// One member's LSN as the controller read it after the round's wait. Only
// a position known to be on disk counts: a standby's flushed receive
// position (pg_last_wal_receive_lsn, kept after its WAL receiver stops), or
// its replay position if larger; one whose receiver has not run since a
// restart (NULL, while its own pg_wal may hold more than it replayed) is no
// reading.
struct Reading {
    std::string member;
    uint32_t timeline = 0;   // of the newest WAL it holds (see choose_candidate)
    uint64_t lsn = 0;        // flushed WAL
    bool eligible = false;   // may be promoted (running replica, priority >= 0)
    int priority = 0;
};

struct SyncChoice {
    bool ok = false;
    std::string candidate;
    uint64_t min_lsn = 0;  // the most advanced reading: the candidate holds at least this
    std::string reason;    // not ok: why no member may be promoted
};

// The synchronous failover rule: every set of `record` read by enough
// members (R + k > N), and an eligible member at least as advanced as every
// reading of them (the highest priority, then LSN, then name). An
// asynchronous record (no sets) only asks for an eligible member: the most
// advanced, then priority, then name.
// "Advanced" is (timeline, LSN), and the candidate must be on the top
// reading's timeline: a standby of the old primary may hold more WAL of the
// old timeline than the new timeline's standbys (what the old primary wrote
// but never had acknowledged, after the fork), and less of what counts. The
// newest timeline's history holds every commit acknowledged before it was
// made (its primary was promoted by this rule), so the top reading holds
// them all. (The simulator found the LSN-only order losing commits.) The
// timeline must be that of the newest WAL the standby holds, not of its
// last restartpoint (daemon/monitor.cpp).
SyncChoice choose_candidate(const DurabilityRecord& record, const std::vector<Reading>& readings);

// The newest record among promises (members that never stored one report
// term 0 and lose to any other).
DurabilityRecord newest_record(const std::vector<DurabilityRecord>& records);

// JSON forms (grant requests, promise answers, the grant store, status).
nlohmann::json to_json(const DurabilityRecord& r);
// Strict: nullopt unless {"term", "version", "sets": [{"number" >= 1,
// "standbys": [names]}]} (extra fields refused).
std::optional<DurabilityRecord> parse_durability(const nlohmann::json& j);
// Tolerant (answers): whatever does not parse is an empty (term 0) record.
DurabilityRecord durability_from(const nlohmann::json& j);
std::string describe(const std::vector<QuorumSet>& sets);

}  // namespace im::authority
