#pragma once
// A stand-in for the Kubernetes API server, for the controller's Kubernetes
// mode: HTTPS on loopback, one namespace of pods, list / get / watch /
// merge-patch answered as the API server answers them (resourceVersions,
// 409 on a stale resourceVersion, 410 for a watch that is too old, chunked
// watch streams of JSON lines). Every call is checked - method, path, query,
// bearer token, content type and the patch body - and whatever breaks the
// rules is kept in violations(), as is a moment with two pods labeled
// role=primary.
#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace harness {

class FakeKube {
  public:
    // `cert`/`key`: the server's certificate (for `host`); it listens on
    // `bind` and names itself https://HOST:PORT.
    FakeKube(std::string ns, std::string selector_key, std::string selector_value,
             std::string token, const std::string& cert, const std::string& key,
             const std::string& bind = "127.0.0.1", std::string host = "127.0.0.1");
    ~FakeKube();
    FakeKube(const FakeKube&) = delete;
    FakeKube& operator=(const FakeKube&) = delete;

    int port() const { return port_; }
    std::string url() const { return "https://" + host_ + ":" + std::to_string(port_); }

    // Changes as a user or kubelet would make them (each a watch event).
    // `app`: the selector label's value (default: the selected one).
    void add_pod(const std::string& name, const std::string& ip, const std::string& app = "");
    void set_pod_ip(const std::string& name, const std::string& ip);
    void set_label(const std::string& name, const std::optional<std::string>& role);
    void delete_pod(const std::string& name);
    // A StatefulSet that owns the pods added from now on (ownerReferences,
    // and label controller-revision-hash = its update revision then).
    // Changing the revision is a template change (a new image).
    void set_statefulset(const std::string& name, const std::string& update_revision);
    std::optional<std::string> revision_of(const std::string& pod);
    // Pods deleted through the API (DELETE with the pod's uid as precondition), in order.
    std::vector<std::string> deleted();

    // The next PATCH gets 409 (as if someone changed the pod first: its
    // resourceVersion moves on).
    void conflict_next_patch() { conflict_next_ = true; }
    // Open watches end; the next watch gets an ERROR event with code 410.
    void expire_watches();

    std::optional<std::string> role_of(const std::string& name);
    struct Call {
        std::string method;
        std::string target;
        unsigned status = 0;
        nlohmann::json body;
    };
    std::vector<Call> calls();
    std::vector<std::string> violations();

  private:
    void serve();
    void handle_connection(int fd);
    void record(const Call& c);
    bool selected(const nlohmann::json& pod) const;
    void violation(const std::string& what);
    // Under mu_: a pod changed; bumps versions and appends an event.
    void changed(const std::string& type, nlohmann::json& pod);

    std::string ns_, key_, value_, token_, host_;
    struct Impl;
    Impl* impl_;
    int port_ = 0;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> conflict_next_{false};

    std::mutex mu_;
    uint64_t version_ = 100;
    uint64_t oldest_ = 0;            // watches from before this get 410
    uint64_t watch_generation_ = 0;  // bumped to end open watches
    std::map<std::string, nlohmann::json> pods_;
    std::string statefulset_, update_revision_;
    std::vector<std::string> deleted_;
    std::vector<std::pair<uint64_t, nlohmann::json>> events_;  // (version, event)
    std::vector<Call> calls_;
    std::vector<std::string> violations_;
    std::vector<std::thread> workers_;
};

}  // namespace harness
