#include "controller/kubernetes/kube_api.hpp"

#include "fs_util.hpp"
#include "json_fields.hpp"
#include "url_query.hpp"
#include "json_text.hpp"

namespace im {

namespace {
constexpr auto kCallTimeout = std::chrono::seconds(5);
// The server ends a watch after timeoutSeconds; silence well past that
// (no event, no bookmark) means a dead connection.
constexpr int kWatchSeconds = 240;
constexpr auto kWatchIdle = std::chrono::seconds(kWatchSeconds + 60);
constexpr size_t kMaxEventBytes = 4 << 20;  // one pod as a JSON line is far smaller

// The API server's errors are Status objects with a message.
Error api_error(unsigned status, const std::string& body) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    std::string why = j.is_object() ? json_string(j, "message") : std::string();
    if (why.empty()) why = "HTTP " + std::to_string(status);
    return make_error("Kubernetes API: " + why, static_cast<int>(status));
}
}  // namespace

Pod pod_from_json(const nlohmann::json& object) {
    Pod p;
    const auto& meta = object.value("metadata", nlohmann::json::object());
    const auto& status = object.value("status", nlohmann::json::object());
    const auto& labels = meta.value("labels", nlohmann::json::object());
    p.name = json_string(meta, "name");
    p.resource_version = json_string(meta, "resourceVersion");
    p.deleting = meta.contains("deletionTimestamp") && !meta["deletionTimestamp"].is_null();
    p.role = labels.is_object() ? json_string(labels, "role") : std::string();
    p.ip = json_string(status, "podIP");
    p.uid = json_string(meta, "uid");
    p.revision = labels.is_object() ? json_string(labels, "controller-revision-hash") : "";
    if (auto owners = meta.find("ownerReferences"); owners != meta.end() && owners->is_array())
        for (const auto& o : *owners)
            if (json_string(o, "kind") == "StatefulSet") p.owner = json_string(o, "name");
    return p;
}

std::string out_of_date_reason(const Pod& pod, const std::string& update_revision) {
    if (pod.revision.empty() || update_revision.empty() || pod.revision == update_revision)
        return "";
    return "the pod runs revision " + pod.revision + " of StatefulSet " + pod.owner +
           ", whose template is now " + update_revision;
}

nlohmann::json role_label_patch(const Pod& pod, const std::optional<std::string>& role) {
    nlohmann::json patch = {
        {"metadata", {{"labels", {{"role", role ? nlohmann::json(*role) : nlohmann::json()}}}}}};
    if (!pod.resource_version.empty()) patch["metadata"]["resourceVersion"] = pod.resource_version;
    return patch;
}

std::string member_url(const Pod& pod, const KubeSettings& settings) {
    if (pod.ip.empty()) return "";
    std::string host = !settings.member_domain.empty() ? pod.name + "." + settings.member_domain
                       : pod.ip.find(':') != std::string::npos ? "[" + pod.ip + "]"
                                                               : pod.ip;
    return settings.member_scheme + "://" + host + ":" + std::to_string(settings.member_port);
}

Result<std::unique_ptr<KubeApi>> KubeApi::make(const KubeSettings& settings) {
    auto base = http_client::parse_url(settings.api_url);
    if (!base) return base.error();
    http_client::TlsClientOptions options;
    options.ca_file = settings.ca_file;
    auto tls = http_client::make_client_tls(options);
    if (!tls) return tls.error();
    return std::unique_ptr<KubeApi>(new KubeApi(settings, *base, *tls));
}

http_client::Url KubeApi::url(const std::string& path_and_query) const {
    http_client::Url u = base_;
    u.path = path_and_query;
    return u;
}

std::string KubeApi::pods_path(const std::string& name) const {
    return "/api/v1/namespaces/" + settings_.ns + "/pods" + (name.empty() ? "" : "/" + name);
}

std::string KubeApi::selector_query() const {
    return "labelSelector=" + percent_encode(settings_.selector);
}

Result<std::string> KubeApi::token() const { return fs::read_secret(settings_.token_file); }

