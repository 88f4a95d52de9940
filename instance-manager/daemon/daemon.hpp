#pragma once
// Wires the manager together on one io_context: signals, reaper,
// bootstrap, supervisor, monitor, HTTP API. main() only builds a Daemon.
#include <memory>
#include <optional>
#include <set>

#include "api/api.hpp"
#include "api/http_server.hpp"
#include "api/status_report.hpp"
#include "asio.hpp"
#include "backup/backup_jobs.hpp"
#include "bootstrap/bootstrap.hpp"
#include "commands/command_slot.hpp"
#include "config.hpp"
#include "daemon/instance_state.hpp"
#include "daemon/monitor.hpp"
#include "daemon/start_gate.hpp"
#include "daemon/state_store.hpp"
#include "daemon/supervisor.hpp"
#include "parameters/parameter_watch.hpp"
#include "process.hpp"
#include "quorum/member_service.hpp"
#include "quorum/watchdog.hpp"
#include "quorum/write_keeper.hpp"

namespace im {

class Daemon : public ApiActions, private StartHost, private parameters::WatchHost {
  public:
    // `api_tls`: the API's TLS context (nullptr: plain HTTP).
    Daemon(asio::io_context& io, Config cfg, std::optional<std::string> api_token,
           std::shared_ptr<asio::ssl::context> api_tls = nullptr);

    // Runs until shutdown; returns the process exit code.
    int run();

    // ApiActions: checks the term, then runs the command (role_commands.cpp).
    awaitable<CommandAnswer> run(const std::string& command, const nlohmann::json& body) override;
    // ApiActions: the member's promise/grant/release (write_authority.cpp).
    CommandAnswer authority(const std::string& what, const nlohmann::json& body) override;
    // ApiActions: what the backup repository holds.
    awaitable<CommandAnswer> backups() override { return backups_.list(); }

  private:
    void on_signal(int sig);
    void shutdown(int exit_code, std::string reason);
    void reload_all();
    void on_child_exit();
    void on_postgres_exit(bool planned, int wait_status);
    // Spawns a coroutine whose failure ends the manager (exit 1) with a log
    // line: a safety loop never dies silently.
    void spawn_guarded(const char* what, awaitable<void> task);

    // StartHost: what the start gate asks of the daemon (start_gate.hpp).
    StartFacts start_facts() const override;
    awaitable<StartVerdict> ask_members() override;
    Status persist_fence(const std::string& why) override;
    Status launch(StartCause cause) override;

    // WatchHost: what the parameter watch asks (cluster_parameters.cpp).
    Status write_hba(const std::string& extra_rules) override;
    bool postgres_running() const override { return supervisor_.running(); }
    awaitable<Result<std::string>> hba_errors() override;
    awaitable<Status> reload() override;
    // Status "parameters": the version in force, and what waits for a restart.
    nlohmann::json parameters_view() const;

    awaitable<void> main_flow();
    awaitable<void> after_check(PgSession& session);
    awaitable<void> restart_after_backoff();
    awaitable<void> finish_shutdown();

