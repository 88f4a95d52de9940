#pragma once
// The command lines of `instance-manager controller`, `status` and
// `switchover`: parsed with CLI11, every bad value a message and exit code 2.
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "config.hpp"
#include "controller/backup_schedule.hpp"
#include "http_client.hpp"
#include "result.hpp"

namespace im {

// `--kubernetes`: the members are the pods matching a label selector, and
// the controller keeps their `role` label true.
struct KubeSettings {
    bool enabled = false;
    std::string selector;    // e.g. app=demo
    std::string ns;          // namespace
    int member_port = 8000;  // the managers' API port on each pod
    std::string member_scheme = "http";
    // When set, members are addressed as POD.DOMAIN (a headless Service's
    // DNS names, stable across pod re-creation) instead of by pod IP.
    std::string member_domain;
    std::string api_url;     // https://host:port of the API server
    std::string token_file;  // service-account token (re-read: it rotates)
    std::string ca_file;     // the API server's CA
};

struct ControllerConfig {
    std::vector<std::pair<std::string, std::string>> members;  // name, manager API URL
    std::string api_token_file;
    std::string listen_host = "127.0.0.1";
    int listen_port = 8010;
    std::chrono::milliseconds interval{250};         // one poll round
    std::chrono::milliseconds request_timeout{500};  // a poll or a promise request
    // No writable primary seen this long: a promotion round begins (its
    // promises then wait out the old primary's grants: see authority/).
    std::chrono::milliseconds failover_delay{1000};
    // A controller that learned of a newer one stands by; with no writable
    // primary this long, it takes over with a higher term.
    std::chrono::milliseconds takeover_delay{8000};
    // The members whose grants make up the write right (sorted): the
    // --member names, or on Kubernetes the declared set (--membership), so
    // that deleting pods never shrinks a majority.
    std::vector<std::string> membership;
    // Durability (--durability): asynchronous (synchronous 0), or commits
    // wait for `synchronous` of the other members, as a quorum ("any") or in
    // priority order ("first"). Preferred (--data-durability preferred):
    // fewer when fewer are streaming, asynchronous when none; required: the
    // commits wait.
    unsigned synchronous = 0;
    std::string sync_method = "any";
    bool preferred = false;
    std::map<std::string, int> priority;             // failover preference; < 0: never
    http_client::TlsClientOptions tls;                    // for https member URLs
    std::string log_level = "info";
    KubeSettings kube;
    // --backup-schedule: backups the controller asks the primary for.
    BackupSchedule backup_schedule;
};

Result<ControllerConfig> parse_controller_args(const std::vector<std::string>& args,
                                               ParseOutcome* outcome);

// `status` and `switchover`: where to ask, and how.
struct ClientArgs {
    std::string controller;                                    // URL of the controller's API
    std::vector<std::pair<std::string, std::string>> members;  // or the members directly
    std::string to;                                            // switchover/failover target
    std::string backup_type = "full";                          // backup
    bool force = false, accept_data_loss = false;              // failover
    std::string restart_member;                                // restart --member
    bool all = false;                                          // restart --all
    std::string api_token_file;
    bool json = false;
    std::chrono::milliseconds timeout{60'000};
    http_client::TlsClientOptions tls;
};
Result<ClientArgs> parse_client_args(const std::string& command,
                                     const std::vector<std::string>& args, ParseOutcome* outcome);

}  // namespace im
