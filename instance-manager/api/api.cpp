#include "api/api.hpp"

#include <map>

#include "authority/durability.hpp"
#include "backup/pgbackrest.hpp"
#include "bootstrap/replication_config.hpp"
#include "conninfo.hpp"
#include "http_client.hpp"
#include "json_text.hpp"
#include "log.hpp"
#include "probe_logic.hpp"
#include "secrets.hpp"
#include "url_query.hpp"

namespace im {

HttpResponse json_response(http::status status, const nlohmann::json& body, unsigned version) {
    HttpResponse res{status, version};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    // The body may echo what a client sent (a path): json_text cannot throw.
    res.body() = json_text(body) + "\n";
    return res;
}

bool bearer_matches(const HttpRequest& req, const std::string& token) {
    auto header = req[http::field::authorization];
    constexpr std::string_view prefix = "Bearer ";
    return header.size() > prefix.size() && header.substr(0, prefix.size()) == prefix &&
           secrets_equal(header.substr(prefix.size()), token);
}

HttpResponse error_response(http::status status, const std::string& message, unsigned version) {
    return json_response(status, {{"error", message}}, version);
}

namespace {
std::optional<std::string> check_field(const nlohmann::json& v, FieldType type) {
    switch (type) {
        case FieldType::term:
            if (!v.is_number_unsigned()) return "an unsigned integer";
            break;
        case FieldType::lsn:
            if (!v.is_string() || parse_lsn(v.get<std::string>()) == 0)
                return "an LSN like \"0/3000060\"";
            break;
        case FieldType::seconds:
            if (!v.is_number() || v.get<double>() <= 0 || v.get<double>() > 3600)
                return "a number of seconds (0, 3600]";
            break;
        case FieldType::conninfo:
            if (!v.is_string() || !parse_conninfo(v.get<std::string>()))
                return "a libpq connection string";
            break;
        case FieldType::name:
            if (!v.is_string() || v.get<std::string>().empty()) return "a member name";
            break;
        case FieldType::names: {
            if (!v.is_array()) return "an array of instance names";
            std::vector<std::string> names;
            for (const auto& n : v) {
                if (!n.is_string() || n.get<std::string>().empty())
                    return "an array of instance names";
                names.push_back(n.get<std::string>());
            }
            if (auto clash = slot_name_collision(names)) return *clash;
            break;
        }
        case FieldType::millis:
            if (!v.is_number_integer() || v.get<int64_t>() < 100 || v.get<int64_t>() > 600000)
                return "a number of milliseconds [100, 600000]";
            break;
        case FieldType::member_urls: {
            if (!v.is_object() || v.empty()) return "an object of member name -> API URL";
            std::vector<std::string> names;
            for (auto m = v.begin(); m != v.end(); ++m) {
                // "": a member whose address is not known yet (a pod without
                // an IP): it counts towards the majority, as an unreachable one.
                if (m.key().empty() || !m.value().is_string() ||
                    (!m.value().get<std::string>().empty() &&
                     !http_client::parse_url(m.value().get<std::string>())))
                    return "an object of member name -> API URL (\"\" while unknown)";
                names.push_back(m.key());
            }
            if (auto clash = slot_name_collision(names)) return *clash;
            break;
        }
        case FieldType::synchronous:
            if (auto s = parse_sync_spec(v); !s) return s.error().message;
            break;
        case FieldType::flag:
            if (!v.is_boolean()) return "true or false";
            break;
        case FieldType::start_time:
            if (!v.is_string() || v.get<std::string>().empty() || v.get<std::string>().size() > 64)
                return "postgres's start time as status reports it";
            break;
        case FieldType::backup_type:
            if (!v.is_string() || (v != "full" && v != "diff" && v != "incr"))
                return "\"full\", \"diff\" or \"incr\"";
            break;
        case FieldType::backup_primary:
            if (auto p = backup::parse_primary_server(v); !p) return p.error().message;
            break;
        case FieldType::durability:
            if (!authority::parse_durability(v))
                return "a durability record {\"term\", \"version\", \"sets\": [{\"number\", "
                       "\"standbys\"}]}";
            break;
    }
    return std::nullopt;
}
}  // namespace

Result<nlohmann::json> parse_command_body(const std::string& body, const CommandSpec& spec) {
    nlohmann::json j = nlohmann::json::object();
    if (body.find_first_not_of(" \t\r\n") != std::string::npos) {
        auto parsed = parse_json_object(body);
        if (!parsed) return make_error(parsed.error().message, 400);
        j = std::move(*parsed);
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
        auto field = spec.find(it.key());
        if (field == spec.end()) return make_error("unknown field '" + it.key() + "'", 400);
        if (auto want = check_field(it.value(), field->second.type))
            return make_error(field->second.type == FieldType::synchronous
                                  ? *want
                                  : "field '" + it.key() + "' must be " + *want,
                              400);
    }
    for (const auto& [name, f] : spec)
        if (f.required && !j.contains(name))
            return make_error("field '" + name + "' is required", 400);
    return j;
}

namespace {

enum class Kind { probe, status, metrics, command, authority, backups };
struct Route {
    Kind kind;
    std::set<http::verb> methods;
    CommandSpec fields;  // accepted body fields, for commands
};

const std::map<std::string, Route>& routes() {
    const std::set<http::verb> get = {http::verb::get, http::verb::head};
    const std::set<http::verb> post = {http::verb::post};
    const FieldSpec term{FieldType::term, true};
    static const std::map<std::string, Route> r = {
        {"/healthz", {Kind::probe, get, {}}},
        {"/readyz", {Kind::probe, get, {}}},
        {"/startupz", {Kind::probe, get, {}}},
        {"/primary", {Kind::probe, get, {}}},
        {"/replica", {Kind::probe, get, {}}},
        {"/v1/status", {Kind::status, get, {}}},
        {"/metrics", {Kind::metrics, get, {}}},
        // start_time: restart only the postgres that started then (a request
        // made on a stale reading restarts nothing twice).
        {"/v1/restart",
         {Kind::command,
          post,
          {{"term", {FieldType::term}}, {"start_time", {FieldType::start_time}}}}},
        {"/v1/reload", {Kind::command, post, {{"term", {FieldType::term}}}}},
        {"/v1/promote",
         {Kind::command,
          post,
          {{"term", term},
           {"min_lsn", {FieldType::lsn}},
           {"timeout_s", {FieldType::seconds}},
           {"members", {FieldType::names}},
           {"member_urls", {FieldType::member_urls}},
           // The new primary's synchronous standbys, and the newest record
           // the promotion found (its sets stay until the switch completes).
           {"synchronous", {FieldType::synchronous}},
           {"durability", {FieldType::durability}}}}},
        {"/v1/demote",
         {Kind::command, post, {{"term", term}, {"primary_conninfo", {FieldType::conninfo}}}}},
        {"/v1/follow",
         {Kind::command,
          post,
          {{"term", term}, {"primary_conninfo", {FieldType::conninfo, true}}}}},
        {"/v1/fence", {Kind::command, post, {{"term", term}}}},
        {"/v1/unfence", {Kind::command, post, {{"term", term}}}},
        {"/v1/members",
         {Kind::command, post, {{"term", term}, {"member_urls", {FieldType::member_urls, true}}}}},
        {"/v1/authority/promise",
         {Kind::authority,
          post,
          {{"term", term},
           {"proposer", {FieldType::name, true}},
           {"to", {FieldType::name, true}},
           {"membership_version", {FieldType::term, true}},
           {"members", {FieldType::names, true}}}}},
        {"/v1/authority/grant",
         {Kind::authority,
          post,
          {{"holder", {FieldType::name, true}},
           {"to", {FieldType::name, true}},
           {"term", term},
           {"ttl_ms", {FieldType::millis, true}},
           {"membership_version", {FieldType::term, true}},
           {"seq", {FieldType::term, true}},
           {"durability", {FieldType::durability}}}}},
        {"/v1/authority/release",
         {Kind::authority, post, {{"holder", {FieldType::name, true}}, {"term", term}}}},
        // A backup of this instance (its primary): {"type": "full"|"diff"|"incr"}.
        // With "primary" (the primary's backup.server, host included): a
        // standby backup of this replica.
        {"/v1/backup",
         {Kind::command,
          post,
          {{"type", {FieldType::backup_type}}, {"primary", {FieldType::backup_primary}}}}},
        // What the backup repository holds (pgbackrest info, read now).
        {"/v1/backups", {Kind::backups, get, {}}},
        {"/v1/replication",
         {Kind::command, post, {{"term", term}, {"synchronous", {FieldType::synchronous, true}}}}},
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
    std::optional<unsigned long long> max_lag;
    if (auto lag = query_param(std::string(req.target()), "lag")) {
        max_lag = probes::parse_size(*lag);
        if (!max_lag)
            return error_response(http::status::bad_request,
                                  "lag: expected bytes like 1048576 or 16MB", req.version());
    }
    probes::ProbeAnswer a;
    if (name == "/healthz")
        a = probes::liveness(in);
    else if (name == "/readyz")
        a = probes::readiness(in, max_lag);
    else if (name == "/startupz")
        a = probes::startup(in);
    else if (name == "/primary")
        a = probes::primary(in);
    else
        a = probes::replica(in, max_lag);
    metrics_.count_probe(name.substr(1), a.ok);
    nlohmann::json body = {{"status", a.ok ? "ok" : "fail"},
                           {"reason", a.reason},
                           {"role", to_string(state_.role.current())}};
    return json_response(a.ok ? http::status::ok : http::status::service_unavailable, body,
                         req.version());
}

std::optional<HttpResponse> Api::authorize(const HttpRequest& req, PeerInfo peer) const {
    if (client_cert_required_ && !peer.client_cert)
        return error_response(http::status::forbidden,
                              "mutating calls need a client certificate signed by the client CA",
                              req.version());
    if (!token_)
        return error_response(http::status::forbidden,
                              "mutating calls are disabled: no --api-token-file configured",
                              req.version());
    if (!bearer_matches(req, *token_)) {
        auto res = error_response(http::status::unauthorized, "missing or wrong bearer token",
                                  req.version());
        res.set(http::field::www_authenticate, "Bearer");
        return res;
    }
    return std::nullopt;
}

awaitable<HttpResponse> Api::command(const std::string& path, const HttpRequest& req,
                                     PeerInfo peer) {
    if (auto denied = authorize(req, peer)) co_return std::move(*denied);
    auto body = parse_command_body(req.body(), routes().at(path).fields);
    if (!body)
        co_return error_response(http::status::bad_request, body.error().message, req.version());
    // One command at a time is the daemon's rule (it also covers its own
    // self-fence), not a second flag here.
    log::info("api", "command", {{"path", path}});
    // Plain statements around co_await: GCC 12 miscompiles co_await inside ?:.
    std::optional<CommandAnswer> r;
    r.emplace(co_await actions_.run(path.substr(4), *body));
    if (!*r) {
        const Error& e = r->error();
        int code = http_status_or(e, 500);
        nlohmann::json body = {{"error", e.message}};
        for (const auto& [k, v] : e.fields) body[k] = v;
        co_return json_response(static_cast<http::status>(code), body, req.version());
    }
    co_return json_response(http::status::ok, r->value(), req.version());
}

HttpResponse Api::authority(const std::string& path, const HttpRequest& req, PeerInfo peer) {
    if (auto denied = authorize(req, peer)) return std::move(*denied);
    auto body = parse_command_body(req.body(), routes().at(path).fields);
    if (!body)
        return error_response(http::status::bad_request, body.error().message, req.version());
    auto r = actions_.authority(path.substr(std::string("/v1/authority/").size()), *body);
    if (!r) {
        int code = http_status_or(r.error(), 500);
        return error_response(static_cast<http::status>(code), r.error().message, req.version());
    }
    return json_response(http::status::ok, *r, req.version());
}

namespace {
// A request target is ASCII (RFC 3986: other bytes are percent-encoded).
// Beast lets bytes 0x80-0xFF through; refusing them here means no route,
// query parameter or error message ever sees them.
bool target_is_ascii(std::string_view target) {
    for (unsigned char c : target)
        if (c <= 0x20 || c >= 0x7f) return false;
    return true;
}
}  // namespace

awaitable<HttpResponse> Api::handle(HttpRequest req, PeerInfo peer) {
    std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    HttpResponse res;
    auto it = routes().end();
    if (!target_is_ascii(target)) {
        res = error_response(http::status::bad_request,
                             "the request target must be ASCII (percent-encode other bytes)",
                             req.version());
    } else if (it = routes().find(path); it == routes().end()) {
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
                res.body() = metrics_.render(state_, cfg_);
                break;
            case Kind::command:
                res = co_await command(path, req, peer);
                break;
            case Kind::authority:
                res = authority(path, req, peer);
                break;
            case Kind::backups:
                // It runs pgbackrest: behind the token like a command.
                if (auto denied = authorize(req, peer)) {
                    res = std::move(*denied);
                } else {
                    std::optional<CommandAnswer> r;
                    r.emplace(co_await actions_.backups());
                    res = *r ? json_response(http::status::ok, r->value(), req.version())
                             : error_response(
                                   static_cast<http::status>(http_status_or(r->error(), 500)),
                                   r->error().message, req.version());
                }
                break;
        }
    }
    metrics_.count_request(it == routes().end() ? "other" : path, res.result_int());
    co_return res;
}

}  // namespace im
