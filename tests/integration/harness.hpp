#pragma once
// A real instance-manager process with its own directory, ports and log,
// for integration tests. As root, everything runs as an unprivileged user
// (postgres refuses root), through setpriv.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "http_client.hpp"

namespace harness {

using namespace std::chrono_literals;

bool running_as_root();
// For a test case that needs root (namespaces): true when it must be
// skipped, counted so that a run whose every case was skipped exits 77,
// which CTest reports as skipped, never as passed (main.cpp).
bool skip_unless_root(const char* what);
int skipped_cases();
std::string run_user();  // the unprivileged user tests run postgres as
int free_port();
std::string manager_binary();  // the instance-manager binary the tests run
std::string pg_bin();          // directory of the PostgreSQL server binaries

// Runs a shell command (as the unprivileged user when `as_user`), returns
// exit code and combined output.
struct Shell {
    int code = -1;
    std::string out;
};
Shell sh(const std::string& command, bool as_user = false);

class Instance {
  public:
    explicit Instance(std::string name = "pg1");
    ~Instance();
    Instance(const Instance&) = delete;
    Instance& operator=(const Instance&) = delete;

    std::string root;                   // test directory (owned by the run user)
    std::string address = "127.0.0.1";  // where its postgres and API listen
    std::string netns;                  // when set, the manager runs in this network namespace
    std::string resolv_conf;            // when set, the manager sees this file as /etc/resolv.conf
    std::string pgdata;                 // root + "/data" unless changed
    std::string token_file;
    std::string name;
    int pg_port;
    int http_port;
    std::vector<std::string> extra_args;
    // KEY=VALUE entries added to the manager's environment (after setpriv's reset).
    std::vector<std::string> env;
    bool with_token = true;
    std::string smart_shutdown = "3s";  // --smart-shutdown-timeout
    bool api_tls = false;               // speak https to the manager's API
    // When set, the manager binary runs with these arguments instead of
    // `run ...` (a controller, for instance); get/post still use http_port.
    std::vector<std::string> command_override;
    im::http_client::TlsClientOptions tls_client;

    // Starts the manager in the background; as_pid1 runs it as PID 1 of a new
    // PID namespace (root only).
    void start(bool as_pid1 = false);
    // Runs the manager in the foreground and returns its exit code (for
    // start-up failures).
    int run_to_exit(std::chrono::seconds timeout = 60s);

    bool wait_ready(std::chrono::milliseconds timeout = 60s);
    bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout);
    // Waits for the manager to exit; returns its exit code or nullopt on timeout.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout = 60s);
    void signal(int sig);
    bool alive() const;
    pid_t manager_pid() const;  // the manager's PID as seen from here

    im::Result<im::http_client::HttpReply> get(const std::string& path,
                                               const std::string& method = "GET");
    im::Result<im::http_client::HttpReply> post(const std::string& path, const std::string& body,
                                                std::optional<std::string> token = std::nullopt);
    std::string token() const;
    nlohmann::json status();
    pid_t postmaster_pid();

    // psql over TCP as `user` (password from its file unless given).
    Shell psql(const std::string& sql, const std::string& user = "app",
               const std::string& db = "app", std::optional<std::string> password = std::nullopt);
    // psql over the local socket as the superuser (peer authentication).
    Shell psql_local(const std::string& sql, const std::string& db = "postgres");
    std::string app_password() const;
    // The whole log, to search: a busy instance can write a lot after the
    // line a test looks for.
    std::string log() const;
    std::string log_tail() const;  // its last lines, to print when a test fails
    std::string control_state();   // pg_controldata's "Database cluster state"

    // Makes this (not yet started) instance a replica cloned from `primary`:
    // the same API token, its replication password, its address.
    void replica_of(const Instance& primary);
    // "host=127.0.0.1 port=N": what a controller passes as primary_conninfo.
    std::string upstream() const;

  private:
    std::vector<std::string> command_line() const;
    std::string sql_argument(const std::string& sql);
    int statements_ = 0;
    pid_t pid_ = -1;  // the direct child (manager, or unshare when as PID 1)
    bool pid1_ = false;
    std::optional<int> exit_code_;
};

// A network of the test's own (root only): a namespace holding a bridge,
// one namespace per member joined to it by a veth pair, and a veth from the
// test's namespace so that the test and a controller it runs reach every
// member's address. link() cuts or restores one member's link (a partition).
class NetLab {
  public:
    explicit NetLab(int members);
    ~NetLab();
    NetLab(const NetLab&) = delete;
    NetLab& operator=(const NetLab&) = delete;
    std::string ns(int i) const;
    std::string address(int i) const;
    // The test's own address on the bridge (where a server of the test listens).
    std::string host_address() const;
    // Gives member i the address SUBNET.octet instead (a re-created pod's new IP).
    std::string readdress(int i, int octet);
    void link(int i, bool up);
    // Puts `inst` in member i's namespace: its address, the standard ports.
    void place(Instance& inst, int i) const;

  private:
    std::string tag_;
    std::string subnet_;  // "10.213.N."
    int members_;
};

// A controller for `members` (their token), listening on its http_port.
void make_controller(Instance& ctl, const std::vector<Instance*>& members,
                     const std::vector<std::string>& extra = {});
std::string api_url(const Instance& i);

// Starts `replicas` cloned from the already running `primary` (with its token
// and replication password) and waits until all are ready.
void start_replicas(const Instance& primary, const std::vector<Instance*>& replicas,
                    bool as_pid1 = false);

// The controller's GET /v1/cluster ({} when it does not answer).
nlohmann::json cluster_of(Instance& ctl);
// The controller holds `primary` (any, when empty) and every other member
// streams from it.
bool converged(Instance& ctl, const std::string& primary = "");
// The controller's primary, or "" when it has none.
std::string primary_of(Instance& ctl);
// The primary's synchronous_standby_names as the controller last saw it.
std::string sync_names(Instance& ctl);
// converged(), and the primary's setting begins with `mode` ("ANY 1").
bool converged_in(Instance& ctl, const std::string& mode, const std::string& primary = "");
// The controller's primary once it is another member than `old` (""
// when none is within `timeout`).
std::string new_primary(Instance& ctl, const std::string& old, std::chrono::milliseconds timeout);

// bench-writer in the background, recording every commit it was told of:
// "<id> <unix ms> <server port>" lines in `file`. `netns`: run it there.
struct Writer {
    std::string out;
    pid_t pid = -1;
    Writer(const std::string& conninfo, const std::string& file, long long first,
           const std::string& netns = "");
    size_t lines() const;
    struct Commit {
        long long id = 0;
        long long ms = 0;  // when the commit was acknowledged (unix ms)
    };
    // Stops it; every commit it recorded.
    std::vector<Commit> stop_commits();
    // Stops it; the ids it committed.
    std::vector<std::string> stop();
};

// The read-write multi-host connection string over `all` (as app), as a
// client of the cluster would use it.
std::string rw_conninfo(const std::vector<Instance*>& all);
// Writes a file the manager (run as the test user) reads.
void write_as_user(const std::string& path, const std::string& text);
// SHOW name on the instance, trimmed.
std::string show_setting(Instance& i, const std::string& name);
// How many of `ids` the instance's bench_log lacks (-1 when psql failed).
int missing(Instance& i, const std::vector<std::string>& ids);

// Whether the instance's status says it holds a majority's grants (a
// primary under the write authority).
bool holds_write_right(Instance& i);

// POSTs `body` to `path`, checks the status, returns the parsed answer.
nlohmann::json post_json(Instance& i, const std::string& path, const nlohmann::json& body,
                         unsigned expect);

}  // namespace harness
