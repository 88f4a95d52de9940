#include "http_client.hpp"

#include <curl/curl.h>
#include <openssl/ssl.h>

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "asio.hpp"
#include "event.hpp"
#include "resolve.hpp"

namespace im::http_client {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {
// libcurl's URL handle, freed on every path.
using CurlUrl = std::unique_ptr<CURLU, decltype(&curl_url_cleanup)>;

std::optional<std::string> url_part(CURLU* h, CURLUPart part, unsigned flags = 0) {
    char* out = nullptr;
    if (curl_url_get(h, part, &out, flags) != CURLUE_OK || out == nullptr) return std::nullopt;
    std::string value(out);
    curl_free(out);
    return value;
}
}  // namespace

// libcurl's URL API does the parsing (RFC 3986, IPv6 literals, percent
// escapes); what is left here is what this client accepts of it.
Result<Url> parse_url(const std::string& text) {
    CurlUrl h(curl_url(), curl_url_cleanup);
    if (!h) return make_error("cannot parse URLs: out of memory");
    // No scheme guessing, no rewriting of what was given.
    if (CURLUcode rc = curl_url_set(h.get(), CURLUPART_URL, text.c_str(), CURLU_NON_SUPPORT_SCHEME);
        rc != CURLUE_OK)
        return make_error("bad URL '" + text + "': " + curl_url_strerror(rc));
    Url url;
    const std::string scheme = url_part(h.get(), CURLUPART_SCHEME).value_or("");
    if (scheme != "http" && scheme != "https")
        return make_error("only http:// and https:// URLs are supported: " + text);
    url.tls = scheme == "https";
    // Credentials and fragments have no meaning for this client: refused
    // rather than silently sent as a host name or dropped.
    if (url_part(h.get(), CURLUPART_USER) || url_part(h.get(), CURLUPART_PASSWORD))
        return make_error("credentials in a URL are not supported (use a token file): " + text);
    if (url_part(h.get(), CURLUPART_FRAGMENT))
        return make_error("a URL fragment is not supported: " + text);
    url.host = url_part(h.get(), CURLUPART_HOST).value_or("");
    if (url.host.size() >= 2 && url.host.front() == '[' && url.host.back() == ']')
        url.host = url.host.substr(1, url.host.size() - 2);
    if (url.host.empty()) return make_error("bad URL '" + text + "': no host");
    url.port = url_part(h.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT).value_or("");
    if (url.port.empty()) return make_error("bad URL '" + text + "': no port");
    url.path = url_part(h.get(), CURLUPART_PATH).value_or("/");
    if (url.path.empty()) url.path = "/";
    if (auto query = url_part(h.get(), CURLUPART_QUERY)) url.path += "?" + *query;
    return url;
}

namespace {

// One request and its answer over a connected stream (plain or TLS).
template <class Stream>
awaitable<HttpReply> exchange(Stream& stream, http::request<http::string_body>& req, bool head) {
    co_await http::async_write(stream, req, use_awaitable);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    // A HEAD answer has Content-Length but no body.
    parser.skip(head);
    co_await http::async_read(stream, buffer, parser, use_awaitable);
    co_return HttpReply{parser.get().result_int(), parser.get().body()};
}

// A request whose answer is read as it arrives (a watch): a 200 body goes
// to `on_data` piece by piece until it returns false or the server ends it;
// any other status's body is kept whole, for the error message.
template <class Stream>
awaitable<HttpReply> exchange_streaming(Stream& stream, http::request<http::string_body>& req,
                                        std::chrono::milliseconds idle,
                                        const std::function<bool(std::string_view)>& on_data) {
    co_await http::async_write(stream, req, use_awaitable);
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    co_await http::async_read_header(stream, buffer, parser, use_awaitable);
    HttpReply reply{parser.get().result_int(), {}};
    char chunk[16 * 1024];
    while (!parser.is_done()) {
        parser.get().body().data = chunk;
        parser.get().body().size = sizeof chunk;
        beast::get_lowest_layer(stream).expires_after(idle);
        boost::system::error_code ec;
        co_await http::async_read_some(stream, buffer, parser,
                                       asio::redirect_error(use_awaitable, ec));
        if (ec == http::error::need_buffer) ec = {};
        if (ec) throw boost::system::system_error(ec);
        size_t n = sizeof chunk - parser.get().body().size;
        if (reply.status != 200) {
            if (reply.body.size() < 64 * 1024) reply.body.append(chunk, n);
        } else if (n > 0 && !on_data(std::string_view(chunk, n))) {
            break;
        }
    }
    co_return reply;
}

http::request<http::string_body> make_request(const std::string& method, const Url& url,
                                              std::string body, const std::string& bearer_token,
                                              const std::string& content_type) {
    http::request<http::string_body> req{http::string_to_verb(method), url.path, 11};
    req.set(http::field::host, url.host);
    req.set(http::field::user_agent, "instance-manager");
    if (!bearer_token.empty()) req.set(http::field::authorization, "Bearer " + bearer_token);
    if (!body.empty()) {
        req.set(http::field::content_type, content_type);
        req.body() = std::move(body);
    }
    req.prepare_payload();
    return req;
}

// Connects (for https: handshakes, verifying the server) and lets `talk`
// have the connected stream; every failure becomes an error value.
template <class Talk>
awaitable<Result<HttpReply>> over_connection(Url url, std::chrono::milliseconds timeout,
                                             std::shared_ptr<asio::ssl::context> tls,
                                             bool verify_host, Talk talk) {
    auto ex = co_await asio::this_coro::executor;
    if (url.tls && !tls) co_return make_error("https needs a TLS context");
    // One deadline for the whole exchange, the name's lookup included.
    auto deadline = std::chrono::steady_clock::now() + timeout;
    unsigned short port = 0;
    auto [end, perr] = std::from_chars(url.port.data(), url.port.data() + url.port.size(), port);
    if (perr != std::errc() || end != url.port.data() + url.port.size() || port == 0)
        co_return make_error("bad port in URL: " + url.port);
    auto addresses = co_await resolve_host(url.host, deadline);
    if (!addresses) co_return make_error("cannot connect: " + addresses.error().message);
    std::vector<asio::ip::tcp::endpoint> endpoints;
    for (const auto& a : *addresses) endpoints.emplace_back(a, port);
    std::string stage = "cannot connect";
    try {
        beast::tcp_stream tcp(ex);
        tcp.expires_at(deadline);
        co_await tcp.async_connect(endpoints, use_awaitable);
        stage = "no answer";
        if (!url.tls) co_return co_await talk(tcp);
        beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp), *tls);
        if (verify_host) {
            // SNI and the host name check against the certificate.
            SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str());
            stream.set_verify_callback(asio::ssl::host_name_verification(url.host));
        }
        stage = "TLS handshake failed";
        co_await stream.async_handshake(asio::ssl::stream_base::client, use_awaitable);
        stage = "no answer";
        HttpReply reply = co_await talk(stream);
        boost::system::error_code ignored;
        beast::get_lowest_layer(stream).expires_after(std::chrono::milliseconds(500));
        co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ignored));
        co_return reply;
    } catch (const boost::system::system_error& err) {
        co_return make_error(stage + ": " +
                             (err.code() == beast::error::timeout ? std::string("timed out")
                                                                  : err.code().message()));
    }
}

}  // namespace

