#pragma once
// The controller's /metrics: what it sees of the cluster and what it
// decided, for alerts about the cluster as a whole (no primary, two
// primaries, a failover blocked, a rolling restart that does not end).
// Gauges are set from the latest poll at each scrape; decisions are counted
// as they are taken.
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <vector>

#include "controller/cluster_rules.hpp"

namespace im {

struct ControllerSnapshot {
    uint64_t term = 0;
    std::string primary;  // the member held as primary ("" none)
    bool standing_by = false;
    bool failover_blocked = false;
    bool rollout_active = false;
    double primary_lost_seconds = 0;  // 0 while a writable primary is seen
};

class ControllerMetrics {
  public:
    ControllerMetrics();
    // One decision taken (failover, switchover-done, ...), now.
    void count_decision(const std::string& action);
    std::string render(const std::vector<MemberView>& members, const ControllerSnapshot& s);

  private:
    std::shared_ptr<prometheus::Registry> registry_;
    prometheus::Family<prometheus::Counter>& decisions_;
    prometheus::Family<prometheus::Gauge>& last_decision_;
    prometheus::Family<prometheus::Gauge>& term_;
    prometheus::Family<prometheus::Gauge>& primary_;
    prometheus::Family<prometheus::Gauge>& writable_primaries_;
    prometheus::Family<prometheus::Gauge>& members_;
    prometheus::Family<prometheus::Gauge>& reachable_;
    prometheus::Family<prometheus::Gauge>& member_role_;
    prometheus::Family<prometheus::Gauge>& member_lag_;
    prometheus::Family<prometheus::Gauge>& standing_by_;
    prometheus::Family<prometheus::Gauge>& failover_blocked_;
    prometheus::Family<prometheus::Gauge>& rollout_active_;
    prometheus::Family<prometheus::Gauge>& primary_lost_;
};

}  // namespace im
