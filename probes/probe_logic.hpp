#pragma once
// Liveness, readiness and startup as pure functions of the last observed
// state: the HTTP handlers call these and never touch postgres themselves.
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

}  // namespace im::probes
