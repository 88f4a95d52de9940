#pragma once
// The thin controller: one per cluster, no durable state beyond the term
// (learned back from the members). It polls every member's status,
// re-points replicas, and makes primaries through the write authority
// (authority/): a promotion round gets a majority of the members to promise
// a new term, waits out their grants to older terms, then promotes the most
// advanced promiser, which gathers its own grants. It fails over when no
// writable primary is seen, switches over on request, and brings a primary
// from before the write authority under it. The decisions are pure
// functions (cluster_rules.hpp, authority/); this class carries them out.
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "api/api.hpp"
#include "api/http_server.hpp"
#include "asio.hpp"
#include "authority/promotion.hpp"
#include "controller/backup_schedule.hpp"
#include "controller/cluster_rules.hpp"
#include "controller/controller_config.hpp"
#include "controller/controller_metrics.hpp"
#include "controller/kubernetes/kube_api.hpp"
#include "controller/role_labels.hpp"
#include "controller/rollout.hpp"

namespace im {

class Controller {
  public:
    Controller(asio::io_context& io, ControllerConfig cfg, std::string token);
    ~Controller();
    int run();

  private:
    awaitable<void> control_loop();
    awaitable<void> poll();
    awaitable<void> converge();
    awaitable<void> failover(std::optional<size_t> old_primary);
    // A primary without the write right (it bootstrapped the cluster) takes it.
    awaitable<void> adopt(const MemberView& primary);
    // One promotion round for `term` (authority/promotion.hpp): the step it
    // ended with, and who promised.
    struct RoundEnd {
        authority::PromotionStep step;
        std::vector<std::string> promisers;
        authority::DurabilityRecord record;  // the newest among the promises
    };
    awaitable<RoundEnd> promotion_round(uint64_t term, std::map<std::string, int> priority);
    // Starts a round's term (the Proposer's: above every term seen).
    uint64_t next_term();
    // Every member at -1 but `only` (at its configured priority): the round
    // may promote nobody else.
    std::map<std::string, int> only_candidate(const std::string& only) const;
    // The promote command for `candidate`: its synchronous standbys from the
    // first commit, and the record the round found (its sets stay until the
    // new primary's switch completes).
    nlohmann::json promote_body(uint64_t term, const std::string& candidate,
                                const authority::DurabilityRecord& record) const;
    // The synchronous setting for `primary` (null: asynchronous). Preferred
    // durability counts the standbys that stream from it (`promoting`: the
    // running replicas, which will).
    nlohmann::json wanted_sync(const std::string& primary, bool promoting) const;
    std::string durability_mode() const {
        return cfg_.synchronous == 0 ? "async"
                                     : cfg_.sync_method + " " + std::to_string(cfg_.synchronous);
    }
    // Synchronous failover (authority/durability.hpp): LSNs read now, after
    // the round waited out the old primary's grants. The candidate and the
    // LSN it must hold, or why none may be promoted.
    awaitable<authority::SyncChoice> synchronous_choice(
        const authority::DurabilityRecord& record, std::chrono::steady_clock::time_point waited,
        uint64_t term);
    awaitable<Result<nlohmann::json>> switchover(const std::string& to);
    // POST /v1/failover {"to", "accept_data_loss"}: an operator promotes `to`
    // although no failover happens by itself (the durability rule forbids
    // it, or a member must not be waited for). Without accept_data_loss it
    // only says what may be lost: the WAL between `to` and the most advanced
    // position known (the lost primary's last seen, any member's now).
    awaitable<Result<nlohmann::json>> forced_failover(const std::string& to, bool accept);

    // Kubernetes mode: the members are the selected pods (listed, then
    // watched), and each pod's role label follows what its member reports.
    awaitable<void> pod_watch_loop();
    // --backup-schedule: asks the primary for the backup that is due.
    awaitable<void> backup_loop();
    // POST /v1/backup and GET /v1/backups, answered by the primary.
    awaitable<HttpResponse> backup_request(const HttpRequest& req);
    // The member that takes backups (the ready primary), or nullptr.
    const MemberView* backup_member() const;
    // Asks the member backup_source chooses to take a `type` backup; its name.
    awaitable<Result<std::string>> start_backup(const std::string& type, const std::string& why);
    // The rolling restart (controller_rollout.cpp): one step at a time, each
    // carried out beside the control loop (which goes on polling, and fails
    // over if a primary is lost meanwhile).
    void rollout_step();
    awaitable<void> rollout_act(rollout::Step step);
    rollout::Input rollout_input() const;
    // POST /v1/restart {"member"} or {"all": true}: an operator's restart,
    // carried out by the rollout (replicas, then a switchover).
    awaitable<HttpResponse> restart_request(const HttpRequest& req);
    nlohmann::json rollout_view() const;
    // Kubernetes: reads each owning StatefulSet's update revision.
    awaitable<void> revision_loop();
    // A primary restarted in place by the rollout is waited for, not failed over.
    std::optional<std::string> rollout_holdoff() const;
    awaitable<void> label_loop();
    awaitable<bool> set_role_label(const LabelChange& change);
    void pods_changed();
    awaitable<void> pause(std::chrono::milliseconds d);

