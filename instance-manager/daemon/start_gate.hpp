#pragma once
// The one door postgres is started through. First start, restart after a
// crash, the restart command, unfence and a start as a replica (after a
// demote, a follow with a rewind, a re-clone) all ask the gate, and the gate
// alone applies the rules: never while shutting down or already running,
// never on a directory a rewind left half done, never while fenced unless
// the start is the controller's explicit unfence or rejoin, and a writable
// primary under the write authority only once a majority granted its term. Callers
// do not re-check these rules; they ask the gate.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "asio.hpp"
#include "daemon/role_machine.hpp"
#include "result.hpp"

namespace im {

// The members' verdict on this instance serving as primary.
enum class StartVerdict {
    start,       // a majority granted the write right for our term
    wait,        // too few members answer yet
    stand_down,  // a member promised a newer term: stay fenced
};

enum class StartCause { first_start, crash_restart, restart_command, unfence, as_replica };
std::string_view to_string(StartCause c);

// What the gate needs to know about the instance, read afresh at each step.
struct StartFacts {
    bool shutting_down = false;
    bool running = false;             // a postmaster is running already
    bool fenced = false;              // persisted fence
    bool rewind_interrupted = false;  // a rewind or re-clone was cut short (mark beside pgdata)
    bool replica = false;             // standby.signal: postgres starts read-only
    bool under_authority = false;     // primary of a term under the write authority (write_term)
    bool member = false;              // belongs to a membership of the write authority
};

// Why postgres must not start now for `cause`; nothing when it may (pure).
std::optional<std::string> start_refusal(const StartFacts& f, StartCause cause);
// Whether the start must first hold a majority's grants: a start that may
// make this instance a writable primary under the write authority (pure).
bool start_needs_majority(const StartFacts& f, StartCause cause);

// Error codes of StartGate::open (HTTP statuses, as commands answer them).
constexpr int kStartRefused = 409;  // the rules say no; nothing changed
constexpr int kStartWait = 503;     // too few members answer yet: try again later
constexpr int kStartFailed = 500;   // the postmaster could not be spawned

// What the gate asks of the daemon: narrow, so that a test can stand in.
class StartHost {
  public:
    virtual ~StartHost() = default;
    virtual StartFacts start_facts() const = 0;
    // Gathers the write right for our term: the members' verdict.
    virtual awaitable<StartVerdict> ask_members() = 0;
    // A newer primary exists: persist the fence (before anything else happens).
    virtual Status persist_fence(const std::string& why) = 0;
    // Spawns the postmaster (stale pid file cleared first).
    virtual Status launch(StartCause cause) = 0;
};

class StartGate {
  public:
    using Prepare = std::function<awaitable<Status>()>;
    StartGate(StartHost& host, RoleMachine& role) : host_(host), role_(role) {}

    // Starts postgres for `cause` if the rules allow it. `prepare` runs after
    // the checks and before the postmaster is spawned (files a start as a
    // replica needs, the fence an unfence lifts); the rules are checked again
    // after it. Every refusal changes nothing the caller did not prepare.
    awaitable<Status> open(StartCause cause, std::string reason, Prepare prepare = nullptr);

  private:
    Error refuse(int code, std::string why, StartCause cause);

    StartHost& host_;
    RoleMachine& role_;
};

}  // namespace im
