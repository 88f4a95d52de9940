#pragma once
// Child processes: spawning with the PID-1 hygiene we need (own process
// group, clean signal state, parent-death signal), reaping every child, and
// running a command to completion from the event loop.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "asio.hpp"
#include "fd.hpp"
#include "result.hpp"

namespace im {

struct SpawnOptions {
    std::vector<std::string> argv;
    // KEY=VALUE entries beside the few inherited ones (child_environment).
    std::vector<std::string> env;
    bool own_process_group = true;
    int parent_death_signal = 0;  // e.g. SIGQUIT for the postmaster; 0: none
    bool capture_output = true;   // stdout+stderr to a pipe; otherwise inherited
    int stdin_fd = -1;            // becomes the child's stdin; -1: /dev/null
    // run_command only: SIGKILL to the child's process group (the child
    // alone without one) when `deadline` has passed since the start, or
    // `stall_deadline` since its last line of output (no progress); 0: none.
    std::chrono::milliseconds deadline{0};
    std::chrono::milliseconds stall_deadline{0};
};

struct SpawnedChild {
    pid_t pid = -1;
    UniqueFd output;  // read end of stdout+stderr, when captured
};

Result<SpawnedChild> spawn(const SpawnOptions& opts);

// Describes a wait status: "exited with code 1", "killed by signal 9".
std::string describe_wait_status(int status);
// 0..255 for an exit, 128+N for a signal (as shells and tini report).
int exit_code_of(int status);

// Reaps every child (PID 1 duty) and hands the status of watched ones to
// their callbacks. Call reap() on every SIGCHLD.
class Reaper {
  public:
    using Callback = std::function<void(int wait_status)>;
    void watch(pid_t pid, Callback cb);
    void reap();
    size_t orphans_reaped() const { return orphans_reaped_; }

  private:
    std::map<pid_t, Callback> watched_;
    size_t orphans_reaped_ = 0;
};

// Reads lines from a pipe until EOF and passes each to on_line.
awaitable<void> read_lines(asio::posix::stream_descriptor& pipe,
                           std::function<void(std::string_view)> on_line);

struct CommandResult {
    int wait_status = 0;
    std::string output;
    bool success() const;
};

// Runs a command to completion on the loop; its output lines are logged
// under `component` and kept in the result, except those `on_line` takes
// (returns true for). The reaper must be fed SIGCHLD by the caller's loop.
// A passed deadline is an error "<program> timed out after N s" (or "made no
// progress for N s"), returned once the child is reaped.
awaitable<Result<CommandResult>> run_command(
    Reaper& reaper, SpawnOptions opts, std::string component,
    std::function<bool(std::string_view)> on_line = {});

// "200 ms", "10 s", "5 min": a deadline as its error messages show it.
std::string describe_duration(std::chrono::milliseconds d);

}  // namespace im
