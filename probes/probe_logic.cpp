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

ProbeAnswer primary(const ProbeInput& in) {
    auto ready = readiness(in);
    if (!ready.ok) return ready;
    if (in.in_recovery) return {false, "instance is a replica"};
    return {true, "ok"};
}

ProbeAnswer replica(const ProbeInput& in, std::optional<unsigned long long> max_lag) {
    auto ready = readiness(in);
    if (!ready.ok) return ready;
    if (!in.in_recovery) return {false, "instance is a primary"};
    if (!in.streaming) return {false, "replica is not streaming"};
    if (max_lag && in.lag_bytes > *max_lag)
        return {false, "replica is " + std::to_string(in.lag_bytes) + " bytes behind (limit " +
                           std::to_string(*max_lag) + ")"};
    return {true, "ok"};
}

ProbeAnswer readiness(const ProbeInput& in, std::optional<unsigned long long> max_lag) {
    auto ready = readiness(in);
    if (!ready.ok || !in.in_recovery || !max_lag) return ready;
    return replica(in, max_lag);
}

std::optional<unsigned long long> parse_size(const std::string& text) {
    size_t i = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == 0 || i > 15) return std::nullopt;
    unsigned long long n = std::stoull(text.substr(0, i));
    std::string unit = text.substr(i);
    if (unit.empty() || unit == "B") return n;
    if (unit == "kB" || unit == "KB") return n << 10;
    if (unit == "MB") return n << 20;
    if (unit == "GB") return n << 30;
    if (unit == "TB") return n << 40;
    return std::nullopt;
}

}  // namespace im::probes
