#pragma once
// /v1/status and /metrics: pure views of InstanceState (no I/O).
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "config.hpp"
#include "daemon/instance_state.hpp"
#include "probe_logic.hpp"

namespace im {

inline constexpr const char* kManagerVersion = "0.1.0";

probes::ProbeInput probe_input(const InstanceState& s);
nlohmann::json build_status(const InstanceState& s, const Config& cfg);

class Metrics {
  public:
    Metrics();
    void count_request(const std::string& route, unsigned status);
    void count_probe(const std::string& probe, bool ok);
    std::string render(const InstanceState& s, const Config& cfg);

  private:
    // Backup and archive gauges, made the first time they are set.
    void set_gauge(const std::string& name, const std::string& help, double value);
    void render_backup(const nlohmann::json& backup_view);
    std::map<std::string, prometheus::Family<prometheus::Gauge>*> lazy_;
    std::shared_ptr<prometheus::Registry> registry_;
    prometheus::Family<prometheus::Counter>& requests_;
    prometheus::Family<prometheus::Counter>& probes_;
    prometheus::Family<prometheus::Gauge>& up_;
    prometheus::Family<prometheus::Gauge>& role_;
    prometheus::Family<prometheus::Gauge>& restarts_;
    prometheus::Family<prometheus::Gauge>& ready_;
    prometheus::Family<prometheus::Gauge>& in_recovery_;
    prometheus::Family<prometheus::Gauge>& timeline_;
    prometheus::Family<prometheus::Gauge>& lsn_;
    prometheus::Family<prometheus::Gauge>& pending_restart_;
    prometheus::Family<prometheus::Gauge>& uptime_;
    prometheus::Family<prometheus::Gauge>& checks_;
    prometheus::Family<prometheus::Gauge>& check_failures_;
    prometheus::Family<prometheus::Gauge>& lag_bytes_;
    prometheus::Family<prometheus::Gauge>& replay_lag_;
    prometheus::Family<prometheus::Gauge>& streaming_;
    prometheus::Family<prometheus::Gauge>& replica_lag_;
    prometheus::Family<prometheus::Gauge>& slot_retained_;
    prometheus::Family<prometheus::Gauge>& slot_lost_;
    prometheus::Family<prometheus::Gauge>& term_;
    prometheus::Family<prometheus::Gauge>& promised_term_;
    prometheus::Family<prometheus::Gauge>& grant_remaining_;
    prometheus::Family<prometheus::Gauge>& may_write_;
    prometheus::Family<prometheus::Gauge>& write_remaining_;
    prometheus::Family<prometheus::Gauge>& grants_held_;
    prometheus::Family<prometheus::Gauge>& right_losses_;
    prometheus::Family<prometheus::Gauge>& certificate_expiry_;
    prometheus::Family<prometheus::Gauge>& secret_ok_;
};

// A UTC time as 2026-11-24T13:46:37Z.
std::string iso8601(std::chrono::system_clock::time_point t);

// The other way: bytes -> "16/B374D848" (PostgreSQL's form).
std::string lsn_text(uint64_t lsn);

}  // namespace im
