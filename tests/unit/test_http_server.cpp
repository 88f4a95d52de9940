// The HTTP server over real loopback sockets: keep-alive, limits, timeouts.
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "api/http_server.hpp"
#include "event.hpp"
#include "http_client.hpp"

using namespace im;

namespace {

struct Server {
    asio::io_context io;
    HttpServer server;
    std::thread thread;
    std::atomic<int> handled = 0;
    std::atomic<int> holding = 0;  // requests to /hold waiting for `release`
    Event release{io.get_executor()};

    explicit Server(HttpLimits limits)
        : server(io.get_executor(), limits,
                 [this](HttpRequest req, PeerInfo) -> awaitable<HttpResponse> {
                     ++handled;
                     if (req.target() == "/throw") throw std::runtime_error("handler bug");
                     if (req.target() == "/hold") {
                         ++holding;
                         co_await release.wait();
                     }
                     co_return json_response(http::status::ok, {{"path", std::string(req.target())},
                                                                {"bytes", req.body().size()}});
                 }) {
        REQUIRE(server.listen("127.0.0.1", 0).ok());
        thread = std::thread([this] { io.run(); });
    }
    ~Server() {
        asio::post(io, [this] {
            server.stop();
            io.stop();
        });
        thread.join();
    }
};

// Sends raw bytes and reads until the server closes or `max` bytes arrive.
std::string raw_exchange(unsigned short port, const std::string& bytes, size_t max = 1 << 20) {
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    boost::system::error_code ec;
    asio::write(s, asio::buffer(bytes), ec);
    std::string out;
    char buf[4096];
    while (out.size() < max) {
        size_t n = s.read_some(asio::buffer(buf), ec);
        out.append(buf, n);
        if (ec) break;
    }
    return out;
}

}  // namespace

TEST_CASE("keep-alive serves several requests on one connection", "[http]") {
    Server srv(HttpLimits{});
    std::string two =
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    auto out = raw_exchange(srv.server.port(), two);
    CHECK(out.find("\"path\":\"/a\"") != std::string::npos);
    CHECK(out.find("\"path\":\"/b\"") != std::string::npos);
}

TEST_CASE("a body over the limit is 413 and never reaches the handler", "[http]") {
    HttpLimits limits;
    limits.max_body = 1024;
    Server srv(limits);
    std::string body(4096, 'x');
    auto out =
        raw_exchange(srv.server.port(),
                     "POST /v1/restart HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n" + body);
    CHECK(out.rfind("HTTP/1.1 413", 0) == 0);
    CHECK(out.find("\"error\"") != std::string::npos);
    CHECK(srv.handled == 0);
}

TEST_CASE("garbage is 400", "[http]") {
    Server srv(HttpLimits{});
    auto out = raw_exchange(srv.server.port(), "NOT HTTP AT ALL\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 400", 0) == 0);
    CHECK(srv.handled == 0);
}

TEST_CASE("bytes that are not UTF-8 in the target are answered, not a dropped connection",
          "[http]") {
    Server srv(HttpLimits{});
    // The handler echoes the target: its answer must still be written.
    auto out = raw_exchange(srv.server.port(),
                            "GET /caf\xc3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(srv.handled == 1);
}

TEST_CASE("a handler that throws gets its client a 500", "[http]") {
    Server srv(HttpLimits{});
    auto out = raw_exchange(srv.server.port(),
                            "GET /throw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 500", 0) == 0);
}

TEST_CASE("invalid request lines and headers are 400 and never reach the handler", "[http]") {
    Server srv(HttpLimits{});
    for (std::string bad : {std::string("GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n", 30),
                            std::string("GET /a HTTP/1.1\r\nHost: x\0y\r\n\r\n", 30),
                            std::string("GET /a HTTP/1.1\r\nBad Name: x\r\n\r\n"),
                            std::string("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n"),
                            std::string("GET /a HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n")}) {
        INFO(bad);
        CHECK(raw_exchange(srv.server.port(), bad).rfind("HTTP/1.1 400", 0) == 0);
    }
    CHECK(srv.handled == 0);
}

