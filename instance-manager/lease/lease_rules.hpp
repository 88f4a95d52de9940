#pragma once
// The rules of the primary lease, kept pure for tests: how many members make
// a majority, and whether a primary that starts under leases may serve.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace im {

// More than half of `members` (the primary itself counts).
inline size_t majority_of(size_t members) { return members / 2 + 1; }

// What another member said about itself (from its /v1/status).
struct PeerView {
    std::string name;
    bool reachable = false;
    std::string role;
    uint64_t term = 0;
};

enum class StartVerdict {
    start,       // a majority answers and nobody is ahead of us
    wait,        // too few members answer yet
    stand_down,  // a member is primary or has seen a newer term: stay fenced
};

// A primary whose cluster runs under leases (re)starting: it serves only
// when it is not behind the cluster, so an old primary returning from a
// partition or a crash never comes back writable beside a new one.
StartVerdict primary_start_verdict(uint64_t our_term, const std::vector<PeerView>& peers,
                                   size_t members);

}  // namespace im
