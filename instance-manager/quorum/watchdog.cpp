#include "quorum/watchdog.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "log.hpp"

namespace im::quorum {

namespace {
// The manager's own_now() clock (member_service.cpp): CLOCK_BOOTTIME.
int64_t mono_us() {
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

timespec as_timespec(int64_t us) {
    return timespec{static_cast<time_t>(us / 1000000), static_cast<long>((us % 1000000) * 1000)};
}

// Only a postgres process is ever killed: the pid may have been reused if
// postgres exited while the manager could not say so.
bool is_postgres(pid_t pid) {
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    return std::getline(comm, name) && name == "postgres";
}
}  // namespace

void stop_postgres_now(pid_t postmaster) {
    if (postmaster <= 0) return;
    ::kill(postmaster, SIGSTOP);  // no new backend from here on
    std::ifstream in("/proc/" + std::to_string(postmaster) + "/task/" +
                     std::to_string(postmaster) + "/children");
    for (pid_t child; in >> child;) {
        ::kill(-child, SIGKILL);
        ::kill(child, SIGKILL);
    }
    ::kill(-postmaster, SIGKILL);
    ::kill(postmaster, SIGKILL);
}

Result<Watchdog> Watchdog::spawn(const std::string& self_exe, Reaper& reaper) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return make_error(std::string("pipe: ") + std::strerror(errno));
    UniqueFd read_end(fds[0]), write_end(fds[1]);
    SpawnOptions opts;
    opts.argv = {self_exe, "watchdog"};
    opts.capture_output = false;  // its log lines go where the manager's go
    opts.stdin_fd = read_end.get();
    auto child = im::spawn(opts);
    if (!child) return child.error();
    // The manager never waits on it: a full pipe drops an order, and the
    // next one (every renewal) carries the whole state again.
    ::fcntl(write_end.get(), F_SETFL, O_NONBLOCK);
    reaper.watch(child->pid, [pid = child->pid](int status) {
        log::error("authority", "the watchdog exited",
                   {{"pid", pid}, {"status", describe_wait_status(status)}});
    });
    log::info("authority", "watchdog started", {{"pid", child->pid}});
    return Watchdog(child->pid, std::move(write_end));
}

void Watchdog::send(const std::string& line) {
    if (!feed_) return;
    ssize_t n = ::write(feed_.get(), line.data(), line.size());
    if (n != static_cast<ssize_t>(line.size()))
        log::warn("authority", "cannot feed the watchdog", {{"error", std::strerror(errno)}});
}

void Watchdog::arm(pid_t pid, authority::Instant deadline) {
    int64_t us = deadline.time_since_epoch().count();
    if (last_ && last_->first == pid && last_->second == us) return;
    last_ = std::make_pair(pid, us);
    send("arm " + std::to_string(pid) + " " + std::to_string(us) + "\n");
}

void Watchdog::disarm() {
    if (!last_) return;
    last_.reset();
    send("disarm\n");
}

int watchdog_main() {
    // Best effort (it needs CAP_SYS_NICE / CAP_IPC_LOCK, which a container
    // seldom has): run before anything else on the CPU, and never wait for a
    // page to come back from swap at the deadline.
    ::mlockall(MCL_CURRENT | MCL_FUTURE);
    sched_param prio{};
    prio.sched_priority = 1;
    ::sched_setscheduler(0, SCHED_FIFO, &prio);
    // Plain values (GCC 12 sees an optional<pair> here as maybe-uninitialized).
    bool armed = false;
    pid_t armed_pid = 0;
    int64_t armed_until = 0;
    std::string buf;
    bool eof = false;
    for (;;) {
        if (armed) {
            const int64_t now = mono_us();
            if (now >= armed_until) {
                const pid_t pid = armed_pid;
                armed = false;
                if (is_postgres(pid)) {
                    stop_postgres_now(pid);
                    // How long after the deadline the kill was done (bench/fencing-bound.sh).
                    log::error("watchdog",
                               "the write right ran out without renewal: postgres was killed",
                               {{"postmaster", pid}, {"after_deadline_us", mono_us() - armed_until}});
                }
                continue;
            }
        }
        if (eof) {
            if (!armed) return 0;
            // The manager is gone: the last deadline still holds.
            timespec left = as_timespec(std::max<int64_t>(armed_until - mono_us(), 0));
            ::nanosleep(&left, nullptr);
            continue;
        }
        pollfd p{0, POLLIN, 0};
        timespec wait{};
        timespec* timeout = nullptr;
        if (armed) {
            wait = as_timespec(std::max<int64_t>(armed_until - mono_us(), 0));
            timeout = &wait;
        }
        int r = ::ppoll(&p, 1, timeout, nullptr);
        if (r < 0 && errno != EINTR) return 1;
        if (r <= 0) continue;
        char chunk[512];
        ssize_t n = ::read(0, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            eof = true;
            continue;
        }
        buf.append(chunk, static_cast<size_t>(n));
        for (size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
            std::istringstream line(buf.substr(0, nl));
            buf.erase(0, nl + 1);
            std::string verb;
            line >> verb;
            if (verb == "disarm") {
                armed = false;
            } else if (verb == "arm") {
                pid_t pid = 0;
                int64_t us = 0;
                if (line >> pid >> us && pid > 0) {
                    armed = true;
                    armed_pid = pid;
                    armed_until = us;
                }
            }
        }
    }
}

}  // namespace im::quorum
