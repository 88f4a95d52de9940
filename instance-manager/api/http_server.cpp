#include "api/http_server.hpp"

#include <fcntl.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/beast/ssl.hpp>

#include "log.hpp"

namespace im {

namespace beast = boost::beast;

Result<std::shared_ptr<asio::ssl::context>> make_server_tls(const std::string& cert,
                                                            const std::string& key,
                                                            const std::string& client_ca) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    boost::system::error_code ec;
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                         asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                         asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                     ec);
    ctx->use_certificate_chain_file(cert, ec);
    if (ec) return make_error("--tls-cert " + cert + ": " + ec.message());
    ctx->use_private_key_file(key, asio::ssl::context::pem, ec);
    if (ec) return make_error("--tls-key " + key + ": " + ec.message());
    if (!client_ca.empty()) {
        ctx->load_verify_file(client_ca, ec);
        if (ec) return make_error("--tls-client-ca " + client_ca + ": " + ec.message());
        // Asked for and verified when presented; whether one is needed is the
        // API's decision per call (probes come without).
        ctx->set_verify_mode(asio::ssl::verify_peer, ec);
    }
    return ctx;
}

HttpServer::HttpServer(asio::any_io_executor ex, HttpLimits limits, Handler handler,
                       std::shared_ptr<asio::ssl::context> tls)
    : ex_(ex),
      limits_(limits),
      handler_(std::move(handler)),
      tls_(std::move(tls)),
      acceptor_(ex),
      slots_(limits.max_connections) {}

Status HttpServer::listen(const std::string& host, int port) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) return make_error("--http-listen: bad address '" + host + "'");
    asio::ip::tcp::endpoint ep(addr, static_cast<unsigned short>(port));
    acceptor_.open(ep.protocol(), ec);
    // Asio opens without SOCK_CLOEXEC; spawn() closes what a child inherits
    // anyway, this keeps the socket from any exec that does not go through it.
    if (!ec) ::fcntl(acceptor_.native_handle(), F_SETFD, FD_CLOEXEC);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        return make_error("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                          ec.message());
    port_ = acceptor_.local_endpoint().port();
    log::info("http", "listening", {{"address", host}, {"port", port_}});
    asio::co_spawn(ex_, accept_loop(), asio::detached);
    return Ok{};
}

void HttpServer::stop() {
    boost::system::error_code ec;
    acceptor_.close(ec);
}

awaitable<void> HttpServer::drain(std::chrono::milliseconds timeout) {
    stop();
    if (answering_ == 0) co_return;
    drained_ = std::make_unique<Event>(ex_);
    co_await drained_->wait(timeout);
}

awaitable<void> HttpServer::accept_loop() {
    while (acceptor_.is_open()) {
        boost::system::error_code ec;
        auto socket = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
        if (ec) {
            if (ec == asio::error::operation_aborted) break;
            // EMFILE and friends: back off briefly rather than spin.
            asio::steady_timer t(ex_, std::chrono::milliseconds(50));
            co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
            continue;
        }
        auto slot = slots_.take();
        if (!slot) {
            // Every slot is answering a request: a short answer and close,
            // so a flood cannot starve the loop.
            static const std::string busy =
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: "
                "close\r\n"
                "Content-Length: 38\r\n\r\n{\"error\": \"too many open connections\"}";
            socket.non_blocking(true, ec);
            socket.write_some(asio::buffer(busy), ec);
            socket.close(ec);
            continue;
        }
        ::fcntl(socket.native_handle(), F_SETFD, FD_CLOEXEC);
        socket.set_option(asio::ip::tcp::no_delay(true), ec);
        asio::co_spawn(ex_, session(std::move(socket), std::move(slot)), asio::detached);
    }
}

namespace {
// While a session waits for its client, a new connection may take its slot:
// this closes the socket, which ends the pending read or handshake.
template <class Lowest>
std::function<void()> closer(Lowest& lowest) {
    return [&lowest] {
        boost::system::error_code ec;
        lowest.socket().close(ec);
    };
}
}  // namespace

