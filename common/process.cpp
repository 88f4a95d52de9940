#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "environment.hpp"
#include "event.hpp"
#include "log.hpp"

namespace im {

Result<SpawnedChild> spawn(const SpawnOptions& opts) {
    if (opts.argv.empty()) return make_error("spawn: empty argv");

    // Everything the child needs is prepared before fork: after fork only
    // async-signal-safe calls are allowed.
    std::vector<char*> argv;
    for (auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);

    // The caller's PG* variables, HOME and the rest stay behind (see environment.hpp).
    std::vector<std::string> env_storage = child_environment(opts.env);
    std::vector<char*> envp;
    for (auto& e : env_storage) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    int pipefd[2] = {-1, -1};
    if (opts.capture_output && ::pipe2(pipefd, O_CLOEXEC) != 0)
        return make_error(std::string("pipe: ") + std::strerror(errno));
    UniqueFd read_end(pipefd[0]), write_end(pipefd[1]);

    // The highest descriptor to close if close_range is missing, computed
    // here: sysconf is not async-signal-safe.
    struct rlimit nofile {};
    int max_fd = ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
                         nofile.rlim_cur < (1u << 20)
                     ? static_cast<int>(nofile.rlim_cur)
                     : (1 << 20);

    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return make_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        if (opts.own_process_group) ::setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
        if (opts.parent_death_signal != 0) {
            ::prctl(PR_SET_PDEATHSIG, opts.parent_death_signal);
            if (::getppid() != parent) ::_exit(127);  // the parent is already gone
        }
        if (opts.stdin_fd >= 0) {
            ::dup2(opts.stdin_fd, 0);
        } else {
            int devnull = ::open("/dev/null", O_RDONLY);
            if (devnull >= 0) ::dup2(devnull, 0);
        }
        if (opts.capture_output) {
            ::dup2(pipefd[1], 1);
            ::dup2(pipefd[1], 2);
        }
        // Only 0, 1 and 2 cross exec: postgres and every backend would
        // otherwise hold the API's listening socket, its clients and our pipes.
        if (::syscall(SYS_close_range, 3u, ~0u, 0u) != 0)
            for (int fd = 3; fd < max_fd; ++fd) ::close(fd);
        ::execve(argv[0], argv.data(), envp.data());
        ::_exit(127);
    }
    SpawnedChild child;
    child.pid = pid;
    if (opts.capture_output) child.output = std::move(read_end);
    return child;
}

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    return "ended with status " + std::to_string(status);
}

int exit_code_of(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

void Reaper::watch(pid_t pid, Callback cb) { watched_[pid] = std::move(cb); }

void Reaper::reap() {
    for (;;) {
        int status = 0;
        pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid <= 0) break;  // 0: children left but none done; -1: none left
        auto it = watched_.find(pid);
        if (it == watched_.end()) {
            ++orphans_reaped_;
            log::debug("reaper", "reaped a child",
                       {{"pid", pid}, {"status", describe_wait_status(status)}});
            continue;
        }
        auto cb = std::move(it->second);
        watched_.erase(it);
        cb(status);
    }
}

awaitable<void> read_lines(asio::posix::stream_descriptor& pipe,
                           std::function<void(std::string_view)> on_line) {
    std::string pending;
    char buf[4096];
    for (;;) {
        boost::system::error_code ec;
        size_t n = co_await pipe.async_read_some(asio::buffer(buf),
                                                 asio::redirect_error(use_awaitable, ec));
        if (n > 0) {
            pending.append(buf, n);
            size_t start = 0;
            // '\r' ends a line too: progress meters (pg_basebackup -P) redraw with it.
            for (size_t nl; (nl = pending.find_first_of("\n\r", start)) != std::string::npos;
                 start = nl + 1) {
                bool crlf_tail =
                    nl == start && pending[nl] == '\n' && nl > 0 && pending[nl - 1] == '\r';
                if (!crlf_tail) on_line(std::string_view(pending).substr(start, nl - start));
            }
            pending.erase(0, start);
            // A line without end that grows without bound is cut, never kept whole.
            if (pending.size() > 64 * 1024) {
                on_line(pending);
                pending.clear();
            }
        }
        if (ec) break;
    }
    if (!pending.empty()) on_line(pending);
}