    // Commands (role_commands.cpp). Each returns the answer's JSON body or an
    // Error whose code is the HTTP status.
    awaitable<CommandAnswer> do_restart(const nlohmann::json& body);
    awaitable<CommandAnswer> do_reload();
    awaitable<CommandAnswer> do_promote(const nlohmann::json& body);
    awaitable<CommandAnswer> do_demote(const nlohmann::json& body);
    awaitable<CommandAnswer> do_follow(const nlohmann::json& body);
    awaitable<CommandAnswer> do_fence();
    awaitable<CommandAnswer> do_unfence();
    awaitable<CommandAnswer> do_replication(const nlohmann::json& body);
    // A backup from this instance (the primary), in the background.
    awaitable<CommandAnswer> do_backup(const nlohmann::json& body);
    // Whether this replica's WAL receiver streams from host:port now (by address).
    awaitable<Status> streams_from(const std::string& host, int port);
    // The write authority on this member (write_authority.cpp).
    awaitable<CommandAnswer> do_members(const nlohmann::json& body);
    // Holds the write right for `term` (a fresh WriteRight unless `term` is
    // held already) and waits for a majority's grants. A fresh right's
    // durability record continues the newest known (ours as a member, or
    // `inherited` from the promotion) and adds the configured set: a
    // majority stores it before the grants count (durability.hpp).
    awaitable<quorum::GatherVerdict> take_write_right(
        uint64_t term, const authority::DurabilityRecord& inherited = {});
    // The synchronous set postgres is configured with (nullopt: asynchronous).
    std::optional<authority::QuorumSet> configured_set() const;
    // On the primary, each check: once `number` of the configured set flushed
    // past switch_since_, the record drops the older sets.
    void advance_durability();
    // Changes synchronous_standby_names in the order the record asks: the
    // new set recorded (with the old), then the setting, then the switch LSN.
    awaitable<Status> switch_synchronous(const std::optional<SyncSpec>& spec, PgSession& session);
    // After a reload: until postgres shows `wanted` and (`checkpoint`) the
    // checkpointer took it.
    awaitable<Status> reload_barrier(PgSession& session, const std::string& wanted,
                                     bool checkpoint = true);
    // Until every walsender handled a standby reply sent after now (at most
    // 1 s): what it released under the old setting lies before the switch LSN.
    awaitable<Status> walsender_barrier(PgSession& session);
    // The right is gone while held (write_keeper.hpp): postgres is stopped at
    // once if it runs writable; superseded, the fence is persisted too.
    void on_write_right_lost(bool superseded, const std::string& why);
    // The watchdog follows what postgres is: armed with the deadline while it
    // runs writable under the write right, disarmed otherwise.
    void sync_watchdog();
    // Stops holding the write right once postgres no longer writes: the
    // members are told to forget our grant; write_term is cleared by the caller.
    awaitable<void> give_up_write_right();
    nlohmann::json authority_view() const;
    // A stopped former primary (a primary's data, postgres not running):
    // where its own branch began, {"timeline", "lsn"}: what it holds of the
    // history it branched from, a position a synchronous failover can count
    // (it was no standby of its own branch). Null otherwise.
    nlohmann::json former_primary_fork() const;
    // The TLS context for https member URLs, made when the first one appears.
    void ensure_peer_tls();
    // Checks that `upstream` answers replication with our system identifier.
    awaitable<Status> check_upstream(const std::string& upstream);
    // pg_rewind against `upstream` (the instance must be cleanly stopped);
    // `dry_run`: everything but the writing (pg_rewind --dry-run).
    awaitable<Status> rewind_from(const std::string& upstream, bool dry_run);
    // A failed rewind: fenced, and with --on-rewind-failure reclone a fresh
    // base backup from `upstream` and a start as its replica. `out` is the
    // answer's body so far.
    awaitable<CommandAnswer> after_failed_rewind(const Error& why, const std::string& upstream,
                                                 nlohmann::json out);
    awaitable<Status> reclone_from(const std::string& upstream);
    // Starts postgres as a replica of `upstream` (standby.signal, settings)
    // through the start gate.
    awaitable<Status> start_as_replica(const std::string& upstream);
    // pg_rewind under the rewind mark (rewind_mark.hpp), cleared once it is
    // whole; or the error that sends a rejoin to a re-clone straight away: a
    // rewind cut short earlier (its mark) is never rewound again.
    awaitable<Status> rewind_for_rejoin(const std::string& upstream);
    awaitable<void> ensure_own_slot(const std::string& upstream);
    // Whether this streaming replica can switch to `upstream` by a reload:
    // the upstream continues our timeline past everything we received.
    awaitable<bool> can_follow_by_reload(const std::string& upstream);
    // Switches upstream by a reload; false when the WAL receiver did not
    // start streaming from it in time.
    awaitable<bool> follow_by_reload(const std::string& upstream);
    // One value of pg_controldata ("Latest checkpoint location"); empty when unreadable.
    awaitable<std::string> control_field(const std::string& label);
    Status save_persistent();
    // Keeps a physical slot on this primary for every member but itself.
    awaitable<void> sync_slots(PgSession& session);

    asio::io_context& io_;
    Config cfg_;
    InstanceState state_;
    Reaper reaper_;
    asio::signal_set signals_;
    Metrics metrics_;
    Supervisor supervisor_;
    Monitor monitor_;
    StartGate gate_;
    Api api_;
    HttpServer http_;
    std::optional<Prepared> prepared_;
    std::unique_ptr<StateStore> store_;
    bool shutting_down_ = false;
    bool restart_pending_ = false;
    CommandSlot commands_;                     // one role command (or self-fence) at a time
    std::set<std::string> lost_slots_logged_;  // invalidated slots already reported
    boost::system::error_code ignored_ec_;
    std::shared_ptr<asio::ssl::context> peer_tls_;  // for https member URLs
    backup::BackupJobs backups_;
    parameters::ParameterWatch params_;
    quorum::MemberService authority_;  // this member's promises and grants
    quorum::WriteKeeper keeper_;       // the write right, while primary
    std::optional<quorum::Watchdog> watchdog_;
    std::string stopped_for_;  // why the write authority killed postgres (for last_error)
    // Where the last change of synchronous set took effect (durability.hpp):
    // 0: at the next check (postgres started with it); kSwitchPending: not
    // yet (a promotion or replication command is under way).
    static constexpr uint64_t kSwitchPending = ~uint64_t{0};
    uint64_t switch_since_ = 0;
    int exit_code_ = 0;
};

}  // namespace im
