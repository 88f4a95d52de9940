#include "daemon/start_gate.hpp"

#include "log.hpp"

namespace im {

std::string_view to_string(StartCause c) {
    switch (c) {
        case StartCause::first_start:
            return "first start";
        case StartCause::crash_restart:
            return "restart after a crash";
        case StartCause::restart_command:
            return "restart command";
        case StartCause::unfence:
            return "unfence";
        case StartCause::as_replica:
            return "start as a replica";
    }
    return "start";
}

std::optional<std::string> start_refusal(const StartFacts& f, StartCause cause) {
    if (f.shutting_down) return "the manager is shutting down";
    if (f.running) return "postgres is already running";
    if (f.rewind_interrupted)
        // pg_rewind cut short leaves files of two timelines: only a new clone
        // is a data directory postgres may start on.
        return "a rewind or re-clone was interrupted: the data directory must be cloned again "
               "(demote or follow with --on-rewind-failure reclone)";
    // Unfence and a rejoin as a replica are the controller's explicit word;
    // every other start leaves a fenced instance down.
    if (f.fenced && cause != StartCause::unfence && cause != StartCause::as_replica)
        return "the instance is fenced";
    // A member of the write authority is writable only as the primary of a
    // term it holds grants for: without a term (a demote cut short before
    // standby.signal, a primary from before the authority that restarted
    // after joining it) it starts only as a replica.
    if (f.member && !f.replica && !f.under_authority && cause != StartCause::as_replica)
        return "a member of the write authority without a term of its own starts only as a "
               "replica (demote or follow it)";
    return std::nullopt;
}

bool start_needs_majority(const StartFacts& f, StartCause cause) {
    // A start as a replica writes standby.signal first: it cannot accept writes.
    return cause != StartCause::as_replica && !f.replica && f.under_authority;
}

Error StartGate::refuse(int code, std::string why, StartCause cause) {
    log::warn("start-gate", "postgres is not started",
              {{"cause", to_string(cause)}, {"reason", why}});
    return make_error(std::move(why), code);
}

awaitable<Status> StartGate::open(StartCause cause, std::string reason, Prepare prepare) {
    if (auto why = start_refusal(host_.start_facts(), cause))
        co_return refuse(kStartRefused, *why, cause);
    // The first start finds the role at `starting` already.
    if (role_.current() != Role::starting && !RoleMachine::allowed(role_.current(), Role::starting))
        co_return refuse(kStartRefused,
                         "a start does not fit the role " + std::string(to_string(role_.current())),
                         cause);
    if (start_needs_majority(host_.start_facts(), cause)) {
        auto verdict = co_await host_.ask_members();
        if (verdict == StartVerdict::stand_down) {
            const std::string why = "a member promised a newer term";
            if (auto st = host_.persist_fence(why); !st)
                co_return refuse(kStartFailed, "cannot persist the fence: " + st.error().message,
                                 cause);
            (void)role_.transition(Role::fenced, why);
            co_return refuse(kStartRefused, why + ": staying fenced", cause);
        }
        if (verdict == StartVerdict::wait)
            co_return refuse(kStartWait, "too few members grant the write right", cause);
    }
    if (prepare)
        if (auto st = co_await prepare(); !st) co_return st;
    // The members were asked, files were written: the world may have moved
    // meanwhile (a shutdown began, a fence was taken).
    if (auto why = start_refusal(host_.start_facts(), cause))
        co_return refuse(kStartRefused, *why, cause);
    if (auto st = role_.transition(Role::starting, reason); !st)
        co_return refuse(kStartRefused, st.error().message, cause);
    if (auto st = host_.launch(cause); !st) {
        (void)role_.transition(Role::stopped, "postgres could not be started");
        co_return make_error(st.error().message, kStartFailed);
    }
    co_return Ok{};
}

}  // namespace im