bool CommandResult::success() const {
    return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
}

std::string describe_duration(std::chrono::milliseconds d) {
    auto ms = d.count();
    if (ms % 60'000 == 0 && ms >= 60'000) return std::to_string(ms / 60'000) + " min";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
    return std::to_string(ms) + " ms";
}

namespace {
// Watches a run_command child's deadlines; the child's group is killed when
// one passes. Shared with the watchdog coroutine, which ends once `finished`.
struct Deadlines {
    pid_t pid;
    bool group;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point last_output = started;
    std::chrono::milliseconds total, stall;
    asio::steady_timer timer;
    std::shared_ptr<asio::posix::stream_descriptor> pipe;
    bool reaped = false;
    bool finished = false;
    std::string expired;  // the error, once a deadline passed

    Deadlines(asio::any_io_executor ex, pid_t p, const SpawnOptions& o,
              std::shared_ptr<asio::posix::stream_descriptor> out)
        : pid(p),
          group(o.own_process_group),
          total(o.deadline),
          stall(o.stall_deadline),
          timer(ex),
          pipe(std::move(out)) {}
};

awaitable<void> watch_deadlines(std::shared_ptr<Deadlines> d, std::string program) {
    using clock = std::chrono::steady_clock;
    while (!d->finished) {
        auto now = clock::now();
        auto next = clock::time_point::max();
        if (d->total.count() > 0) {
            if (now >= d->started + d->total) {
                d->expired = program + " timed out after " + describe_duration(d->total);
                break;
            }
            next = std::min(next, d->started + d->total);
        }
        if (d->stall.count() > 0) {
            if (now >= d->last_output + d->stall) {
                d->expired = program + " made no progress for " + describe_duration(d->stall);
                break;
            }
            next = std::min(next, d->last_output + d->stall);
        }
        d->timer.expires_at(next);
        boost::system::error_code ec;
        co_await d->timer.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    if (d->finished) co_return;
    // The whole group: a shell's background job, pg_basebackup's WAL
    // streamer. Reaping it stays with the reaper. A reaped child without a
    // group of its own is not signalled: its PID may be another's now.
    if (d->group || !d->reaped) ::kill(d->group ? -d->pid : d->pid, SIGKILL);
    // A descendant that left the group may hold the pipe open: stop reading.
    boost::system::error_code ec;
    d->pipe->cancel(ec);
}
}  // namespace

awaitable<Result<CommandResult>> run_command(Reaper& reaper, SpawnOptions opts,
                                             std::string component,
                                             std::function<bool(std::string_view)> on_line) {
    auto ex = co_await asio::this_coro::executor;
    opts.capture_output = true;
    auto child = spawn(opts);
    if (!child) co_return child.error();

    auto done = std::make_shared<Event>(ex);
    auto result = std::make_shared<CommandResult>();
    auto pipe = std::make_shared<asio::posix::stream_descriptor>(ex, child->output.release());
    auto deadlines = std::make_shared<Deadlines>(ex, child->pid, opts, pipe);
    reaper.watch(child->pid, [done, result, deadlines](int status) {
        result->wait_status = status;
        deadlines->reaped = true;
        done->set();
    });
    log::info(component, "running " + opts.argv[0], {{"pid", child->pid}});

    if (opts.deadline.count() > 0 || opts.stall_deadline.count() > 0)
        asio::co_spawn(ex, watch_deadlines(deadlines, opts.argv[0]), asio::detached);
    co_await read_lines(*pipe, [&](std::string_view line) {
        deadlines->last_output = std::chrono::steady_clock::now();
        if (on_line && on_line(line)) return;
        result->output.append(line).push_back('\n');
        log::info(component, line);
    });
    co_await done->wait();
    deadlines->finished = true;
    deadlines->timer.cancel();
    if (!deadlines->expired.empty()) {
        log::warn(component, deadlines->expired, {{"pid", child->pid}});
        co_return make_error(deadlines->expired);
    }
    if (!result->success())
        log::warn(component, opts.argv[0] + " " + describe_wait_status(result->wait_status));
    co_return *result;
}

}  // namespace im