Result<std::shared_ptr<asio::ssl::context>> make_client_tls(const TlsClientOptions& tls) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    boost::system::error_code ec;
    if (tls.insecure) {
        ctx->set_verify_mode(asio::ssl::verify_none, ec);
    } else {
        if (tls.ca_file.empty())
            ctx->set_default_verify_paths(ec);
        else
            ctx->load_verify_file(tls.ca_file, ec);
        if (ec) return make_error("CA file " + tls.ca_file + ": " + ec.message());
        ctx->set_verify_mode(asio::ssl::verify_peer, ec);
    }
    if (!tls.cert_file.empty()) {
        ctx->use_certificate_chain_file(tls.cert_file, ec);
        if (ec) return make_error("client certificate " + tls.cert_file + ": " + ec.message());
        ctx->use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
        if (ec) return make_error("client key " + tls.key_file + ": " + ec.message());
    }
    return ctx;
}

awaitable<Result<HttpReply>> async_http_request(std::string method, Url url, std::string body,
                                                std::string bearer_token,
                                                std::chrono::milliseconds timeout,
                                                std::shared_ptr<asio::ssl::context> tls,
                                                bool verify_host, std::string content_type) {
    auto req = make_request(method, url, std::move(body), bearer_token, content_type);
    bool head = method == "HEAD";
    co_return co_await over_connection(url, timeout, tls, verify_host,
                                       [&](auto& stream) -> awaitable<HttpReply> {
                                           co_return co_await exchange(stream, req, head);
                                       });
}

