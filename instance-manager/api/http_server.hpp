#pragma once
// The HTTP listener and its sessions (Boost.Beast) on the one event loop:
// keep-alive, a timeout for slow or idle clients, a body limit, and a cap
// on open connections that a flood of idle clients cannot hold against the
// probes (api/connection_slots.hpp).
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <memory>
#include <string>

#include "api/api.hpp"
#include "api/connection_slots.hpp"
#include "asio.hpp"
#include "event.hpp"
#include "result.hpp"

namespace im {

struct HttpLimits {
    std::chrono::milliseconds timeout{10'000};
    size_t max_connections = 512;
    size_t max_body = 64 * 1024;
    size_t max_header = 8 * 1024;
};

// A TLS context for the API: the server certificate and key, and with a
// client CA, client certificates are asked for and verified (but not
// required at the handshake: probes come without one).
Result<std::shared_ptr<asio::ssl::context>> make_server_tls(const std::string& cert,
                                                            const std::string& key,
                                                            const std::string& client_ca);

class HttpServer {
  public:
    using Handler = std::function<awaitable<HttpResponse>(HttpRequest, PeerInfo)>;

    // Without `tls` the API speaks plain HTTP.
    HttpServer(asio::any_io_executor ex, HttpLimits limits, Handler handler,
               std::shared_ptr<asio::ssl::context> tls = nullptr);

    Status listen(const std::string& host, int port);
    unsigned short port() const { return port_; }
    void stop();
    // Stops accepting and waits (at most `timeout`) until every request
    // already being handled has had its answer written: a command that a
    // shutdown let finish (a fence) reaches its caller.
    awaitable<void> drain(std::chrono::milliseconds timeout);
    size_t open_connections() const { return slots_.open(); }
    // Idle or slow connections closed to make room for new ones.
    size_t evictions() const { return slots_.evictions(); }

  private:
    awaitable<void> accept_loop();
    awaitable<void> session(asio::ip::tcp::socket socket,
                            std::unique_ptr<ConnectionSlots::Slot> slot);
    template <class Stream>
    awaitable<void> serve(Stream& stream, PeerInfo peer, ConnectionSlots::Slot& slot);

    asio::any_io_executor ex_;
    HttpLimits limits_;
    Handler handler_;
    std::shared_ptr<asio::ssl::context> tls_;
    asio::ip::tcp::acceptor acceptor_;
    unsigned short port_ = 0;
    ConnectionSlots slots_;
    size_t answering_ = 0;            // requests read whose answer is not written yet
    std::unique_ptr<Event> drained_;  // set by the last of them once drain() waits
};

}  // namespace im
