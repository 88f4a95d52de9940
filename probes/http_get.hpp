#pragma once
// A minimal HTTP/1.1 client over Boost.Beast for probes and tools: one
// request, one response, a deadline for the whole exchange.
#include <chrono>
#include <string>

#include "result.hpp"

namespace im::probes {

struct Url {
    bool tls = false;
    std::string host;
    std::string port = "80";
    std::string path = "/";
};

// Accepts "http[s]://host[:port][/path]" (IPv6 as [addr]).
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

Result<HttpReply> http_request(const std::string& method, const Url& url, const std::string& body,
                               const std::string& bearer_token, std::chrono::milliseconds timeout,
                               const TlsClientOptions& tls = {});

}  // namespace im::probes
