#pragma once
// Wires the manager together on one io_context: signals, reaper,
// bootstrap, supervisor, monitor, HTTP API. main() only builds a Daemon.
#include <memory>
#include <optional>

#include "api/api.hpp"
#include "asio.hpp"
#include "bootstrap/bootstrap.hpp"
#include "config.hpp"
#include "api/http_server.hpp"
#include "daemon/instance_state.hpp"
#include "lease/lease_rules.hpp"
#include "daemon/monitor.hpp"
#include "process.hpp"
#include "daemon/state_store.hpp"
#include "api/status_report.hpp"
#include "daemon/supervisor.hpp"

namespace im {

class Daemon : public ApiActions {
  public:
    // `api_tls`: the API's TLS context (nullptr: plain HTTP).
    Daemon(asio::io_context& io, Config cfg, std::optional<std::string> api_token,
           std::shared_ptr<asio::ssl::context> api_tls = nullptr);

    // Runs until shutdown; returns the process exit code.
    int run();

    // ApiActions: checks the term, then runs the command (role_commands.cpp).
    awaitable<CommandResult_> run(const std::string& command, const nlohmann::json& body) override;

  private:
    void on_signal(int sig);
    void shutdown(int exit_code, std::string reason);
    void reload_all();
    void on_child_exit();
    void on_postgres_exit(bool planned, int wait_status);

    awaitable<void> main_flow();
    awaitable<void> after_check(PgSession& session);
    awaitable<void> restart_after_backoff();
    awaitable<void> finish_shutdown();

    // Commands (role_commands.cpp). Each returns the answer's JSON body or an
    // Error whose code is the HTTP status.
    awaitable<CommandResult_> do_restart();
    awaitable<CommandResult_> do_reload();
    awaitable<CommandResult_> do_promote(const nlohmann::json& body);
    awaitable<CommandResult_> do_demote(const nlohmann::json& body);
    awaitable<CommandResult_> do_follow(const nlohmann::json& body);
    awaitable<CommandResult_> do_fence();
    awaitable<CommandResult_> do_unfence();
    awaitable<CommandResult_> do_replication(const nlohmann::json& body);
    // The primary lease (lease.cpp).
    awaitable<CommandResult_> do_lease(const nlohmann::json& body);
    awaitable<void> lease_watchdog();
    // Asks every other lease member's manager for `path`.
    awaitable<std::vector<PeerView>> ask_peers(const std::string& path,
                                               std::chrono::milliseconds timeout);
    size_t lease_member_count() const;
    // Before a primary under leases starts postgres: false when it must stay fenced.
    awaitable<bool> primary_may_start();
    // The members' answers and the verdict on serving as primary (lease_rules.hpp).
    awaitable<StartVerdict> start_gate(std::vector<PeerView>& peers);
    void arm_lease();
    // Checks that `upstream` answers replication with our system identifier.
    awaitable<Status> check_upstream(const std::string& upstream);
    // pg_rewind against `upstream` (the instance must be cleanly stopped).
    awaitable<Status> rewind_from(const std::string& upstream);
    // A failed rewind: fenced, and with --on-rewind-failure reclone a fresh
    // base backup from `upstream` and a start as its replica. `out` is the
    // answer's body so far.
    awaitable<CommandResult_> after_failed_rewind(const Error& why, const std::string& upstream,
                                                  nlohmann::json out);
    awaitable<Status> reclone_from(const std::string& upstream);
    // Starts postgres as a replica of `upstream` (standby.signal, settings).
    Status start_as_replica(const std::string& upstream);
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
    Api api_;
    HttpServer http_;
    std::optional<Prepared> prepared_;
    std::unique_ptr<StateStore> store_;
    bool shutting_down_ = false;
    bool restart_pending_ = false;
    bool command_running_ = false;  // a role command (or a self-fence) is under way
    bool lease_lapse_logged_ = false;
    boost::system::error_code ignored_ec_;
    std::shared_ptr<asio::ssl::context> peer_tls_;  // for https member URLs
    int exit_code_ = 0;
};

}  // namespace im
