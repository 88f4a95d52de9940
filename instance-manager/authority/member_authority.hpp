#pragma once
// One member's side of the write authority (one per member, pure, no I/O):
// it promises terms to proposers and grants a time-limited write right to one
// holder at a time. The shell persists what it is told to BEFORE it replies.
//
// Safety, in one paragraph: a member gives a grant to a new holder (another
// member, or a newer term) only once its grant to the previous holder can no
// longer be in use: expired on its own clock, plus the fencing bound F (the
// time a holder past its deadline may still commit), or released by the
// holder after its postgres stopped. A primary writes only while grants from
// a majority run; any two majorities share a member, and that member's two
// grants are never in use at once: so two primaries never write at once,
// whatever a proposer does (two controllers, a stale one, a promote by hand).
// Promises serve progress and order: a member that promised T renews no term
// below T, so the old primary's grants run out and the new one can get them;
// the proposer waits them out before promoting, so the candidate finds them
// free; and an old primary learns it is superseded.
//
// Decided here (the brief left it open):
// - A grant for T > promised_term raises promised_term to T (promised_to
//   cleared): the member learns the term and refuses older ones from then on.
// - Within one term there is only one holder, and never a lower term.
// - Requests are clamped to max_ttl; after a restart the member assumes a
//   grant of max_ttl to its last holder was just given (the expiry is lost).
// - A request whose membership version differs from the member's is refused.
// - A holder that has stopped writing (a demote, a switchover) releases its
//   grant: it is no longer in use, so a new holder need not wait for it, and
//   the next promotion need not wait it out. Only the holder's own grant in
//   its own term is released. Safe because the holder sends it only after
//   postgres stopped and after it persisted that it will never ask for that
//   term again (a release that arrives late cannot end a newer grant).
#include <optional>
#include <string>

#include "authority/clock_bounds.hpp"
#include "authority/messages.hpp"

namespace im::authority {

// Survives restarts: the shell writes it (fsync'd) when told to.
struct DurableGrantState {
    uint64_t promised_term = 0;
    std::string promised_to;  // proposer id; empty when learned from a grant
    uint64_t granted_term = 0;
    std::string granted_to;  // holder name; empty when it never granted
    // The newest durability record a holder sent with a granted request.
    DurabilityRecord durability;
    bool operator==(const DurableGrantState&) const = default;
};

struct MemberParams {
    uint64_t membership_version = 1;
    Duration max_ttl = std::chrono::seconds(10);
    // F, real time: a holder past its deadline may commit this much longer.
    Duration fencing_bound = kFencingBound;
    double rho = kDefaultRho;
};

// What the shell does with a request: persist first (when set), then reply.
template <class Answer>
struct Decision {
    std::optional<DurableGrantState> persist;
    Answer reply;
};

class MemberAuthority {
public:
    // A fresh member (nothing ever promised or granted).
    explicit MemberAuthority(MemberParams params);
    // After a (re)start: the durable state read back; the volatile expiry is
    // lost, so a grant of max_ttl to granted_to is assumed to run from `now`.
    static MemberAuthority restore(MemberParams params, DurableGrantState durable, Instant now);

    Decision<PromiseAnswer> on_promise(const PromiseRequest& req, Instant now,
                                       uint64_t received_lsn);
    Decision<GrantAnswer> on_grant(const GrantRequest& req, Instant now);
    // The holder of (term) gave its grant back: true when it was ours to forget.
    bool on_release(const std::string& holder, uint64_t term);

    const DurableGrantState& durable() const { return durable_; }
    // How long the current grant still runs (0 when none or released), own clock.
    Duration grant_remaining(Instant now) const;
    // Until when (own clock) the current grant may still be in use: its end
    // plus F; empty when there is none, or it was released.
    std::optional<Instant> in_use_until() const;

private:
    MemberParams params_;
    DurableGrantState durable_;
    // Volatile: the end of the grant to (granted_term, granted_to); grants to
    // earlier holders were out of use before it was given.
    std::optional<Instant> grant_expires_;
    bool released_ = false;  // the current holder gave its grant back
};

}  // namespace im::authority
