#pragma once
// Keeps the cluster's parameters (--pg-parameters-file) and extra
// client-authentication rules (--pg-hba-file) in force on this member. Both
// files are read at start-up and every two seconds (and on SIGHUP); a
// changed version is checked whole, by this manager (parameter_file.hpp,
// hba_rules.hpp) and by the server (`postgres -C` for the parameters,
// pg_hba_file_rules for the rules), and only then written and reloaded. A
// version that fails any check changes nothing: the last good one stays in
// force, and the reason is in the log and in status.
//
// The applied parameters live in the data directory, included first by the
// manager's own settings file (which therefore always wins); the applied
// rules beside them, rendered into pg_hba.conf at every write.
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "asio.hpp"
#include "config.hpp"
#include "event.hpp"
#include "parameters/parameter_file.hpp"
#include "process.hpp"

namespace im::parameters {

inline constexpr const char* kAppliedHbaName = "instance-manager-hba.conf";

// What the watch asks of the daemon.
class WatchHost {
  public:
    virtual ~WatchHost() = default;
    // Rewrites the managed files (pg_hba.conf among them) with these rules.
    virtual Status write_hba(const std::string& extra_rules) = 0;
    virtual bool postgres_running() const = 0;
    // The server's reading of pg_hba.conf as it is on disk: its errors, "" none.
    virtual awaitable<Result<std::string>> hba_errors() = 0;
    virtual awaitable<Status> reload() = 0;
};

class ParameterWatch {
  public:
    ParameterWatch(asio::any_io_executor ex, const Config& cfg, Reaper& reaper);
    bool enabled() const { return !cfg_.pg_parameters_file.empty() || !cfg_.pg_hba_file.empty(); }

    // Once the data directory exists, before postgres first starts: the last
    // applied version is read back, the files checked and, when good, applied.
    // Without either flag, what an earlier start applied is removed.
    awaitable<void> apply_at_start(WatchHost& host);
    // Watches the files until stop().
    awaitable<void> run(WatchHost& host);
    void poke() { wake_->set(); }
    void stop() {
        stopped_ = true;
        wake_->set();
    }

    // For status: {"version", "applied_at", "parameters", "error", "rejected_version"}.
    nlohmann::json view() const;
    // The applied parameters (the file's values, for the pending-restart report).
    const std::vector<Parameter>& applied() const { return applied_; }
    // Whether a version applied since start-up set `name` (a name taken out
    // of the file goes back to its default: that may need a restart too).
    bool ever_applied(const std::string& name) const { return ever_applied_.count(name) > 0; }
    // When the applied version was last written and reloaded.
    std::chrono::steady_clock::time_point applied_steady() const { return applied_steady_; }

  private:
    awaitable<void> check(WatchHost& host, bool at_start);
    void reject(const std::string& version, const std::string& why);
    awaitable<Status> server_check(const std::vector<Parameter>& params);

    asio::any_io_executor ex_;
    const Config& cfg_;
    Reaper& reaper_;
    std::shared_ptr<Event> wake_;
    bool stopped_ = false;
    std::string seen_;  // the files' contents last looked at
    std::vector<Parameter> applied_;
    std::set<std::string> ever_applied_;
    std::chrono::steady_clock::time_point applied_steady_{};
    std::string applied_conf_;   // rendered parameters in force
    std::string applied_rules_;  // rendered rules in force
    std::string version_;
    std::string applied_at_;
    std::string error_;
    std::string rejected_version_;
};

// A short digest naming a version: the same files give the same version on
// every member.
std::string version_of(const std::string& conf, const std::string& rules);

}  // namespace im::parameters
