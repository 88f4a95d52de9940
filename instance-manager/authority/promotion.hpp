#pragma once
// The proposer's side of the write authority (the controller's promotion),
// pure: a Promotion is one two-step round for one term; a Proposer decides
// when to start one and which term to use.
//
//   1. ask every member to promise term T (T = highest term seen + 1);
//   2. with a majority of promises (the candidate among them), pick the most
//      advanced promiser (received LSN, then priority, then name; a negative
//      priority is never promoted), wait until every promiser's reported
//      grant has run out on OUR clock (stretch_to_own) plus the fencing bound
//      F (real time, real_to_own) plus a margin (not when every promiser is
//      quiet: no grant of theirs can be in use); then promote the candidate
//      with T and min_lsn. The new primary gathers grants for T itself.
//
// Decided here: once a majority promised, the round waits collect_grace for
// the remaining answers (a more advanced member may answer a moment later),
// or less when all answered; the promisers are then fixed and later answers
// ignored. Unanswered members are asked again every resend_every (a promise
// is idempotent for the same proposer and term). Any refusal naming a term
// >= T ends the round as superseded: two proposers of one term never both
// get a majority, and the loser stands by. A round without a majority by
// round_timeout fails; the Proposer retries with a higher term.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "authority/clock_bounds.hpp"
#include "authority/membership.hpp"
#include "authority/messages.hpp"

namespace im::authority {

struct PromotionParams {
    double rho = kDefaultRho;
    // F, real time: lease lapse to the last possible commit (measured by
    // bench/fencing-bound.sh; the watchdog's kill lands within milliseconds).
    Duration fencing_bound = kFencingBound;
    Duration margin = std::chrono::milliseconds(50);
    Duration collect_grace = std::chrono::milliseconds(200);
    Duration resend_every = std::chrono::milliseconds(300);
    Duration round_timeout = std::chrono::seconds(2);
};

struct PromotionStep {
    enum class Kind { asking, waiting, promote, failed, superseded };
    Kind kind = Kind::asking;
    Instant until{};             // waiting: promote at this instant (own clock)
    std::string candidate;       // waiting, promote
    uint64_t term = 0;           // promote: the term to promote with
    uint64_t min_lsn = 0;        // promote: the most advanced promiser's LSN (any, eligible or not)
    uint64_t candidate_lsn = 0;  // promote: what the candidate reported (<= min_lsn)
    uint64_t newer_term = 0;     // superseded: the term that refused us
    std::string reason;          // failed
};

class Promotion {
public:
    Promotion(std::string proposer, uint64_t term, Membership membership,
              std::map<std::string, int> priority, PromotionParams params, Instant now);

    const PromiseRequest& request() const { return request_; }
    // The members to send request() to now: all at first, then the ones that
    // have not answered, every resend_every. Empty once decided.
    std::vector<std::string> due_sends(Instant now);
    // An answer received at `now` (own clock).
    void on_answer(const std::string& member, const PromiseAnswer& answer, Instant now);
    // Where the round stands at `now`. Once it says promote, failed or
    // superseded, done() is true and it keeps saying the same: the shell acts
    // on it once and drops the round.
    PromotionStep step(Instant now);
    // When step() may change without an answer arriving.
    Instant next_wakeup() const;
    bool done() const { return done_; }
    uint64_t term() const { return request_.term; }
    // The members whose promises the round counts (for the decision's log).
    std::vector<std::string> promisers() const;
    // The newest durability record among the promises (durability.hpp): a
    // majority promised, so it is at least as new as any the primary used.
    DurabilityRecord newest_record() const;

private:
    struct Promise {
        PromiseAnswer answer;
        Instant received;
    };
    bool decide(Instant now);

    PromiseRequest request_;
    Membership membership_;
    std::map<std::string, int> priority_;
    PromotionParams params_;
    Instant started_;
    Instant last_send_{};
    bool sent_once_ = false;
    std::map<std::string, Promise> promises_;
    std::optional<Instant> majority_at_;
    std::optional<PromotionStep> decided_;  // waiting, or failed: no eligible candidate
    std::optional<PromotionStep> final_;
    uint64_t newer_term_ = 0;
    bool done_ = false;
};

struct ProposerParams {
    Duration failover_delay = std::chrono::seconds(3);  // in charge: no writable primary this long
    Duration takeover_delay = std::chrono::seconds(8);  // stood by: before taking over
    Duration retry_after = std::chrono::seconds(1);     // between two rounds
};

// When to propose, and with which term. The shell reports what its polls see.
class Proposer {
public:
    // `own_term`: the term this proposer last proposed (0 for a new one; it
    // then learns the cluster's term from its first polls and stands by
    // until no primary was seen for takeover_delay).
    Proposer(std::string id, ProposerParams params, uint64_t own_term);

    // Any term a member reports (promised or as primary): above ours, someone
    // else is in charge and we stand by. Each newer term seen is a sign of
    // that other proposer at work: the takeover delay counts from the last.
    void observe_term(uint64_t term, Instant now);
    // Our round was refused with `term` (>= ours): another proposer holds it.
    void on_superseded(uint64_t term, Instant now);
    // One poll done at `now`: whether it saw a member that may write.
    void observe_poll(bool writable_primary_seen, Instant now);
    // Whether to start a round now.
    bool should_propose(Instant now) const;
    // The round's term (above every term seen); the proposer is in charge again.
    uint64_t begin_round(Instant now);
    // Our round promoted its candidate at `now`: it needs a while to gather
    // its grants and show up in the polls, so the failover delay starts
    // afresh (otherwise the next poll, still without a writable primary,
    // would start a round that supersedes it).
    void on_promoted(Instant now);

    bool stood_by() const { return stood_by_; }
    uint64_t highest_seen() const { return highest_seen_; }
    uint64_t own_term() const { return own_term_; }
    const std::string& id() const { return id_; }

private:
    std::string id_;
    ProposerParams params_;
    uint64_t own_term_;
    uint64_t highest_seen_;
    bool stood_by_ = false;
    std::optional<Instant> no_primary_since_;
    std::optional<Instant> last_round_;
    std::optional<Instant> stood_by_since_;
};

}  // namespace im::authority