awaitable<void> HttpServer::session(asio::ip::tcp::socket socket,
                                    std::unique_ptr<ConnectionSlots::Slot> slot) {
    try {
        if (!tls_) {
            beast::tcp_stream stream(std::move(socket));
            co_await serve(stream, PeerInfo{}, *slot);
            boost::system::error_code ec;
            stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
            co_return;
        }
        beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *tls_);
        beast::get_lowest_layer(stream).expires_after(limits_.timeout);
        boost::system::error_code ec;
        slot->waiting(closer(beast::get_lowest_layer(stream)));
        co_await stream.async_handshake(asio::ssl::stream_base::server,
                                        asio::redirect_error(use_awaitable, ec));
        slot->busy();
        if (ec) {
            log::debug("http", "TLS handshake failed", {{"error", ec.message()}});
            co_return;
        }
        PeerInfo peer{true, false};
        // With verify_peer a presented certificate that fails verification
        // already failed the handshake: one that is here is verified.
        if (X509* cert = SSL_get1_peer_certificate(stream.native_handle())) {
            peer.client_cert = SSL_get_verify_result(stream.native_handle()) == X509_V_OK;
            X509_free(cert);
        }
        co_await serve(stream, peer, *slot);
        if (slot->evicted()) co_return;
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
        co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ec));
    } catch (const std::exception& e) {
        // Nothing may escape a session: log and drop the connection.
        log::error("http", "session failed", {{"error", e.what()}});
    }
}

template <class Stream>
awaitable<void> HttpServer::serve(Stream& stream, PeerInfo peer, ConnectionSlots::Slot& slot) {
    auto& lowest = beast::get_lowest_layer(stream);
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(limits_.max_body);
        parser.header_limit(static_cast<std::uint32_t>(limits_.max_header));
        lowest.expires_after(limits_.timeout);
        boost::system::error_code ec;
        slot.waiting(closer(lowest));
        co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
        slot.busy();
        if (slot.evicted()) break;
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
            ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
            ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
            break;
        if (ec) {
            auto status = ec == http::error::body_limit ? http::status::payload_too_large
                          : ec == http::error::header_limit
                              ? http::status::request_header_fields_too_large
                              : http::status::bad_request;
            auto res = error_response(
                status, status == http::status::payload_too_large
                            ? "request body over " + std::to_string(limits_.max_body) + " bytes"
                            : "bad request: " + ec.message());
            res.keep_alive(false);
            res.prepare_payload();
            lowest.expires_after(limits_.timeout);
            co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
            break;
        }
        HttpRequest req = parser.release();
        // Counted until its answer is written (or the session fails): drain() waits.
        struct Answering {
            HttpServer& server;
            explicit Answering(HttpServer& s) : server(s) { ++server.answering_; }
            ~Answering() {
                if (--server.answering_ == 0 && server.drained_) server.drained_->set();
            }
        } answering{*this};
        bool head = req.method() == http::verb::head;
        bool keep_alive = req.keep_alive();
        unsigned version = req.version();
        // A handler that throws is a bug, but the client still gets an
        // answer rather than a dropped connection.
        std::optional<HttpResponse> answer;
        try {
            answer.emplace(co_await handler_(std::move(req), peer));
        } catch (const std::exception& e) {
            log::error("http", "handler failed", {{"error", e.what()}});
        }
        HttpResponse res = answer ? std::move(*answer)
                                  : error_response(http::status::internal_server_error,
                                                   "internal error", version);
        res.set(http::field::server, "instance-manager");
        res.keep_alive(keep_alive);
        res.prepare_payload();
        if (head) {
            // HEAD: the same headers (Content-Length included), no body.
            auto length = res.body().size();
            res.body().clear();
            res.content_length(length);
        }
        lowest.expires_after(limits_.timeout);
        co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
        if (ec || !keep_alive) break;
    }
}

}  // namespace im
