#include "lease/lease_rules.hpp"

namespace im {

StartVerdict primary_start_verdict(uint64_t our_term, const std::vector<PeerView>& peers,
                                   size_t members) {
    size_t reachable = 1;  // ourselves
    for (const auto& p : peers) {
        if (!p.reachable) continue;
        if (p.term > our_term || p.role == "primary") return StartVerdict::stand_down;
        ++reachable;
    }
    return reachable >= majority_of(members) ? StartVerdict::start : StartVerdict::wait;
}

}  // namespace im
