#include "fake_kube.hpp"

#include <sys/socket.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <map>

#include "url_query.hpp"

namespace harness {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct FakeKube::Impl {
    asio::io_context io;
    asio::ssl::context tls{asio::ssl::context::tls_server};
    tcp::acceptor acceptor{io};
};

namespace {

nlohmann::json status_object(unsigned code, const std::string& reason, const std::string& message) {
    return {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
            {"status", "Failure"}, {"message", message}, {"reason", reason},
            {"code", code}};
}

}  // namespace

FakeKube::FakeKube(std::string ns, std::string selector_key, std::string selector_value,
                   std::string token, const std::string& cert, const std::string& key,
                   const std::string& bind, std::string host)
    : ns_(std::move(ns)),
      key_(std::move(selector_key)),
      value_(std::move(selector_value)),
      token_(std::move(token)),
      host_(std::move(host)),
      impl_(new Impl) {
    impl_->tls.use_certificate_chain_file(cert);
    impl_->tls.use_private_key_file(key, asio::ssl::context::pem);
    tcp::endpoint ep(asio::ip::make_address(bind), 0);
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen();
    impl_->acceptor.non_blocking(true);
    port_ = impl_->acceptor.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
}

FakeKube::~FakeKube() {
    stop_ = true;
    thread_.join();
    std::vector<std::thread> workers;
    {
        std::lock_guard lock(mu_);
        workers.swap(workers_);
    }
    for (auto& w : workers) w.join();
    delete impl_;
}

void FakeKube::serve() {
    while (!stop_) {
        boost::system::error_code ec;
        tcp::socket socket(impl_->io);
        impl_->acceptor.accept(socket, ec);
        if (ec) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            continue;
        }
        int fd = socket.release();
        std::lock_guard lock(mu_);
        workers_.emplace_back([this, fd] { handle_connection(fd); });
    }
}

void FakeKube::record(const Call& c) {
    std::lock_guard lock(mu_);
    calls_.push_back(c);
}

void FakeKube::violation(const std::string& what) {
    std::lock_guard lock(mu_);
    violations_.push_back(what);
}

void FakeKube::changed(const std::string& type, nlohmann::json& pod) {
    pod["metadata"]["resourceVersion"] = std::to_string(++version_);
    events_.push_back({version_, {{"type", type}, {"object", pod}}});
}

bool FakeKube::selected(const nlohmann::json& pod) const {
    return pod["metadata"]["labels"].value(key_, "") == value_;
}

void FakeKube::add_pod(const std::string& name, const std::string& ip, const std::string& app) {
    std::lock_guard lock(mu_);
    nlohmann::json pod = {{"apiVersion", "v1"},
                          {"kind", "Pod"},
                          {"metadata",
                           {{"name", name},
                            {"namespace", ns_},
                            {"uid", "uid-" + name + "-" + std::to_string(version_)},
                            {"labels", {{key_, app.empty() ? value_ : app}}}}},
                          {"status", {{"phase", ip.empty() ? "Pending" : "Running"}}}};
    if (!ip.empty()) pod["status"]["podIP"] = ip;
    if (!statefulset_.empty()) {
        pod["metadata"]["ownerReferences"] = {
            {{"apiVersion", "apps/v1"}, {"kind", "StatefulSet"}, {"name", statefulset_},
             {"controller", true}}};
        pod["metadata"]["labels"]["controller-revision-hash"] = update_revision_;
    }
    changed("ADDED", pod);
    pods_[name] = pod;
}

void FakeKube::set_pod_ip(const std::string& name, const std::string& ip) {
    std::lock_guard lock(mu_);
    auto& pod = pods_.at(name);
    pod["status"]["podIP"] = ip;
    pod["status"]["phase"] = "Running";
    changed("MODIFIED", pod);
}

void FakeKube::set_label(const std::string& name, const std::optional<std::string>& role) {
    std::lock_guard lock(mu_);
    auto& pod = pods_.at(name);
    if (role)
        pod["metadata"]["labels"]["role"] = *role;
    else
        pod["metadata"]["labels"].erase("role");
    changed("MODIFIED", pod);
}

void FakeKube::delete_pod(const std::string& name) {
    std::lock_guard lock(mu_);
    auto pod = pods_.at(name);
    pods_.erase(name);
    changed("DELETED", pod);
}

void FakeKube::set_statefulset(const std::string& name, const std::string& update_revision) {
    std::lock_guard lock(mu_);
    statefulset_ = name;
    update_revision_ = update_revision;
}

std::optional<std::string> FakeKube::revision_of(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = pods_.find(name);
    if (it == pods_.end()) return std::nullopt;
    return it->second["metadata"]["labels"].value("controller-revision-hash", "");
}

std::vector<std::string> FakeKube::deleted() {
    std::lock_guard lock(mu_);
    return deleted_;
}

void FakeKube::expire_watches() {
    std::lock_guard lock(mu_);
    oldest_ = version_ + 1;
    ++watch_generation_;
}

std::optional<std::string> FakeKube::role_of(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = pods_.find(name);
    if (it == pods_.end()) return std::nullopt;
    const auto& labels = it->second["metadata"]["labels"];
    if (!labels.contains("role")) return std::nullopt;
    return labels["role"].get<std::string>();
}

