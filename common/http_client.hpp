#pragma once
// A minimal HTTP/1.1 client over Boost.Beast for probes and tools: one
// request, one response, a deadline for the whole exchange.
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "asio.hpp"
#include "result.hpp"

namespace im::http_client {

struct Url {
    bool tls = false;
    std::string host;
    std::string port = "80";
    std::string path = "/";
};

// Accepts "http[s]://host[:port][/path][?query]" (IPv6 as [addr]); parsed by
// libcurl's URL API. Credentials and fragments are refused.
Result<Url> parse_url(const std::string& text);

struct HttpReply {
    unsigned status = 0;
    std::string body;
};

// For https: the server is verified against `ca_file` (else the system's
// CAs), host name included, unless `insecure`; `cert_file`/`key_file` are a
// client certificate for mTLS.
struct TlsClientOptions {
    std::string ca_file;
    std::string cert_file;
    std::string key_file;
    bool insecure = false;
};

// A client TLS context from the options (shared by many requests).
Result<std::shared_ptr<asio::ssl::context>> make_client_tls(const TlsClientOptions& tls);

// One request on the caller's executor; `tls` is needed for https URLs.
// Failures (connect, timeout, handshake) are errors, never exceptions.
awaitable<Result<HttpReply>> async_http_request(std::string method, Url url, std::string body,
                                                std::string bearer_token,
                                                std::chrono::milliseconds timeout,
                                                std::shared_ptr<asio::ssl::context> tls = nullptr,
                                                bool verify_host = true,
                                                std::string content_type = "application/json");

// A GET whose 200 answer is read as it arrives (a Kubernetes watch): each
// piece of the body goes to `on_data` until it returns false or the server
// ends the answer; the reply then holds the status (and, for any other
// status, the whole body). `idle_timeout` bounds the wait for each piece.
awaitable<Result<HttpReply>> async_http_stream(Url url, std::string bearer_token,
                                               std::chrono::milliseconds connect_timeout,
                                               std::chrono::milliseconds idle_timeout,
                                               std::shared_ptr<asio::ssl::context> tls,
                                               bool verify_host,
                                               std::function<bool(std::string_view)> on_data);

// Many requests at once (the controller's polls, a primary's majority
// check); the answers in the order of the requests.
struct HttpCall {
    std::string method = "GET";
    Url url;
    std::string body;
};
awaitable<std::vector<Result<HttpReply>>> async_http_all(
    std::vector<HttpCall> calls, std::string bearer_token, std::chrono::milliseconds timeout,
    std::shared_ptr<asio::ssl::context> tls = nullptr, bool verify_host = true);

// The same, blocking, with its own event loop (for tools and tests).
Result<HttpReply> http_request(const std::string& method, const Url& url, const std::string& body,
                               const std::string& bearer_token, std::chrono::milliseconds timeout,
                               const TlsClientOptions& tls = {});

}  // namespace im::http_client
