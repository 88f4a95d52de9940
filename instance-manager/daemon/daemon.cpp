#include "daemon/daemon.hpp"

#include <signal.h>
#include <sys/wait.h>

#include "backup/restore.hpp"
#include "bootstrap/data_dir.hpp"
#include "bootstrap/helper.hpp"
#include "bootstrap/rewind_mark.hpp"
#include "fs_util.hpp"
#include "log.hpp"

namespace im {

Daemon::Daemon(asio::io_context& io, Config cfg, std::optional<std::string> api_token,
               std::shared_ptr<asio::ssl::context> api_tls)
    : io_(io),
      cfg_(std::move(cfg)),
      signals_(io, SIGTERM, SIGINT, SIGQUIT),
      supervisor_(io.get_executor(), cfg_, reaper_, state_),
      monitor_(io.get_executor(), cfg_, state_),
      gate_(*this, state_.role),
      api_(cfg_, state_, metrics_, *this, api_token),
      http_(
          io.get_executor(),
          HttpLimits{cfg_.http_timeout, cfg_.http_max_connections, cfg_.http_max_body, 8 * 1024},
          [this](HttpRequest req, PeerInfo peer) { return api_.handle(std::move(req), peer); },
          std::move(api_tls)),
      backups_(io.get_executor(), cfg_, reaper_),
      params_(io.get_executor(), cfg_, reaper_),
      authority_(cfg_.name, quorum::GrantStore(cfg_.authority_file()),
                 std::chrono::duration_cast<authority::Duration>(cfg_.grant_ttl), cfg_.membership),
      keeper_(io.get_executor(), cfg_.name, authority_,
              authority::WriteRightParams{
                  std::chrono::duration_cast<authority::Duration>(cfg_.grant_ttl),
                  authority::kDefaultRho},
              api_token.value_or("")) {
    api_.require_client_cert(!cfg_.tls_client_ca.empty());
    keeper_.on_lost(
        [this](bool superseded, const std::string& why) { on_write_right_lost(superseded, why); });
    keeper_.on_deadline([this] { sync_watchdog(); });
    state_.authority_view = [this] { return authority_view(); };
    state_.backup_view = [this] { return backups_.view(); };
    if (params_.enabled()) state_.parameters_view = [this] { return parameters_view(); };
    signals_.add(SIGHUP);
    signals_.add(SIGCHLD);
    supervisor_.set_exit_hook(
        [this](bool planned, int status) { on_postgres_exit(planned, status); });
}

int Daemon::run() {
    log::info("manager", "starting",
              {{"name", cfg_.name},
               {"pgdata", cfg_.pgdata},
               {"version", kManagerVersion},
               {"pid", ::getpid()}});
    // Before the API answers anything: a member that answered before reading
    // what it promised could promise twice.
    if (auto st = authority_.load(quorum::own_now()); !st) {
        log::error("authority", st.error().message);
        return 1;
    }
    if (auto wd = quorum::Watchdog::spawn(self_exe(), reaper_); wd) {
        watchdog_.emplace(std::move(*wd));
    } else {
        log::error("authority", "cannot start the watchdog", {{"error", wd.error().message}});
        return 1;
    }
    if (auto st = http_.listen(cfg_.http_host, cfg_.http_port); !st) {
        log::error("manager", st.error().message);
        return 1;
    }
    std::function<void(boost::system::error_code, int)> on_sig =
        [this, &on_sig](boost::system::error_code ec, int sig) {
            if (ec) return;
            on_signal(sig);
            signals_.async_wait(on_sig);
        };
    signals_.async_wait(on_sig);
    // Children that exited before the signal handler existed are reaped now.
    reaper_.reap();
    // On every member, not only the primary: any member may be promoted, and
    // a replica's standby backup needs the primary's server already there.
    backups_.start_server();
    spawn_guarded("the main flow", main_flow());
    io_.run();
    log::info("manager", "exiting", {{"exit_code", exit_code_}});
    return exit_code_;
}

void Daemon::spawn_guarded(const char* what, awaitable<void> task) {
    asio::co_spawn(io_, std::move(task), [this, what](std::exception_ptr e) {
        if (!e) return;
        std::string why = "unknown exception";
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            why = ex.what();
        } catch (...) {
        }
        log::error("manager", std::string(what) + " failed", {{"error", why}});
        if (!shutting_down_) {
            shutdown(1, std::string(what) + " failed");
        } else {
            // Already stopping, and what failed may be the stop itself.
            exit_code_ = 1;
            io_.stop();
        }
    });
}

