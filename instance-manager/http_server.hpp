#pragma once
// The HTTP listener and its sessions (Boost.Beast) on the one event loop:
// keep-alive, a timeout for slow or idle clients, a body limit, and a cap
// on open connections.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <memory>
#include <string>

#include "api.hpp"
#include "asio.hpp"
#include "result.hpp"

namespace im {

struct HttpLimits {
    std::chrono::milliseconds timeout{10'000};
    size_t max_connections = 512;
    size_t max_body = 64 * 1024;
    size_t max_header = 8 * 1024;
};

class HttpServer {
  public:
    using Handler = std::function<awaitable<HttpResponse>(HttpRequest)>;

    HttpServer(asio::any_io_executor ex, HttpLimits limits, Handler handler);

    Status listen(const std::string& host, int port);
    unsigned short port() const { return port_; }
    void stop();
    size_t open_connections() const { return *open_; }

  private:
    awaitable<void> accept_loop();
    awaitable<void> session(asio::ip::tcp::socket socket);

    asio::any_io_executor ex_;
    HttpLimits limits_;
    Handler handler_;
    asio::ip::tcp::acceptor acceptor_;
    unsigned short port_ = 0;
    std::shared_ptr<size_t> open_ = std::make_shared<size_t>(0);
};

}  // namespace im