std::vector<FakeKube::Call> FakeKube::calls() {
    std::lock_guard lock(mu_);
    return calls_;
}

std::vector<std::string> FakeKube::violations() {
    std::lock_guard lock(mu_);
    return violations_;
}

void FakeKube::handle_connection(int fd) {
    timeval tv{1, 0};  // reads give up, so the server can stop
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    asio::io_context io;
    beast::ssl_stream<tcp::socket> stream(tcp::socket(io, tcp::v4(), fd), impl_->tls);
    boost::system::error_code ec;
    stream.handshake(asio::ssl::stream_base::server, ec);
    if (ec) return;
    beast::flat_buffer buffer;
    while (!stop_) {
        http::request<http::string_body> req;
        http::read(stream, buffer, req, ec);
        if (ec) return;
        std::string target(req.target());
        std::string path = target.substr(0, target.find('?'));
        auto query = [&](const char* key) { return im::query_param(target, key); };
        Call call{std::string(req.method_string()), target, 0, nullptr};
        auto reply = [&](unsigned status, const nlohmann::json& body) {
            call.status = status;
            record(call);
            http::response<http::string_body> res{static_cast<http::status>(status), 11};
            res.set(http::field::content_type, "application/json");
            res.keep_alive(req.keep_alive());
            res.body() = body.dump();
            res.prepare_payload();
            http::write(stream, res, ec);
        };
        auto refuse = [&](unsigned status, const std::string& reason, const std::string& why) {
            violation(call.method + " " + target + ": " + why);
            reply(status, status_object(status, reason, why));
        };

        if (req[http::field::authorization] != "Bearer " + token_) {
            refuse(401, "Unauthorized", "missing or wrong bearer token");
            continue;
        }
        const std::string sets_path = "/apis/apps/v1/namespaces/" + ns_ + "/statefulsets/";
        if (path.rfind(sets_path, 0) == 0 && req.method() == http::verb::get) {
            std::unique_lock lock(mu_);
            const std::string set = path.substr(sets_path.size());
            nlohmann::json answer =
                set.empty() || set != statefulset_
                    ? nlohmann::json()
                    : nlohmann::json{{"apiVersion", "apps/v1"},
                                     {"kind", "StatefulSet"},
                                     {"metadata", {{"name", set}, {"namespace", ns_}}},
                                     {"spec", {{"updateStrategy", {{"type", "OnDelete"}}}}},
                                     {"status", {{"updateRevision", update_revision_}}}};
            lock.unlock();
            if (answer.is_null())
                reply(404, status_object(404, "NotFound",
                                         "statefulsets.apps \"" + set + "\" not found"));
            else
                reply(200, answer);
            continue;
        }
        const std::string pods_path = "/api/v1/namespaces/" + ns_ + "/pods";
        bool collection = path == pods_path;
        bool one = path.rfind(pods_path + "/", 0) == 0;
        std::string name = one ? path.substr(pods_path.size() + 1) : "";
        if (!collection && !one) {
            refuse(404, "NotFound", "not a path of this namespace's pods: " + path);
            continue;
        }

        if (collection && req.method() == http::verb::get) {
            if (query("labelSelector") != key_ + "=" + value_) {
                refuse(400, "BadRequest", "labelSelector is not " + key_ + "=" + value_);
                continue;
            }
            if (query("watch") != "true" && query("watch") != "1") {
                nlohmann::json list = {{"kind", "PodList"}, {"apiVersion", "v1"}};
                {
                    std::lock_guard lock(mu_);
                    list["metadata"] = {{"resourceVersion", std::to_string(version_)}};
                    list["items"] = nlohmann::json::array();
                    for (const auto& [n, pod] : pods_)
                        if (selected(pod)) list["items"].push_back(pod);
                }
                reply(200, list);
                continue;
            }
            // A watch: a chunked stream of JSON lines from the version asked.
            if (!query("resourceVersion")) {
                refuse(400, "BadRequest", "a watch without resourceVersion");
                continue;
            }
            std::string version = *query("resourceVersion");
            uint64_t from = std::stoull(version.empty() ? "0" : version);
            call.status = 200;
            record(call);
            http::response<http::empty_body> res{http::status::ok, 11};
            res.set(http::field::content_type, "application/json");
            res.chunked(true);
            http::response_serializer<http::empty_body> sr{res};
            http::write_header(stream, sr, ec);
            if (ec) return;
            auto send = [&](const nlohmann::json& event) {
                std::string line = event.dump() + "\n";
                asio::write(stream, http::make_chunk(asio::buffer(line)), ec);
                return !ec;
            };
            uint64_t generation;
            bool gone;
            {
                std::lock_guard lock(mu_);
                generation = watch_generation_;
                gone = from < oldest_;
            }
            if (gone) {
                send({{"type", "ERROR"},
                      {"object",
                       status_object(410, "Expired",
                                     "too old resource version: " + std::to_string(from))}});
            } else {
                uint64_t sent = from;
                auto deadline =
                    std::chrono::steady_clock::now() +
                    std::chrono::seconds(std::stoi(query("timeoutSeconds").value_or("300")));
                while (!stop_ && std::chrono::steady_clock::now() < deadline) {
                    std::vector<nlohmann::json> out;
                    {
                        std::lock_guard lock(mu_);
                        if (watch_generation_ != generation) break;
                        for (const auto& [v, event] : events_)
                            if (v > sent) {
                                if (selected(event["object"])) out.push_back(event);
                                sent = v;
                            }
                    }
                    bool ok = true;
                    for (const auto& e : out) ok = ok && send(e);
                    if (!ok) return;
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                }
            }
            asio::write(stream, http::make_chunk_last(), ec);
            return;  // the connection ends with the watch
        }

        if (one && req.method() == http::verb::get) {
            std::unique_lock lock(mu_);
            auto it = pods_.find(name);
            nlohmann::json pod = it == pods_.end() ? nlohmann::json() : it->second;
            lock.unlock();
            if (pod.is_null())
                reply(404, status_object(404, "NotFound", "pods \"" + name + "\" not found"));
            else
                reply(200, pod);
            continue;
        }

        if (one && req.method() == http::verb::patch) {
            call.body = nlohmann::json::parse(req.body(), nullptr, false);
            if (req[http::field::content_type] != "application/merge-patch+json") {
                refuse(415, "UnsupportedMediaType",
                       "content type is not application/merge-patch+json: " +
                           std::string(req[http::field::content_type]));
                continue;
            }
            const auto& b = call.body;
            bool shape = b.is_object() && b.size() == 1 && b.contains("metadata") &&
                         b["metadata"].is_object() && b["metadata"].contains("labels");
            if (shape)
                for (auto it = b["metadata"].begin(); it != b["metadata"].end(); ++it)
                    shape = shape && (it.key() == "labels" ||
                                      (it.key() == "resourceVersion" && it->is_string()));
            if (shape) {
                const auto& labels = b["metadata"]["labels"];
                shape = labels.is_object() && labels.size() == 1 && labels.contains("role") &&
                        (labels["role"].is_null() || labels["role"] == "primary" ||
                         labels["role"] == "replica");
            }
            if (!shape) {
                refuse(422, "Invalid", "a patch other than the role label: " + req.body());
                continue;
            }
            std::unique_lock lock(mu_);
            auto it = pods_.find(name);
            if (it == pods_.end()) {
                lock.unlock();
                reply(404, status_object(404, "NotFound", "pods \"" + name + "\" not found"));
                continue;
            }
            auto& pod = it->second;
            if (conflict_next_.exchange(false)) {
                // Someone else changed the pod first.
                pod["metadata"]["annotations"]["touched"] = std::to_string(version_);
                changed("MODIFIED", pod);
            }
            std::string current = pod["metadata"]["resourceVersion"];
            if (b["metadata"].contains("resourceVersion") &&
                b["metadata"]["resourceVersion"] != current) {
                lock.unlock();
                reply(409, status_object(409, "Conflict",
                                         "Operation cannot be fulfilled on pods \"" + name +
                                             "\": the object has been modified; please apply "
                                             "your changes to the latest version and try again"));
                continue;
            }
            const auto& role = b["metadata"]["labels"]["role"];
            if (role.is_null())
                pod["metadata"]["labels"].erase("role");
            else
                pod["metadata"]["labels"]["role"] = role;
            changed("MODIFIED", pod);
            int primaries = 0;
            for (const auto& [n, p] : pods_)
                if (p["metadata"]["labels"].value("role", "") == "primary") ++primaries;
            nlohmann::json answer = pod;
            lock.unlock();
            if (primaries > 1) violation("two pods labeled role=primary after " + req.body());
            reply(200, answer);
            continue;
        }
        if (one && req.method() == http::verb::delete_) {
            call.body = nlohmann::json::parse(req.body(), nullptr, false);
            const auto& b = call.body;
            if (!b.is_object() || !b.contains("preconditions") ||
                !b["preconditions"].is_object() || !b["preconditions"].contains("uid")) {
                refuse(422, "Invalid", "a delete without the pod's uid as precondition");
                continue;
            }
            std::unique_lock lock(mu_);
            auto it = pods_.find(name);
            if (it == pods_.end()) {
                lock.unlock();
                reply(404, status_object(404, "NotFound", "pods \"" + name + "\" not found"));
                continue;
            }
            if (it->second["metadata"]["uid"] != b["preconditions"]["uid"] ||
                (b["preconditions"].contains("resourceVersion") &&
                 it->second["metadata"]["resourceVersion"] !=
                     b["preconditions"]["resourceVersion"])) {
                lock.unlock();
                reply(409, status_object(409, "Conflict",
                                         "Precondition failed: UID in precondition: " +
                                             b["preconditions"]["uid"].dump()));
                continue;
            }
            nlohmann::json pod = it->second;
            pods_.erase(it);
            changed("DELETED", pod);
            deleted_.push_back(name);
            lock.unlock();
            reply(200, pod);
            continue;
        }
        refuse(405, "MethodNotAllowed", "method not allowed here");
    }
}

}  // namespace harness
