#pragma once
// The write authority's last line: a tiny child process that stops postgres
// when the primary's grants run out and nobody renewed them, whatever the
// manager's loop is doing (blocked, starved of CPU, SIGSTOPped). The manager
// feeds it "postmaster pid + deadline" whenever the deadline moves, and
// "disarm" when postgres no longer runs writable; the child sleeps on its
// own CLOCK_BOOTTIME (the clock of the manager's own_now(): the instant needs
// no conversion) and, at the deadline, kills postgres as stop_postgres_now
// does. If the manager dies, the child still enforces the last deadline,
// then exits. It asks for SCHED_FIFO and locked memory (best effort: a
// container without CAP_SYS_NICE runs it at normal priority, and CPU
// throttling of the pod's cgroup delays it and the backends alike).
//
// Stopping postgres "now" (decided): SIGSTOP to the postmaster (it forks no
// new backend), SIGKILL to each of its children's sessions (every backend
// calls setsid) and to its own group, then to it. No backend can
// acknowledge a commit after that; committed WAL is on disk and the next
// start runs crash recovery. Bounded by the kernel, not by postgres (a fast
// shutdown waits for sessions and a checkpoint, which may take many seconds).
#include <sys/types.h>

#include <optional>

#include "authority/clock_bounds.hpp"
#include "process.hpp"
#include "result.hpp"

namespace im::quorum {

// Kills a postmaster and every process it started, at once (see above).
void stop_postgres_now(pid_t postmaster);

class Watchdog {
  public:
    // Starts the child (this binary, "watchdog" subcommand), fed on its stdin.
    static Result<Watchdog> spawn(const std::string& self_exe, Reaper& reaper);
    Watchdog(Watchdog&&) = default;
    Watchdog& operator=(Watchdog&&) = default;

    // Postgres (postmaster `pid`) may write until `deadline` (own monotonic clock).
    void arm(pid_t pid, authority::Instant deadline);
    void disarm();
    pid_t pid() const { return pid_; }

  private:
    Watchdog(pid_t pid, UniqueFd feed) : pid_(pid), feed_(std::move(feed)) {}
    void send(const std::string& line);
    pid_t pid_ = -1;
    UniqueFd feed_;
    std::optional<std::pair<pid_t, int64_t>> last_;  // what it was last told
};

// The child: reads its orders on stdin until EOF. Returns the exit code.
int watchdog_main();

}  // namespace im::quorum
