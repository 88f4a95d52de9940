#include "probe_logic.hpp"

namespace im::probes {

ProbeAnswer liveness(const ProbeInput& in) {
    if (!in.in_control) return {false, "the manager has given up supervising postgres"};
    return {true, "ok"};
}

ProbeAnswer readiness(const ProbeInput& in) {
    if (in.fenced) return {false, "instance is fenced"};
    if (in.stopping) return {false, "instance is shutting down"};
    if (!in.postmaster_running) return {false, "postgres is not running"};
    if (!in.accepting) {
        if (in.starting_up) return {false, "postgres is starting up or recovering"};
        return {false, "postgres does not accept connections"};
    }
    if (!in.setup_done) return {false, "bootstrap of roles and database is not finished"};
    return {true, "ok"};
}

ProbeAnswer startup(const ProbeInput& in) {
    if (in.ever_ready) return {true, "ok"};
    if (in.postmaster_running && (in.accepting || in.starting_up))
        return {true, "postgres is up or recovering"};
    if (in.fenced) return {true, "instance is fenced"};
    return {false, "postgres has not started yet"};
}

}  // namespace im::probes
