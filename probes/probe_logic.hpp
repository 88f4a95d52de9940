#pragma once
// Liveness, readiness and startup as pure functions of the last observed
// state: the HTTP handlers call these and never touch postgres themselves.
#include <optional>
#include <string>

namespace im::probes {

struct ProbeInput {
    bool in_control = true;  // the manager is supervising (not giving up)
    bool postmaster_running = false;
    bool accepting = false;    // the last check connected and queried
    bool starting_up = false;  // alive, in startup or recovery
    bool ever_ready = false;   // accepted connections since the manager started
    bool setup_done = false;   // roles/database created (primary bootstrap)
    bool fenced = false;
    bool stopping = false;
    bool in_recovery = false;
    bool streaming = false;  // a replica's WAL receiver streams
    unsigned long long lag_bytes = 0;
};

struct ProbeAnswer {
    bool ok = false;
    std::string reason;
};

// 200 while the manager's loop runs and is in control; a restarting postgres is
// not a reason to kill the container.
ProbeAnswer liveness(const ProbeInput& in);
// 200 when postgres accepts connections and the instance should get traffic.
ProbeAnswer readiness(const ProbeInput& in);
// 200 once postgres has been up, or while it is alive and busy recovering.
ProbeAnswer startup(const ProbeInput& in);
// For load balancers: a writable primary.
ProbeAnswer primary(const ProbeInput& in);
// A streaming replica, optionally no more than max_lag bytes behind.
ProbeAnswer replica(const ProbeInput& in, std::optional<unsigned long long> max_lag);
// Readiness with a lag limit for replicas (primaries have no lag).
ProbeAnswer readiness(const ProbeInput& in, std::optional<unsigned long long> max_lag);

// "16MB", "1kB", "1048576" -> bytes (units 1024-based, as PostgreSQL's).
std::optional<unsigned long long> parse_size(const std::string& text);

}  // namespace im::probes