awaitable<Result<HttpReply>> async_http_stream(Url url, std::string bearer_token,
                                               std::chrono::milliseconds connect_timeout,
                                               std::chrono::milliseconds idle_timeout,
                                               std::shared_ptr<asio::ssl::context> tls,
                                               bool verify_host,
                                               std::function<bool(std::string_view)> on_data) {
    auto req = make_request("GET", url, "", bearer_token, "");
    co_return co_await over_connection(
        url, connect_timeout, tls, verify_host, [&](auto& stream) -> awaitable<HttpReply> {
            co_return co_await exchange_streaming(stream, req, idle_timeout, on_data);
        });
}

awaitable<std::vector<Result<HttpReply>>> async_http_all(std::vector<HttpCall> calls,
                                                         std::string bearer_token,
                                                         std::chrono::milliseconds timeout,
                                                         std::shared_ptr<asio::ssl::context> tls,
                                                         bool verify_host) {
    auto ex = co_await asio::this_coro::executor;
    // Shared with the requests: one that outlives this wait finds it still alive.
    struct Pending {
        explicit Pending(asio::any_io_executor e, size_t n) : done(std::move(e)), answers(n) {}
        Event done;
        std::vector<std::optional<Result<HttpReply>>> answers;
        size_t remaining = 0;
    };
    auto pending = std::make_shared<Pending>(ex, calls.size());
    pending->remaining = calls.size();
    for (size_t i = 0; i < calls.size(); ++i) {
        auto one = [](std::shared_ptr<Pending> p, size_t i, HttpCall c, std::string token,
                      std::chrono::milliseconds timeout, std::shared_ptr<asio::ssl::context> tls,
                      bool verify_host) -> awaitable<void> {
            p->answers[i].emplace(co_await async_http_request(c.method, c.url, c.body, token,
                                                              timeout, tls, verify_host));
            if (--p->remaining == 0) p->done.set();
        };
        asio::co_spawn(ex, one(pending, i, calls[i], bearer_token, timeout, tls, verify_host),
                       asio::detached);
    }
    if (!calls.empty()) co_await pending->done.wait(timeout + std::chrono::seconds(1));
    std::vector<Result<HttpReply>> out;
    for (auto& a : pending->answers)
        out.push_back(a ? std::move(*a) : Result<HttpReply>(make_error("no answer")));
    co_return out;
}

Result<HttpReply> http_request(const std::string& method, const Url& url, const std::string& body,
                               const std::string& bearer_token, std::chrono::milliseconds timeout,
                               const TlsClientOptions& tls) {
    std::shared_ptr<asio::ssl::context> ctx;
    if (url.tls) {
        auto made = make_client_tls(tls);
        if (!made) return made.error();
        ctx = *made;
    }
    asio::io_context io;
    std::optional<Result<HttpReply>> outcome;
    auto run = [&]() -> awaitable<void> {
        outcome.emplace(co_await async_http_request(method, url, body, bearer_token, timeout, ctx,
                                                    !tls.insecure));
    };
    asio::co_spawn(io, run(), asio::detached);
    io.run();
    if (!outcome) return make_error("no answer");
    return std::move(*outcome);
}

}  // namespace im::http_client