void Daemon::on_signal(int sig) {
    switch (sig) {
        case SIGCHLD:
            on_child_exit();
            break;
        case SIGHUP:
            reload_all();
            params_.poke();
            break;
        case SIGTERM:
        case SIGINT:
        case SIGQUIT:
            if (shutting_down_) {
                // A second request escalates: smart -> fast -> immediate.
                log::info("manager", "shutdown requested again: escalating");
                supervisor_.escalate();
            } else {
                shutdown(0, std::string("signal ") + strsignal(sig));
            }
            break;
    }
}

void Daemon::on_child_exit() { reaper_.reap(); }

void Daemon::reload_all() {
    log::info("manager", "reload requested");
    if (prepared_) {
        if (auto st = write_managed_files(cfg_, *prepared_); !st)
            log::warn("manager", "cannot rewrite managed files", {{"error", st.error().message}});
    }
    supervisor_.reload();
}

void Daemon::shutdown(int exit_code, std::string reason) {
    if (shutting_down_) return;
    shutting_down_ = true;
    exit_code_ = exit_code;
    log::info("manager", "shutting down", {{"reason", reason}});
    // Allowed from every role (role_machine.cpp).
    (void)state_.role.transition(Role::stopping, reason);
    spawn_guarded("the shutdown", finish_shutdown());
}

awaitable<void> Daemon::finish_shutdown() {
    monitor_.stop();
    params_.stop();
    if (supervisor_.running()) {
        int status = co_await supervisor_.stop(StopMode::smart);
        // A clean stop is exit 0 of the postmaster; anything harsher is
        // reported, unless the write authority stopped it (a newer primary:
        // what a deleted primary's pod is for).
        if (exit_code_ == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0) &&
            stopped_for_.empty())
            exit_code_ = 1;
    }
    keeper_.drop();
    sync_watchdog();
    (void)state_.role.transition(Role::stopped, "shutdown complete");
    // An answer in flight (a fence taken during the shutdown) reaches its caller.
    co_await http_.drain(std::chrono::seconds(2));
    io_.stop();
}

void Daemon::on_postgres_exit(bool planned, int wait_status) {
    monitor_.poke();
    sync_watchdog();
    if (planned || shutting_down_) return;
    ++state_.process.crashes;
    if (state_.restoring) {
        // Recovery to the restore's target ended without the promotion (a
        // target the archive does not reach, say: postgres's log says).
        state_.last_error = "postgres " + describe_wait_status(wait_status) +
                            " while replaying the restored backup to its target";
        log::error("restore", state_.last_error,
                   {{"hint",
                     "start again with --restore-from-backup: the same target continues, "
                     "another restores afresh"}});
        shutdown(1, "the restore did not reach its target");
        return;
    }
    state_.last_error = "postgres " + describe_wait_status(wait_status);
    if (!stopped_for_.empty()) state_.last_error = "postgres stopped: " + stopped_for_;
    stopped_for_.clear();
    (void)state_.role.transition(Role::stopped, "postgres " + describe_wait_status(wait_status));
    if (prepared_ && prepared_->persistent.fenced) {
        // Stopped by the write authority (a newer term exists): down until a rejoin.
        (void)state_.role.transition(Role::fenced, state_.last_error);
        return;
    }
    if (cfg_.restart_policy == RestartPolicy::never) {
        state_.in_control = false;
        shutdown(exit_code_of(wait_status) == 0 ? 1 : exit_code_of(wait_status) & 0xff,
                 "postgres exited and --restart-policy is never");
        return;
    }
    spawn_guarded("the restart after a crash", restart_after_backoff());
}

