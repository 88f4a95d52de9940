#include "api.hpp"

#include <map>

#include "log.hpp"
#include "probe_logic.hpp"
#include "secrets.hpp"

namespace im {

HttpResponse json_response(http::status status, const nlohmann::json& body, unsigned version) {
    HttpResponse res{status, version};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    res.body() = body.dump() + "\n";
    return res;
}

HttpResponse error_response(http::status status, const std::string& message, unsigned version) {
    return json_response(status, {{"error", message}}, version);
}

Result<nlohmann::json> parse_command_body(const std::string& body,
                                          const std::set<std::string>& allowed) {
    if (body.find_first_not_of(" \t\r\n") == std::string::npos) return nlohmann::json::object();
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded()) return make_error("malformed JSON body", 400);
    if (!j.is_object()) return make_error("the body must be a JSON object", 400);
    for (auto it = j.begin(); it != j.end(); ++it)
        if (!allowed.count(it.key())) return make_error("unknown field '" + it.key() + "'", 400);
    return j;
}

namespace {

enum class Kind { probe, status, metrics, command };
struct Route {
    Kind kind;
    std::set<http::verb> methods;
    std::set<std::string> fields;  // accepted body fields, for commands
};

const std::map<std::string, Route>& routes() {
    static const std::map<std::string, Route> r = {
        {"/healthz", {Kind::probe, {http::verb::get, http::verb::head}, {}}},
        {"/readyz", {Kind::probe, {http::verb::get, http::verb::head}, {}}},
        {"/startupz", {Kind::probe, {http::verb::get, http::verb::head}, {}}},
        {"/v1/status", {Kind::status, {http::verb::get, http::verb::head}, {}}},
        {"/metrics", {Kind::metrics, {http::verb::get, http::verb::head}, {}}},
        {"/v1/restart", {Kind::command, {http::verb::post}, {}}},
        {"/v1/reload", {Kind::command, {http::verb::post}, {}}},
    };
    return r;
}

std::string allow_header(const std::set<http::verb>& methods) {
    std::string out;
    for (auto m : methods) {
        if (!out.empty()) out += ", ";
        out += std::string(http::to_string(m));
    }
    return out;
}

}  // namespace

Api::Api(const Config& cfg, InstanceState& state, Metrics& metrics, ApiActions& actions,
         std::optional<std::string> token)
    : cfg_(cfg), state_(state), metrics_(metrics), actions_(actions), token_(std::move(token)) {}

HttpResponse Api::probe(const std::string& name, const HttpRequest& req) {
    auto in = probe_input(state_);
    probes::ProbeAnswer a = name == "/healthz"  ? probes::liveness(in)
                            : name == "/readyz" ? probes::readiness(in)
                                                : probes::startup(in);
    metrics_.count_probe(name.substr(1), a.ok);
    nlohmann::json body = {{"status", a.ok ? "ok" : "fail"},
                           {"reason", a.reason},
                           {"role", to_string(state_.role.current())}};
    return json_response(a.ok ? http::status::ok : http::status::service_unavailable, body,
                         req.version());
}

std::optional<HttpResponse> Api::authorize(const HttpRequest& req) const {
    if (!token_)
        return error_response(http::status::forbidden,
                              "mutating calls are disabled: no --api-token-file configured",
                              req.version());
    auto header = req[http::field::authorization];
    constexpr std::string_view prefix = "Bearer ";
    if (header.size() <= prefix.size() || header.substr(0, prefix.size()) != prefix ||
        !secrets_equal(
            std::string_view(header.data() + prefix.size(), header.size() - prefix.size()),
            *token_)) {
        auto res = error_response(http::status::unauthorized, "missing or wrong bearer token",
                                  req.version());
        res.set(http::field::www_authenticate, "Bearer");
        return res;
    }
    return std::nullopt;
}

awaitable<HttpResponse> Api::command(const std::string& path, const HttpRequest& req) {
    if (auto denied = authorize(req)) co_return std::move(*denied);
    auto body = parse_command_body(req.body(), routes().at(path).fields);
    if (!body)
        co_return error_response(http::status::bad_request, body.error().message, req.version());
    if (busy_)
        co_return error_response(http::status::conflict, "busy: another command is running",
                                 req.version());
    busy_ = true;
    struct Clear {
        bool& b;
        ~Clear() { b = false; }
    } clear{busy_};
    log::info("api", "command", {{"path", path}});
    // Plain statements around co_await: GCC 12 miscompiles co_await inside ?:.
    std::optional<CommandResult_> r;
    if (path == "/v1/restart")
        r.emplace(co_await actions_.restart(*body));
    else
        r.emplace(co_await actions_.reload(*body));
    if (!*r) {
        int code = r->error().code >= 400 && r->error().code < 600 ? r->error().code : 500;
        co_return error_response(static_cast<http::status>(code), r->error().message,
                                 req.version());
    }
    co_return json_response(http::status::ok, r->value(), req.version());
}

awaitable<HttpResponse> Api::handle(HttpRequest req) {
    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    HttpResponse res;
    auto it = routes().find(path);
    if (it == routes().end()) {
        res = error_response(http::status::not_found, "no such path: " + path, req.version());
    } else if (!it->second.methods.count(req.method())) {
        res =
            error_response(http::status::method_not_allowed,
                           "method " + std::string(req.method_string()) + " not allowed on " + path,
                           req.version());
        res.set(http::field::allow, allow_header(it->second.methods));
    } else {
        switch (it->second.kind) {
            case Kind::probe:
                res = probe(path, req);
                break;
            case Kind::status:
                res = json_response(http::status::ok, build_status(state_, cfg_), req.version());
                break;
            case Kind::metrics:
                res = HttpResponse{http::status::ok, req.version()};
                res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
                res.body() = metrics_.render(state_);
                break;
            case Kind::command:
                res = co_await command(path, req);
                break;
        }
    }
    metrics_.count_request(it == routes().end() ? "other" : path, res.result_int());
    co_return res;
}

}  // namespace im
