#pragma once
// The HTTP API: routing, authentication and validation are decided here;
// probe and status answers are pure views of InstanceState, and commands
// are delegated to ApiActions (the daemon).
#include <boost/beast/http.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "api/status_report.hpp"
#include "asio.hpp"
#include "config.hpp"
#include "daemon/instance_state.hpp"
#include "result.hpp"

namespace im {

namespace http = boost::beast::http;
using HttpRequest = http::request<http::string_body>;
using HttpResponse = http::response<http::string_body>;

// A command's outcome: a JSON body on success, or an Error whose code is the
// HTTP status to answer with (409 for a state that does not fit, ...).
using CommandAnswer = Result<nlohmann::json>;

// What the transport knows about the client.
struct PeerInfo {
    bool tls = false;
    bool client_cert = false;  // presented a certificate the client CA verified
};

class ApiActions {
  public:
    virtual ~ApiActions() = default;
    virtual awaitable<CommandAnswer> run(const std::string& command,
                                         const nlohmann::json& body) = 0;
    // The write authority's member endpoints (promise, grant, release): never
    // behind a role command, answered at once (quorum/member_service.hpp).
    virtual CommandAnswer authority(const std::string& what, const nlohmann::json& body) = 0;
    // What the backup repository holds (pgbackrest info).
    virtual awaitable<CommandAnswer> backups() = 0;
};

// Whether the request carries "Authorization: Bearer <token>" (constant-time compare).
bool bearer_matches(const HttpRequest& req, const std::string& token);

// Clears a flag when the scope ends (the controller's one failover or switchover at a time).
struct ScopedFlag {
    explicit ScopedFlag(bool& f) : flag(f) { flag = true; }
    ~ScopedFlag() { flag = false; }
    ScopedFlag(const ScopedFlag&) = delete;
    ScopedFlag& operator=(const ScopedFlag&) = delete;
    bool& flag;
};

HttpResponse json_response(http::status status, const nlohmann::json& body, unsigned version = 11);
HttpResponse error_response(http::status status, const std::string& message, unsigned version = 11);

// The fields a command accepts, with their types.
enum class FieldType {
    term,
    lsn,
    seconds,
    conninfo,
    name,
    names,
    synchronous,
    millis,
    member_urls,
    durability,  // a durability record (authority/durability.hpp)
    flag,
    backup_type,  // "full", "diff" or "incr"
    backup_primary,  // the primary's backup.server (backup::parse_primary_server)
    start_time    // postgres.start_time as status reports it
};
struct FieldSpec {
    FieldType type;
    bool required = false;
};
using CommandSpec = std::map<std::string, FieldSpec>;

// Parses a command body: empty means {}; it must be an object whose keys are
// all in `spec`, each of its type, the required ones present. The error
// message names the offending part.
Result<nlohmann::json> parse_command_body(const std::string& body, const CommandSpec& spec);

class Api {
  public:
    Api(const Config& cfg, InstanceState& state, Metrics& metrics, ApiActions& actions,
        std::optional<std::string> token);

    // `client_cert_required`: mutating calls need a verified client
    // certificate (mTLS) besides the token.
    void require_client_cert(bool on) { client_cert_required_ = on; }

    awaitable<HttpResponse> handle(HttpRequest req, PeerInfo peer = {});

  private:
    HttpResponse probe(const std::string& name, const HttpRequest& req);
    awaitable<HttpResponse> command(const std::string& path, const HttpRequest& req, PeerInfo peer);
    HttpResponse authority(const std::string& path, const HttpRequest& req, PeerInfo peer);
    std::optional<HttpResponse> authorize(const HttpRequest& req, PeerInfo peer) const;

    const Config& cfg_;
    InstanceState& state_;
    Metrics& metrics_;
    ApiActions& actions_;
    std::optional<std::string> token_;
    bool client_cert_required_ = false;
};

}  // namespace im
