#include "daemon/role_machine.hpp"

#include "log.hpp"

namespace im {

std::string_view to_string(Role r) {
    switch (r) {
        case Role::starting:
            return "starting";
        case Role::primary:
            return "primary";
        case Role::replica:
            return "replica";
        case Role::stopping:
            return "stopping";
        case Role::stopped:
            return "stopped";
        case Role::promoting:
            return "promoting";
        case Role::demoting:
            return "demoting";
        case Role::fencing:
            return "fencing";
        case Role::fenced:
            return "fenced";
    }
    return "unknown";
}

bool RoleMachine::allowed(Role from, Role to) {
    using R = Role;
    // A fence must be takeable whatever the instance is doing (it is the
    // safety action: during a crash-restart backoff, or a shutdown held up by
    // sessions), and a shutdown from anywhere.
    if (to == R::stopping) return from != R::stopping;
    if (to == R::fencing) return from != R::fencing && from != R::fenced;
    switch (from) {
        case R::starting:
            return to == R::primary || to == R::replica || to == R::stopped || to == R::fenced;
        case R::primary:
            // A primary never becomes a replica by itself: only through demoting.
            return to == R::stopped || to == R::demoting || to == R::starting;
        case R::replica:
            return to == R::primary || to == R::promoting || to == R::stopped || to == R::starting;
        case R::stopping:
            return to == R::stopped;
        case R::stopped:
            return to == R::starting || to == R::fenced;
        case R::promoting:
            return to == R::primary || to == R::replica || to == R::stopped;
        case R::demoting:
            return to == R::replica || to == R::starting || to == R::fenced || to == R::stopped;
        case R::fencing:
            return to == R::fenced || to == R::stopped;
        case R::fenced:
            // demoting: a fenced primary (e.g. self-fenced on a lapsed lease) rejoins as a
            // replica; stopped: the manager shuts down.
            return to == R::starting || to == R::demoting || to == R::stopped;
    }
    return false;
}

Status RoleMachine::transition(Role to, std::string reason) {
    if (to == role_) return Ok{};
    if (!allowed(role_, to)) {
        std::string msg = "illegal role change " + std::string(to_string(role_)) + " -> " +
                          std::string(to_string(to));
        log::error("role", msg, {{"reason", reason}});
        return make_error(msg);
    }
    log::info("role", "role changed",
              {{"from", to_string(role_)}, {"to", to_string(to)}, {"reason", reason}});
    history_.push_back({role_, to, std::move(reason)});
    if (history_.size() > 20) history_.erase(history_.begin());
    role_ = to;
    return Ok{};
}

}  // namespace im