TEST_CASE("idle and slow clients are cut off", "[http]") {
    HttpLimits limits;
    limits.timeout = std::chrono::milliseconds(200);
    Server srv(limits);
    auto start = std::chrono::steady_clock::now();
    // Half a request line, then silence: the server must close the connection.
    auto out = raw_exchange(srv.server.port(), "GET /a HT");
    CHECK(out.empty());
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

// Waits (bounded) until `cond` holds; the server runs on its own thread.
bool eventually(const std::function<bool()>& cond) {
    for (int i = 0; i < 500 && !cond(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return cond();
}

TEST_CASE("only when every slot is answering does a new connection get 503", "[http]") {
    HttpLimits limits;
    limits.max_connections = 2;
    limits.timeout = std::chrono::seconds(5);
    Server srv(limits);
    asio::io_context io;
    std::vector<asio::ip::tcp::socket> held;
    for (int i = 0; i < 2; ++i) {
        held.emplace_back(io);
        held.back().connect({asio::ip::make_address("127.0.0.1"), srv.server.port()});
        asio::write(held.back(),
                    asio::buffer(std::string("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")));
    }
    REQUIRE(eventually([&] { return srv.holding == 2; }));
    auto out = raw_exchange(srv.server.port(), "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 503", 0) == 0);
    CHECK(srv.server.evictions() == 0);
    asio::post(srv.io, [&] { srv.release.set(); });
    held.clear();
    REQUIRE(eventually([&] { return srv.server.open_connections() == 0; }));
    auto ok = http_client::http_request(
        "GET", {false, "127.0.0.1", std::to_string(srv.server.port()), "/x"}, "", "",
        std::chrono::seconds(2));
    REQUIRE(ok.ok());
    CHECK(ok->status == 200);
}

TEST_CASE("a flood of idle and slow clients beyond the cap does not keep probes out", "[http]") {
    HttpLimits limits;
    limits.max_connections = 8;
    limits.timeout = std::chrono::seconds(30);
    Server srv(limits);
    asio::io_context io;
    std::vector<asio::ip::tcp::socket> flood;
    auto more_flood = [&](int n) {
        for (int i = 0; i < n; ++i) {
            flood.emplace_back(io);
            flood.back().connect({asio::ip::make_address("127.0.0.1"), srv.server.port()});
            // Half idle, half a request that never ends.
            if (i % 2) asio::write(flood.back(), asio::buffer(std::string("GET /slow HT")));
        }
    };
    more_flood(40);
    REQUIRE(eventually([&] { return srv.server.open_connections() == 8; }));
    // Kubelet's probes, each on a new connection, while the flood goes on.
    int ok = 0;
    for (int i = 0; i < 20; ++i) {
        auto r = http_client::http_request(
            "GET", {false, "127.0.0.1", std::to_string(srv.server.port()), "/healthz"}, "", "",
            std::chrono::seconds(5));
        if (r && r->status == 200) ++ok;
        more_flood(4);
    }
    CHECK(ok == 20);
    CHECK(srv.server.evictions() > 0);
    CHECK(srv.server.open_connections() <= 8);
    // The slow request never reached the handler; only the probes did.
    CHECK(srv.handled == 20);
}

TEST_CASE("the probe client parses URLs", "[http]") {
    auto u = http_client::parse_url("http://10.0.0.1:8000/readyz");
    REQUIRE(u.ok());
    CHECK(u->host == "10.0.0.1");
    CHECK(u->port == "8000");
    CHECK(u->path == "/readyz");
    auto v6 = http_client::parse_url("http://[::1]:9");
    REQUIRE(v6.ok());
    CHECK(v6->host == "::1");
    CHECK(v6->path == "/");
    auto tls = http_client::parse_url("https://x/readyz");
    REQUIRE(tls.ok());
    CHECK(tls->tls);
    CHECK(tls->port == "443");
    CHECK_FALSE(http_client::parse_url("ftp://x").ok());
    CHECK_FALSE(http_client::parse_url("http://:80").ok());
    // What the hand-written parser let through: a user part taken as the host,
    // a port that is not a number, a bracket left open.
    CHECK_FALSE(http_client::parse_url("http://user:secret@10.0.0.1:8000/").ok());
    CHECK_FALSE(http_client::parse_url("http://10.0.0.1:80x/").ok());
    CHECK_FALSE(http_client::parse_url("http://[::1:9/").ok());
    CHECK_FALSE(http_client::parse_url("http://x/#frag").ok());
    CHECK_FALSE(http_client::parse_url("10.0.0.1:8000").ok());
    CHECK_FALSE(http_client::parse_url("").ok());
    auto q = http_client::parse_url("http://h:1/api/v1/pods?watch=1&resourceVersion=7");
    REQUIRE(q.ok());
    CHECK(q->path == "/api/v1/pods?watch=1&resourceVersion=7");
    auto plain = http_client::parse_url("http://h");
    REQUIRE(plain.ok());
    CHECK(plain->port == "80");
    CHECK(plain->path == "/");
}

TEST_CASE("API TLS: unusable certificate files are an error, not a plain-HTTP fallback", "[http]") {
    CHECK_FALSE(make_server_tls("/etc/hostname", "/etc/hostname", "").ok());
    CHECK_FALSE(make_server_tls("/nonexistent.crt", "/nonexistent.key", "").ok());
}
