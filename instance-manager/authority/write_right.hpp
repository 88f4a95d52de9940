#pragma once
// The primary's side of the write authority (pure): it asks every member,
// itself included, for a grant for its term, and may write only while grants
// from a majority are unexpired. It is the one door to writing (STYLE 15):
// the daemon asks may_write()/deadline() and feeds deadline() to the
// out-of-process watchdog, which stops postgres if the manager cannot.
//
// Decided here: an answer is matched to its request by `seq` (the shell need
// not remember send times); only the last kRoundsKept rounds are remembered,
// and an answer to an older round is ignored (it would count for less anyway).
// The sequence starts at `first_seq`, which the shell draws at random for
// every WriteRight it makes: a late answer to a round of an EARLIER
// incarnation (before a restart, same term) must never match a new round,
// or a grant given long ago would count as if given now. (The simulator
// found this with seq restarting at 1.)
// A refusal naming a promised term above ours means a newer term exists: the
// right is lost for good (superseded) and the primary must step down.
#include <array>
#include <map>
#include <optional>
#include <string>

#include "authority/clock_bounds.hpp"
#include "authority/membership.hpp"
#include "authority/messages.hpp"

namespace im::authority {

struct WriteRightParams {
    Duration ttl = std::chrono::seconds(3);  // asked of each member
    double rho = kDefaultRho;
};

enum class AnswerOutcome { recorded, refused, ignored, superseded };

class WriteRight {
public:
    WriteRight(std::string self, uint64_t term, Membership membership, WriteRightParams params,
               uint64_t first_seq);

    // A renewal round: the same request goes to every member (itself too);
    // its send time is `now` on our clock. Call it at next_renewal().
    GrantRequest begin_round(Instant now);
    // A member's answer to one of our rounds.
    AnswerOutcome on_answer(const std::string& member, const GrantAnswer& answer);

    // Grants from a majority run past `now`, for our term, and no newer term is known.
    bool may_write(Instant now) const;
    // The latest instant (own clock) we may still write: the majority-th
    // latest expiry. Empty when no majority was ever granted, or superseded.
    // The watchdog is fed it whenever it moves later (it never moves earlier
    // while not superseded); a watchdog on the same host reads the same
    // clock as the manager (CLOCK_BOOTTIME), so the instant needs no
    // conversion. Superseded, the manager fences at once instead.
    std::optional<Instant> deadline() const;
    // Renewal every ttl/3: two rounds may be lost before the right lapses.
    Instant next_renewal() const { return next_renewal_; }

    // The durability record sent with every request (durability.hpp). A new
    // one (sets changed) gets the next version; the primary may use its sets
    // once recorded_version() reached that version.
    const DurabilityRecord& record() const { return record_; }
    // `start`: the record to continue from (its sets, and versions above it
    // when it is of our term).
    void set_record(std::vector<QuorumSet> sets);
    void continue_record(const DurabilityRecord& start);
    // The highest version a majority of members confirmed storing.
    uint64_t recorded_version() const;

    uint64_t term() const { return term_; }
    bool superseded() const { return superseded_.has_value(); }
    std::optional<uint64_t> newer_term() const { return superseded_; }
    const std::string& self() const { return self_; }
    // Per member: until when (own clock) its grant counts. For status only.
    const std::map<std::string, Instant>& valid_until() const { return valid_until_; }
    const Membership& membership() const { return membership_; }

private:
    static constexpr size_t kRoundsKept = 8;
    std::string self_;
    uint64_t term_;
    Membership membership_;
    WriteRightParams params_;
    uint64_t seq_ = 0;
    std::array<std::pair<uint64_t, Instant>, kRoundsKept> rounds_{};  // seq -> sent at
    std::map<std::string, Instant> valid_until_;                      // per member, own clock
    Instant next_renewal_{};
    std::optional<uint64_t> superseded_;
    DurabilityRecord record_;
    std::map<std::string, uint64_t> confirmed_;  // per member: the record version it holds
};

}  // namespace im::authority
