#include "daemon/supervisor.hpp"

#include "backup/pgbackrest.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <string>

#include "log.hpp"

namespace im {

namespace {
log::Level level_of_pg_line(std::string_view line) {
    for (auto [tag, lvl] : {std::pair{"PANIC:", log::Level::error},
                            {"FATAL:", log::Level::error},
                            {"ERROR:", log::Level::error},
                            {"WARNING:", log::Level::warn}})
        if (line.find(tag) != std::string_view::npos) return lvl;
    return log::Level::info;
}

// SIGKILL to the postmaster, its process group, and every child's group.
// Each child of a postmaster calls setsid() (so that the postmaster can
// signal a backend with whatever it runs): a backend is not in the
// postmaster's group, and is found only as its child, while it still is.
void kill_postgres_tree(pid_t postmaster) {
    std::ifstream in("/proc/" + std::to_string(postmaster) + "/task/" +
                     std::to_string(postmaster) + "/children");
    for (pid_t child; in >> child;) ::kill(-child, SIGKILL);
    ::kill(-postmaster, SIGKILL);
}
}  // namespace

Supervisor::Supervisor(asio::any_io_executor ex, const Config& cfg, Reaper& reaper,
                       InstanceState& state)
    : ex_(std::move(ex)), cfg_(cfg), reaper_(reaper), state_(state) {}

Status Supervisor::start() {
    if (running()) return make_error("postgres is already running");
    SpawnOptions opts;
    opts.argv = {cfg_.pg_bin + "/postgres", "-D", cfg_.pgdata};
    // If the manager dies, postgres must not live on unsupervised: SIGQUIT
    // is postgres's immediate shutdown, which also stops its backends.
    opts.parent_death_signal = SIGQUIT;
    opts.env = {"PGDATA=" + cfg_.pgdata};
    // archive_command and restore_command run pgbackrest with the manager's options.
    if (cfg_.backups())
        for (auto& e : backup::environment(cfg_)) opts.env.push_back(e);
    auto child = spawn(opts);
    if (!child) return child.error();

    stop_planned_ = false;
    exited_ = std::make_shared<Event>(ex_);
    escalate_ = std::make_shared<Event>(ex_);
    state_.process.pid = child->pid;
    state_.process.running = true;
    state_.process.started_at = std::chrono::system_clock::now();
    started_mono_ = std::chrono::steady_clock::now();
    log::info("supervisor", "postgres started", {{"pid", child->pid}});

    reaper_.watch(child->pid, [this](int status) { on_exit(status); });
    auto pipe = std::make_shared<asio::posix::stream_descriptor>(ex_, child->output.release());
    pid_t pid = child->pid;
    asio::co_spawn(
        ex_,
        [pipe, pid]() -> awaitable<void> {
            co_await read_lines(*pipe, [pid](std::string_view line) {
                log::write(level_of_pg_line(line), "postgres", line, {{"postmaster", pid}});
            });
        },
        asio::detached);
    return Ok{};
}

void Supervisor::on_exit(int wait_status) {
    pid_t pid = state_.process.pid;
    state_.process.running = false;
    state_.process.pid = -1;
    state_.process.last_exit = describe_wait_status(wait_status);
    last_status_ = wait_status;
    bool planned = stop_planned_;
    // What is left of the postmaster's own process group goes (a helper it
    // ran there). Its backends each run in a session of their own (setsid),
    // so this does not reach them: they notice the postmaster's death and
    // exit by themselves, and the next postmaster refuses to start while one
    // still holds the shared memory (the restart is then tried again after
    // its backoff).
    if (!planned) ::kill(-pid, SIGKILL);
    log::write(planned ? log::Level::info : log::Level::error, "supervisor",
               planned ? "postgres stopped" : "postgres exited unexpectedly",
               {{"pid", pid}, {"status", state_.process.last_exit}});
    if (exited_) exited_->set();
    if (exit_hook_) exit_hook_(planned, wait_status);
}

void Supervisor::signal(int sig) {
    if (running()) ::kill(state_.process.pid, sig);
}

void Supervisor::reload() {
    if (!running()) return;
    log::info("supervisor", "reloading postgres configuration");
    signal(SIGHUP);
}

void Supervisor::escalate() {
    if (escalate_) escalate_->set();
}

awaitable<int> Supervisor::stop(StopMode first) {
    if (!running()) co_return last_status_;
    stop_planned_ = true;
    auto exited = exited_;
    struct Step {
        StopMode mode;
        int sig;
        const char* name;
        std::chrono::milliseconds timeout;
    };
    const Step steps[] = {{StopMode::smart, SIGTERM, "smart", cfg_.smart_shutdown_timeout},
                          {StopMode::fast, SIGINT, "fast", cfg_.fast_shutdown_timeout},
                          {StopMode::immediate, SIGQUIT, "immediate", std::chrono::seconds(10)}};
    for (const auto& step : steps) {
        if (step.mode < first) continue;
        if (exited->is_set()) break;
        log::info("supervisor", std::string("stopping postgres: ") + step.name + " shutdown",
                  {{"timeout_ms", step.timeout.count()}});
        signal(step.sig);
        auto escalate = std::make_shared<Event>(ex_);
        escalate_ = escalate;
        // Wait for the exit, the timeout, or an escalation request (second SIGTERM).
        asio::co_spawn(
            ex_,
            [exited, escalate]() -> awaitable<void> {
                co_await exited->wait();
                escalate->set();
            },
            asio::detached);
        co_await escalate->wait(step.timeout);
    }
    if (!exited->is_set()) {
        log::error("supervisor", "postgres ignored immediate shutdown; killing it");
        // With its backends: stuck beside a stuck postmaster they would
        // otherwise live on and hold its shared memory, and the next
        // postmaster would refuse to start.
        if (running()) kill_postgres_tree(state_.process.pid);
        co_await exited->wait();
    }
    co_return last_status_;
}

std::chrono::milliseconds Supervisor::next_backoff() {
    backoff_ = backoff_.count() == 0 ? cfg_.restart_backoff_min
                                     : std::min(backoff_ * 2, cfg_.restart_backoff_max);
    return backoff_;
}

void Supervisor::note_healthy() {
    if (backoff_.count() != 0 &&
        std::chrono::steady_clock::now() - started_mono_ > cfg_.restart_backoff_max)
        backoff_ = std::chrono::milliseconds(0);
}

}  // namespace im
