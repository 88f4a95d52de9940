#pragma once
// What the proposer, the primary and the members say to each other. Plain
// values: the shells carry them over HTTP (the daemon) or a simulated network
// (tests/sim). Durations only, never instants (clock_bounds.hpp).
#include <cstdint>
#include <optional>
#include <string>

#include "authority/clock_bounds.hpp"
#include "authority/durability.hpp"

namespace im::authority {

// Step 1 of a promotion: "promise not to grant any term below `term`".
struct PromiseRequest {
    uint64_t term = 0;
    std::string proposer;  // the proposing controller's id
    uint64_t membership_version = 1;
};

struct PromiseAnswer {
    bool ok = false;
    // ok: the term now promised. Refused: the member's promised term, so a
    // superseded proposer learns the newer one (0 when refused for another
    // reason, such as a different membership version).
    uint64_t promised_term = 0;
    // How long the member's grants to older terms may still run, on ITS clock.
    Duration grant_remaining{0};
    // Filled in by the shell (from postgres): the promotion picks the most
    // advanced promiser. The hook for synchronous-mode durability.
    uint64_t received_lsn = 0;
    // No grant of this member can still be in use: it never granted, or its
    // holder released the grant (after its postgres stopped), and no older
    // grant ended within quiet_after. Then the proposer need not wait the
    // fencing bound for it (a clean switchover).
    bool quiet = false;
    // The newest durability record this member stored (durability.hpp).
    DurabilityRecord durability;
};

// The primary of `term` asking for (or renewing) a member's grant.
struct GrantRequest {
    std::string holder;
    uint64_t term = 0;
    Duration ttl{0};
    uint64_t membership_version = 1;
    uint64_t seq = 0;  // echoed: the primary matches the answer to its send time
    // The holder's durability record: kept by the member with the grant.
    std::optional<DurabilityRecord> durability;
};

struct GrantAnswer {
    bool ok = false;
    Duration granted{0};  // ok: for how long, on the member's clock (may be clamped)
    uint64_t promised_term = 0;  // the member's promised term (refused: why)
    uint64_t term = 0;  // echoed: the term the answer is about
    uint64_t seq = 0;
    // ok: the version of the holder's durability record the member now
    // holds for this term (0: none), and whether it is the very record the
    // request carried. Only a match confirms it: after a restart the holder
    // may have rebuilt a version number the members hold with other sets.
    uint64_t durability_version = 0;
    bool durability_match = false;
};

}  // namespace im::authority