awaitable<Result<nlohmann::json>> KubeApi::call(const std::string& method, const std::string& path,
                                                std::string body, const std::string& content_type) {
    auto bearer = token();
    if (!bearer) co_return bearer.error();
    auto reply = co_await http_client::async_http_request(
        method, url(path), std::move(body), *bearer, kCallTimeout, tls_, true, content_type);
    if (!reply) co_return make_error("Kubernetes API: " + reply.error().message);
    if (reply->status != 200) co_return api_error(reply->status, reply->body);
    auto j = nlohmann::json::parse(reply->body, nullptr, false);
    if (!j.is_object()) co_return make_error("Kubernetes API: the answer is not a JSON object");
    co_return j;
}

awaitable<Result<KubeApi::PodList>> KubeApi::list_pods() {
    auto j = co_await call("GET", pods_path("") + "?" + selector_query(), "", "");
    if (!j) co_return j.error();
    PodList out;
    out.resource_version =
        json_string(j->value("metadata", nlohmann::json::object()), "resourceVersion");
    if (auto items = j->find("items"); items != j->end() && items->is_array())
        for (const auto& item : *items) out.pods.push_back(pod_from_json(item));
    co_return out;
}

awaitable<Result<Pod>> KubeApi::get_pod(const std::string& name) {
    auto j = co_await call("GET", pods_path(name), "", "");
    if (!j) co_return j.error();
    co_return pod_from_json(*j);
}

awaitable<Result<Pod>> KubeApi::patch_role(const Pod& pod, const std::optional<std::string>& role) {
    auto j = co_await call("PATCH", pods_path(pod.name), json_text(role_label_patch(pod, role)),
                           "application/merge-patch+json");
    if (!j) co_return j.error();
    co_return pod_from_json(*j);
}

awaitable<Result<std::string>> KubeApi::update_revision(const std::string& statefulset) {
    auto j = co_await call("GET",
                           "/apis/apps/v1/namespaces/" + settings_.ns + "/statefulsets/" +
                               percent_encode(statefulset),
                           "", "");
    if (!j) co_return j.error();
    co_return json_string(j->value("status", nlohmann::json::object()), "updateRevision");
}

awaitable<Status> KubeApi::delete_pod(const Pod& pod) {
    nlohmann::json options = {{"kind", "DeleteOptions"},
                              {"apiVersion", "v1"},
                              {"preconditions", {{"uid", pod.uid}}}};
    // And unchanged since we read it: a pod relabeled meanwhile (a newer
    // controller made it primary) is not deleted on an old decision.
    if (!pod.resource_version.empty())
        options["preconditions"]["resourceVersion"] = pod.resource_version;
    auto j = co_await call("DELETE", pods_path(pod.name), json_text(options), "application/json");
    if (!j) co_return j.error();
    co_return Ok{};
}

awaitable<Status> KubeApi::watch_pods(
    const std::string& resource_version,
    std::function<void(const std::string&, const Pod&)> on_event) {
    auto bearer = token();
    if (!bearer) co_return bearer.error();
    std::string path =
        pods_path("") + "?" + selector_query() +
        "&watch=true&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(kWatchSeconds) +
        "&resourceVersion=" + percent_encode(resource_version);
    std::string pending;  // an event split across reads
    std::optional<Error> failure;
    auto on_data = [&](std::string_view data) {
        pending.append(data);
        if (pending.size() > kMaxEventBytes) {
            failure = make_error("Kubernetes API: a watch event over 4 MiB");
            return false;
        }
        for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
            std::string line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            if (line.empty()) continue;
            auto event = nlohmann::json::parse(line, nullptr, false);
            if (!event.is_object() || !event.contains("object")) {
                failure = make_error("Kubernetes API: a watch event that is not JSON");
                return false;
            }
            std::string type = json_string(event, "type");
            const auto& object = event["object"];
            if (type == "ERROR") {
                // 410 Gone: the version is older than the server keeps.
                failure = make_error("Kubernetes API: watch: " + json_string(object, "message"),
                                     object.value("code", 0));
                return false;
            }
            on_event(type, pod_from_json(object));
        }
        return true;
    };
    auto reply = co_await http_client::async_http_stream(url(path), *bearer, kCallTimeout,
                                                         kWatchIdle, tls_, true, on_data);
    if (failure) co_return *failure;
    if (!reply) co_return make_error("Kubernetes API: watch: " + reply.error().message);
    if (reply->status != 200) co_return api_error(reply->status, reply->body);
    co_return Ok{};
}

}  // namespace im
