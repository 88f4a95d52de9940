#pragma once
// The thin controller: one per cluster, no durable state beyond the term
// (learned back from the members). It polls every member's status, keeps
// one primary with a lease, re-points replicas, fails over when the primary
// is lost and switches over on request. The decisions themselves are pure
// functions in cluster_rules.hpp; this class carries them out on one loop.
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
#include "controller/cluster_rules.hpp"
#include "controller/controller_config.hpp"
#include "controller/kubernetes/kube_api.hpp"
#include "controller/role_labels.hpp"

namespace im {

class Controller {
  public:
    Controller(asio::io_context& io, ControllerConfig cfg, std::string token);
    ~Controller();
    int run();

  private:
    awaitable<void> control_loop();
    awaitable<void> lease_loop();
    awaitable<void> poll();
    awaitable<void> converge();
    awaitable<void> failover(std::optional<size_t> old_primary);
    awaitable<Result<nlohmann::json>> switchover(const std::string& to);

    // Kubernetes mode: the members are the selected pods (listed, then
    // watched), and each pod's role label follows what its member reports.
    awaitable<void> pod_watch_loop();
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
    nlohmann::json lease_body() const;
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
    std::string primary_;      // the member the controller holds as primary
    std::set<std::string> sync_standbys_;
    std::set<std::string> leased_;  // members seen (or made) primary under a lease  // the
                                    // primary's synchronous standbys, last seen
    std::optional<std::chrono::steady_clock::time_point> primary_lost_since_;
    bool busy_ = false;  // a failover or switchover is under way
    std::map<std::string, std::chrono::steady_clock::time_point> cooldown_;
    std::deque<nlohmann::json> decisions_;
    bool stopping_ = false;
    int exit_code_ = 0;  // 1 once a loop died
    bool lease_failing_ = false;
    bool adopted_once_ = false;  // has seen (or made) a primary since it started
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

    std::unique_ptr<KubeApi> kube_;  // Kubernetes mode only
    std::map<std::string, Pod> pods_;
    std::chrono::steady_clock::time_point labels_paused_until_{};
};

// The subcommands (controller.cpp, cluster_cli.cpp).
int controller_main(const std::vector<std::string>& args);
int status_main(const std::vector<std::string>& args);
int switchover_main(const std::vector<std::string>& args);

}  // namespace im
