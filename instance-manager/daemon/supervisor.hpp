#pragma once
// Runs the postmaster as a child: start, planned stops with escalation
// (smart -> fast -> immediate), restarts with backoff after a crash, and
// its stderr re-emitted as JSON log lines.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>

#include "asio.hpp"
#include "config.hpp"
#include "event.hpp"
#include "daemon/instance_state.hpp"
#include "process.hpp"

namespace im {

enum class StopMode { smart, fast, immediate };

class Supervisor {
  public:
    // on_exit is told about every postmaster exit: whether it was planned, and its status.
    using ExitHook = std::function<void(bool planned, int wait_status)>;

    Supervisor(asio::any_io_executor ex, const Config& cfg, Reaper& reaper, InstanceState& state);

    Status start();
    bool running() const { return state_.process.running; }
    pid_t pid() const { return state_.process.pid; }

    // Stops postgres and waits until it is gone, escalating after the
    // configured timeouts. A planned stop is not a crash and is not restarted.
    // A second stop while one runs (a fence during a smart shutdown) sends its
    // own, harsher signal at once; both return when postgres is gone.
    awaitable<int> stop(StopMode first = StopMode::smart);
    // Asks a running stop to move on to the next, harsher mode now.
    void escalate();

    void reload();  // SIGHUP to the postmaster

    void set_exit_hook(ExitHook hook) { exit_hook_ = std::move(hook); }
    // Backoff before the next restart after a crash (1 s doubling to the max).
    std::chrono::milliseconds next_backoff();
    void note_healthy();  // postgres has been serving: reset backoff once stable

  private:
    void on_exit(int wait_status);
    void signal(int sig);

    asio::any_io_executor ex_;
    const Config& cfg_;
    Reaper& reaper_;
    InstanceState& state_;
    ExitHook exit_hook_;
    bool stop_planned_ = false;
    std::shared_ptr<Event> exited_;
    std::shared_ptr<Event> escalate_;
    int last_status_ = 0;
    std::chrono::milliseconds backoff_{0};
    std::chrono::steady_clock::time_point started_mono_{};
};

}  // namespace im
