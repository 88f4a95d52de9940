#pragma once
// Wires the manager together on one io_context: signals, reaper,
// bootstrap, supervisor, monitor, HTTP API. main() only builds a Daemon.
#include <memory>
#include <optional>

#include "api.hpp"
#include "asio.hpp"
#include "bootstrap.hpp"
#include "config.hpp"
#include "http_server.hpp"
#include "instance_state.hpp"
#include "monitor.hpp"
#include "process.hpp"
#include "status_report.hpp"
#include "supervisor.hpp"

namespace im {

class Daemon : public ApiActions {
  public:
    Daemon(asio::io_context& io, Config cfg, std::optional<std::string> api_token);

    // Runs until shutdown; returns the process exit code.
    int run();

    // ApiActions
    awaitable<CommandResult_> restart(const nlohmann::json& body) override;
    awaitable<CommandResult_> reload(const nlohmann::json& body) override;

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
    bool shutting_down_ = false;
    bool restart_pending_ = false;
    int exit_code_ = 0;
};

}  // namespace im