awaitable<void> Daemon::restart_after_backoff() {
    auto delay = supervisor_.next_backoff();
    log::info("supervisor", "restarting postgres after backoff", {{"backoff_ms", delay.count()}});
    restart_pending_ = true;
    asio::steady_timer t(io_, delay);
    co_await t.async_wait(use_awaitable);
    restart_pending_ = false;
    // A command may have started postgres meanwhile, or fenced the instance:
    // the gate knows (a refusal is final; a failed spawn or a missing
    // majority is tried again after the next backoff).
    std::string reason = "restart after crash";  // a local: see start_as_replica
    auto st = co_await gate_.open(StartCause::crash_restart, reason);
    if (st) {
        ++state_.process.restarts;
        co_return;
    }
    state_.last_error = st.error().message;
    if (st.error().http_status != kStartRefused)
        spawn_guarded("the restart after a crash", restart_after_backoff());
}

StartFacts Daemon::start_facts() const {
    StartFacts f;
    f.shutting_down = shutting_down_;
    f.running = supervisor_.running();
    f.rewind_interrupted = fs::exists(rewind_mark_path(cfg_));
    if (prepared_) {
        f.fenced = prepared_->persistent.fenced;
        f.replica = prepared_->replica;
        f.under_authority = prepared_->persistent.write_term > 0;
        f.member = authority_.membership().version != 0;
    }
    return f;
}

Status Daemon::persist_fence(const std::string& why) {
    prepared_->persistent.fenced = true;
    state_.last_error = why;
    return save_persistent();
}

Status Daemon::launch(StartCause) {
    if (auto st = clear_stale_pid_file(cfg_.pgdata); !st) return st;
    auto st = supervisor_.start();
    // A primary under the write authority starts only once it holds its
    // grants (the gate asked): the watchdog covers the new postmaster.
    sync_watchdog();
    monitor_.poke();
    return st;
}

awaitable<void> Daemon::main_flow() {
    auto prepared =
        co_await prepare_data_dir(cfg_, reaper_, [this](int pct) { state_.clone_progress = pct; });
    if (!prepared) {
        state_.last_error = prepared.error().message;
        log::error("bootstrap", prepared.error().message);
        shutdown(1, "bootstrap failed");
        co_return;
    }
    prepared_ = std::move(*prepared);
    store_ = std::make_unique<StateStore>(cfg_.state_dir() + "/state.json");
    state_.term = prepared_->persistent.term;
    state_.upstream = prepared_->persistent.primary_conninfo;
    state_.standby = prepared_->replica;
    state_.restoring = prepared_->restoring;
    if (shutting_down_) co_return;
    // The cluster's parameters before postgres first reads its configuration.
    co_await params_.apply_at_start(*this);
    spawn_guarded("the parameter watch", params_.run(*this));
    if (fs::exists(rewind_mark_path(cfg_)) && !prepared_->persistent.fenced) {
        // Cut short while rewriting the data directory: fenced until a rejoin clones it again.
        if (auto st = persist_fence("a rewind or re-clone was interrupted"); !st) {
            log::error("manager", "cannot persist the fence", {{"error", st.error().message}});
            shutdown(1, "cannot persist the fence");
            co_return;
        }
    }
    if (prepared_->persistent.fenced) {
        // Fenced survives restarts of the manager: postgres stays down until unfenced.
        (void)state_.role.transition(Role::fenced, "fenced before the manager started");
    } else {
        asio::steady_timer timer(io_);
        for (bool logged = false;;) {
            std::string reason = "first start";
            auto st = co_await gate_.open(StartCause::first_start, reason);
            if (st) break;
            if (st.error().http_status == kStartRefused)
                break;  // fenced (a newer primary), or stopping
            if (st.error().http_status != kStartWait) {
                log::error("supervisor", st.error().message);
                shutdown(1, "cannot start postgres");
                co_return;
            }
            if (!logged)
                log::info("authority", "waiting for a majority's grants before serving as primary");
            logged = true;
            timer.expires_after(std::chrono::seconds(1));
            co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored_ec_));
        }
    }
    co_await monitor_.run([this](PgSession& s) { return after_check(s); });
}

