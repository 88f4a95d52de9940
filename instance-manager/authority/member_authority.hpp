#pragma once
// One member's side of the write authority (one per member, pure, no I/O):
// it promises terms to proposers and grants a time-limited write right to one
// holder per term. The shell persists what it is told to BEFORE it replies.
//
// Safety, in one paragraph: a proposer promotes for term T only after a
// majority promised T and it waited out every grant those promisers reported.
// A member that promised T never grants (nor renews) a term below T. Any
// majority an older primary could count shares a member with that promise
// majority, whose grant to it has run out and will not be renewed: so the
// older primary cannot hold a majority once the new one is promoted.
//
// Decided here (the brief left it open):
// - A grant for T > promised_term is given and raises promised_term to T (with
//   promised_to cleared): only a primary promoted by a promise majority asks
//   for T, so the member learns the term and refuses older ones from then on.
// - A grant for a HIGHER term to another holder is given even while an older
//   grant still runs: the promise majority of that term already waited the old
//   grants out, so the old holder cannot count a majority anyway. Within the
//   same term there is only one holder, and never a lower term.
// - grant_expires never moves back: it is the end of the LAST-ending grant
//   this member gave, to anyone. Promise answers report that, so nothing the
//   member ever granted is missed.
// - Requests are clamped to max_ttl; after a restart the member assumes a
//   grant of max_ttl was just given (the volatile expiry is lost).
// - A request whose membership version differs from the member's is refused.
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
    bool operator==(const DurableGrantState&) const = default;
};

struct MemberParams {
    uint64_t membership_version = 1;
    Duration max_ttl = std::chrono::seconds(10);
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

    const DurableGrantState& durable() const { return durable_; }
    // How long the last-ending grant still runs (0 when none), own clock.
    Duration grant_remaining(Instant now) const;

private:
    MemberParams params_;
    DurableGrantState durable_;
    std::optional<Instant> grant_expires_;  // volatile
};

}  // namespace im::authority
