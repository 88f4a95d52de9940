#pragma once
// The pgBackRest work a manager does in the background, never on the loop's
// critical path: the stanza on the primary (stanza-create, then check), the
// repository's contents (info, refreshed every few minutes and after each
// backup), backups asked for over the API, and the archiver's health as the
// monitor reads it. Each runs as a child process; one backup at a time.
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "api/api.hpp"
#include "asio.hpp"
#include "backup/pgbackrest.hpp"
#include "config.hpp"
#include "process.hpp"

namespace im::backup {

class BackupJobs {
  public:
    BackupJobs(asio::any_io_executor ex, const Config& cfg, Reaper& reaper);

    // After each check that found postgres serving: `primary` makes sure the
    // stanza exists and checks archiving (again after each promotion).
    void after_check(bool primary, uint32_t timeline, const nlohmann::json& archiver);
    // A demotion or a stop: the next promotion checks the stanza again.
    void not_primary();
    // Runs pgBackRest's TLS server (cfg.backup_server()) until the manager
    // ends, started again when it exits.
    void start_server();
    // Starts a backup from this instance (of this primary, or with
    // `req.primary` a standby backup of this replica); 409 while one runs.
    CommandAnswer start(const BackupRequest& req);
    // What the repository holds, read now.
    awaitable<CommandAnswer> list();
    // For /v1/status (no secrets: pgBackRest's options are not shown).
    nlohmann::json view() const;

  private:
    void spawn(const char* what, awaitable<void> task);
    awaitable<void> prepare_stanza();
    awaitable<void> run_backup(BackupRequest req);
    awaitable<void> server_loop(std::vector<std::string> clients);
    awaitable<void> refresh_info();
    // The parent timeline's segments this primary holds (fork_segments).
    awaitable<void> push_fork(uint32_t timeline);
    // Runs pgbackrest; its output's last lines when it fails.
    awaitable<Result<std::string>> run(std::vector<std::string> args, const char* what,
                                       std::chrono::milliseconds deadline = {});

    asio::any_io_executor ex_;
    const Config& cfg_;
    Reaper& reaper_;
    bool stanza_ready_ = false;
    bool stanza_busy_ = false;
    std::chrono::steady_clock::time_point stanza_next_try_{};
    nlohmann::json check_;  // {"ok", "at", "error"}
    std::optional<RepositoryInfo> info_;
    std::string info_error_;
    std::string info_at_;
    bool info_busy_ = false;
    std::chrono::steady_clock::time_point info_next_{};
    struct Running {
        std::string type;
        std::string started_at;
        std::string source;  // "primary" or "standby"
    };
    nlohmann::json server_;  // the TLS server's state, for status
    std::optional<Running> running_;
    nlohmann::json last_result_;
    nlohmann::json archiver_;
    bool failing_ = false;
    uint32_t fork_pushed_ = 0;  // the timeline whose parent's segments were pushed
    bool fork_busy_ = false;
    std::chrono::steady_clock::time_point fork_next_try_{};
    bool refresh_again_ = false;  // a backup ended while a read of the repository ran
    bool listing_ = false;        // GET /v1/backups runs pgbackrest info
    nlohmann::json fork_push_;
};

}  // namespace im::backup