awaitable<void> Daemon::after_check(PgSession& session) {
    if (shutting_down_ || !state_.pg.accepting) co_return;
    supervisor_.note_healthy();
    Role observed = state_.pg.in_recovery ? Role::replica : Role::primary;
    Role now = state_.role.current();
    if ((now == Role::starting || now == Role::replica) && observed == Role::primary &&
        authority_.membership().version != 0 && !keeper_.holding()) {
        // Writable without the write right: promoted behind the manager's
        // back (pg_ctl promote by hand), or its right was lost while it
        // started. A member of the write authority never writes without its
        // grants: stopped at once, fenced.
        const std::string why = "postgres is writable without the write right: stopped, fenced";
        quorum::stop_postgres_now(supervisor_.pid());
        stopped_for_ = why;
        log::error("authority", why);
        if (auto st = persist_fence(why); !st)
            log::error("authority", "cannot persist the fence", {{"error", st.error().message}});
        co_return;
    }
    if (now == Role::starting) {
        // Every start of a primary re-applies roles and passwords from their files.
        state_.setup_done = false;
        (void)state_.role.transition(observed, "postgres accepts connections");
        log::info("manager", "postgres is ready",
                  {{"role", to_string(observed)}, {"version", state_.pg.version}});
    } else if (now == Role::replica && observed == Role::primary) {
        (void)state_.role.transition(Role::primary, "postgres left recovery");
    }
    state_.ever_ready = true;
    if (state_.restoring && observed == Role::primary) {
        // Promoted at the restore's target: a new timeline, this cluster's
        // first primary. Its recovery settings go first (a replica cloned
        // from it would stop at the same target and promote itself).
        auto st = backup::scrub_restore_settings(cfg_.pgdata);
        if (st) st = backup::set_restore_stage(cfg_, "done");
        if (!st) {
            // The next start finds it promoted and notes it then.
            log::error("restore", "cannot note the finished restore",
                       {{"error", st.error().message}});
            shutdown(1, "cannot note the finished restore");
            co_return;
        }
        state_.restoring = prepared_->restoring = false;
        log::info("restore", "the restore reached its target and promoted",
                  {{"timeline", state_.pg.timeline}, {"lsn", state_.pg.current_lsn}});
    }
    if (observed == Role::primary && keeper_.holding()) advance_durability();
    if (observed == Role::primary && prepared_ && !prepared_->persistent.members.empty())
        co_await sync_slots(session);
    if (!state_.setup_done && observed == Role::primary && prepared_) {
        auto st = co_await setup_roles(reaper_, cfg_, monitor_.local_conninfo());
        if (st) {
            state_.setup_done = true;
            log::info("bootstrap", "roles and database are in place",
                      {{"psql", "psql 'host=<address> port=" + std::to_string(cfg_.pg_port) +
                                    " user=app dbname=app' (password in " + cfg_.app_password_file +
                                    ")"}});
        } else {
            state_.last_error = st.error().message;
            log::error("bootstrap", st.error().message);
        }
    }
    if (observed != Role::primary) backups_.not_primary();
    backups_.after_check(observed == Role::primary && state_.setup_done, state_.pg.timeline,
                         state_.pg.archiver);
}

}  // namespace im
