#pragma once
// The few Kubernetes API calls the controller needs: list and watch the
// cluster's pods, read one, and set or remove its `role` label with a JSON
// merge patch. HTTPS with the API server's CA verified and the service
// account's bearer token, read again for every call (kubelet rotates it).
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "asio.hpp"
#include "controller/controller_config.hpp"
#include "http_client.hpp"
#include "result.hpp"

namespace im {

// What the controller cares about in a pod.
struct Pod {
    std::string name;
    std::string ip;                // status.podIP; empty until scheduled and started
    std::string role;              // metadata.labels.role; empty when absent
    std::string resource_version;  // metadata.resourceVersion
    bool deleting = false;         // metadata.deletionTimestamp is set
    std::string uid;               // metadata.uid: this pod, not a later one of the same name
    // The StatefulSet that owns it (ownerReferences) and the revision of the
    // StatefulSet's template it was made from (label controller-revision-hash).
    std::string owner;
    std::string revision;
};

// Whether a pod runs an older template than its StatefulSet's newest
// (`update_revision`): why, or "" when it is current (or unknown).
std::string out_of_date_reason(const Pod& pod, const std::string& update_revision);

Pod pod_from_json(const nlohmann::json& object);

// The merge patch that sets (or, with no role, removes) the role label,
// guarded by the pod's resourceVersion: a pod changed since we read it gets
// 409 instead of a label decided on stale facts.
nlohmann::json role_label_patch(const Pod& pod, const std::optional<std::string>& role);

// The manager API URL of a pod's member: SCHEME://HOST:PORT with the pod's
// IP, or POD.DOMAIN with --member-domain; "" while the pod has no IP yet
// (not scheduled or not started: unreachable either way).
std::string member_url(const Pod& pod, const KubeSettings& settings);

class KubeApi {
  public:
    static Result<std::unique_ptr<KubeApi>> make(const KubeSettings& settings);

    struct PodList {
        std::vector<Pod> pods;
        std::string resource_version;  // where a watch starts
    };
    awaitable<Result<PodList>> list_pods();
    awaitable<Result<Pod>> get_pod(const std::string& name);
    // Errors carry the HTTP status as code (409: the pod changed, read it again).
    awaitable<Result<Pod>> patch_role(const Pod& pod, const std::optional<std::string>& role);
    // The StatefulSet's status.updateRevision: the template new pods get.
    awaitable<Result<std::string>> update_revision(const std::string& statefulset);
    // Deletes this very pod, as it was read (its uid and resourceVersion as
    // preconditions: neither a replacement of the same name nor a pod
    // changed since is deleted); the StatefulSet makes a new one from its
    // current template.
    awaitable<Status> delete_pod(const Pod& pod);

    // Watches the selected pods from `resource_version`, handing each event
    // (type ADDED, MODIFIED, DELETED or BOOKMARK, and the pod) to `on_event`.
    // Returns when the server ends the stream (Ok: watch again from the last
    // version seen) or with an error; code 410 means the version is too old
    // and the caller must list again.
    awaitable<Status> watch_pods(const std::string& resource_version,
                                 std::function<void(const std::string&, const Pod&)> on_event);

  private:
    KubeApi(KubeSettings settings, http_client::Url base, std::shared_ptr<asio::ssl::context> tls)
        : settings_(std::move(settings)), base_(std::move(base)), tls_(std::move(tls)) {}
    http_client::Url url(const std::string& path_and_query) const;
    std::string pods_path(const std::string& name) const;  // the collection when name is ""
    std::string selector_query() const;
    Result<std::string> token() const;
    awaitable<Result<nlohmann::json>> call(const std::string& method, const std::string& path,
                                           std::string body, const std::string& content_type);

    KubeSettings settings_;
    http_client::Url base_;
    std::shared_ptr<asio::ssl::context> tls_;
};

}  // namespace im
