#include "http_get.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "asio.hpp"

namespace im::probes {

namespace beast = boost::beast;
namespace http = beast::http;

Result<Url> parse_url(const std::string& text) {
    const std::string scheme = "http://";
    if (text.compare(0, scheme.size(), scheme) != 0)
        return make_error("only http:// URLs are supported: " + text);
    std::string rest = text.substr(scheme.size());
    Url url;
    auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    if (slash != std::string::npos) url.path = rest.substr(slash);
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string::npos) return make_error("bad IPv6 address in " + text);
        url.host = authority.substr(1, close - 1);
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':') return make_error("bad URL: " + text);
            url.port = authority.substr(close + 2);
        }
    } else {
        auto colon = authority.rfind(':');
        url.host = authority.substr(0, colon);
        if (colon != std::string::npos) url.port = authority.substr(colon + 1);
    }
    if (url.host.empty() || url.port.empty()) return make_error("bad URL: " + text);
    return url;
}

Result<HttpReply> http_request(const std::string& method, const Url& url, const std::string& body,
                               const std::string& bearer_token, std::chrono::milliseconds timeout) {
    asio::io_context io;
    beast::tcp_stream stream(io);
    asio::ip::tcp::resolver resolver(io);
    boost::system::error_code ec;
    auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) return make_error("cannot resolve " + url.host + ": " + ec.message());

    http::request<http::string_body> req{http::string_to_verb(method), url.path, 11};
    req.set(http::field::host, url.host);
    req.set(http::field::user_agent, "instance-probe");
    if (!bearer_token.empty()) req.set(http::field::authorization, "Bearer " + bearer_token);
    if (!body.empty()) {
        req.set(http::field::content_type, "application/json");
        req.body() = body;
    }
    req.prepare_payload();

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    // A HEAD answer has Content-Length but no body.
    parser.skip(method == "HEAD");
    std::string failure;
    stream.expires_after(timeout);
    stream.async_connect(endpoints, [&](boost::system::error_code e, auto) {
        if (e) {
            failure = "cannot connect: " + e.message();
            return;
        }
        http::async_write(stream, req, [&](boost::system::error_code e2, size_t) {
            if (e2) {
                failure = "cannot send: " + e2.message();
                return;
            }
            http::async_read(stream, buffer, parser, [&](boost::system::error_code e3, size_t) {
                if (e3) failure = "no answer: " + e3.message();
            });
        });
    });
    io.run();
    if (!failure.empty()) return make_error(failure);
    return HttpReply{parser.get().result_int(), parser.get().body()};
}

}  // namespace im::probes