    // POSTs a command to a member; the answer's JSON, or an error with the
    // HTTP status (0 when unreachable) as code.
    awaitable<Result<nlohmann::json>> command(const MemberView& m, const std::string& name,
                                              nlohmann::json body,
                                              std::chrono::milliseconds timeout);
    // A command unless the same one to the same member failed a moment ago.
    awaitable<bool> command_once(const MemberView& m, const std::string& name,
                                 const nlohmann::json& body, const std::string& reason);
    void decide(const std::string& action, const std::string& member, const std::string& reason,
                nlohmann::json extra = nlohmann::json::object());
    void decide_now_and_then(const std::string& action, const std::string& member,
                             const std::string& reason);
    // Why a failover must wait although no ready primary is seen: (member, reason).
    std::optional<std::pair<std::string, std::string>> failover_holdoff() const;
    nlohmann::json member_names() const;
    nlohmann::json member_urls() const;
    nlohmann::json cluster() const;
    awaitable<HttpResponse> handle(HttpRequest req, PeerInfo peer);

    asio::io_context& io_;
    ControllerConfig cfg_;
    std::string token_;
    std::shared_ptr<asio::ssl::context> tls_;
    asio::signal_set signals_;
    HttpServer http_;

    std::vector<MemberView> views_;
    uint64_t term_ = 0;
    bool term_learned_ = false;
    bool superseded_ = false;  // a newer controller's term was seen: stand by
    std::string id_;           // this controller as a proposer
    authority::Membership membership_;
    std::optional<authority::Proposer> proposer_;  // once the term is learned
    std::string primary_;                          // the member the controller holds as primary
    std::string failover_blocked_;                 // why the last failover could not promote anyone
    uint64_t last_primary_lsn_ = 0;  // the primary's pg_current_wal_lsn when last seen
    std::chrono::steady_clock::time_point poll_sent_{};  // when the polls behind views_ left
    // Members seen (or made) primary under the write authority: a lost
    // primary never seen so could be a primary from before it, still writing.
    std::set<std::string> authorized_;
    std::optional<std::chrono::steady_clock::time_point> primary_lost_since_;
    bool busy_ = false;  // a failover or switchover is under way
    std::map<std::string, std::chrono::steady_clock::time_point> cooldown_;
    std::deque<nlohmann::json> decisions_;
    ControllerMetrics metrics_;  // GET /metrics
    bool stopping_ = false;
    int exit_code_ = 0;          // 1 once a loop died
    bool adopted_once_ = false;  // has seen (or made) a primary since it started
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

    struct RolloutState {
        std::map<std::string, std::string> requested;    // member -> start time when asked
        std::map<std::string, std::string> in_flight;    // member -> start time before
        std::map<std::string, std::string> out_of_date;  // Kubernetes: member -> why
        bool acting = false;                             // a step is being carried out
        // Readings from polls sent before this are older than the last step.
        std::chrono::steady_clock::time_point acted_at{};
        std::chrono::steady_clock::time_point retry_at{};  // after a failed step
        std::optional<std::chrono::steady_clock::time_point> primary_restart_sent;
        bool await_primary_lsn = false;    // the primary restarted in place: read its position
        uint64_t min_replay_lsn = 0;       // rollout::Input::min_replay_lsn
        std::string min_replay_primary;    // the primary it is a position of
        uint32_t min_replay_timeline = 0;  // and its timeline
        rollout::Step step;                // the last step decided
        std::string started_at;            // since the cluster last had nothing to restart
        unsigned restarts = 0, switchovers = 0;
        std::deque<nlohmann::json> done;  // the last steps carried out
    } rollout_;
    std::chrono::steady_clock::time_point backup_tried_{};  // the last scheduled backup asked
    BackupsRunning backups_running_;  // one backup at a time, across missed polls
    std::unique_ptr<KubeApi> kube_;   // Kubernetes mode only
    std::map<std::string, Pod> pods_;
    std::map<std::string, std::string> update_revisions_;  // StatefulSet -> status.updateRevision
    std::chrono::steady_clock::time_point labels_paused_until_{};
};

// The subcommands (controller.cpp, cluster_cli.cpp).
int controller_main(const std::vector<std::string>& args);
int status_main(const std::vector<std::string>& args);
int switchover_main(const std::vector<std::string>& args);
int failover_main(const std::vector<std::string>& args);
int restart_main(const std::vector<std::string>& args);
int backup_main(const std::vector<std::string>& args);
int backups_main(const std::vector<std::string>& args);

}  // namespace im
