// bench-probe-flood: a slow-client flood against a manager's HTTP port while
// a kubelet-like prober asks /healthz; prints the probe latencies.
//
// The flood: CONNECTIONS sockets, each sending a request that never ends
// (a header byte every second, slowloris-style) or nothing at all (idle),
// reconnecting at once whenever the server closes it. The prober: one
// GET /healthz every INTERVAL on a new connection (as kubelet does), each
// with a 2 s deadline; non-200 answers and errors are failures.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "asio.hpp"
#include "http_client.hpp"

using namespace std::chrono;
using namespace im;

namespace {

std::atomic<long> reconnects{0};
std::atomic<bool> stopping{false};

awaitable<void> slow_client(asio::ip::tcp::endpoint ep, bool idle) {
    auto ex = co_await asio::this_coro::executor;
    const std::string head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    while (!stopping) {
        asio::ip::tcp::socket s(ex);
        boost::system::error_code ec;
        co_await s.async_connect(ep, asio::redirect_error(use_awaitable, ec));
        asio::steady_timer t(ex);
        for (size_t i = 0; !ec && !stopping; ++i) {
            if (!idle) {
                char c = i < head.size() ? head[i] : 'a';
                co_await asio::async_write(s, asio::buffer(&c, 1),
                                           asio::redirect_error(use_awaitable, ec));
            }
            if (ec) break;
            // Closed by the server? A zero-byte read would wait; poll instead.
            s.non_blocking(true, ec);
            char buf[512];
            s.read_some(asio::buffer(buf), ec);
            if (ec == asio::error::would_block)
                ec = {};
            else if (!ec)
                ec = asio::error::connection_reset;  // an answer (503): start over
            if (ec) break;
            t.expires_after(idle ? milliseconds(200) : seconds(1));
            co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
        }
        ++reconnects;
        t.expires_after(milliseconds(50));
        co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(
            stderr,
            "usage: bench-probe-flood PORT [CONNECTIONS=2000] [SECONDS=10] [INTERVAL_MS=100]\n");
        return 2;
    }
    std::string port = argv[1];
    int connections = argc > 2 ? std::atoi(argv[2]) : 2000;
    int seconds_ = argc > 3 ? std::atoi(argv[3]) : 10;
    int interval_ms = argc > 4 ? std::atoi(argv[4]) : 100;
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < static_cast<rlim_t>(connections) + 64)
        std::fprintf(stderr, "warning: open-file limit %lu < %d connections\n",
                     static_cast<unsigned long>(rl.rlim_cur), connections);

    asio::io_context flood_io;
    asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"),
                               static_cast<unsigned short>(std::stoi(port)));
    for (int i = 0; i < connections; ++i)
        asio::co_spawn(flood_io, slow_client(ep, i % 4 == 0), asio::detached);
    std::thread flood([&] { flood_io.run(); });
    // Let the flood reach the server's cap before probing.
    std::this_thread::sleep_for(seconds(2));

    http_client::Url url{false, "127.0.0.1", port, "/healthz"};
    std::vector<double> ms;
    int failures = 0;
    std::string last_failure;
    auto end = steady_clock::now() + seconds(seconds_);
    while (steady_clock::now() < end) {
        auto start = steady_clock::now();
        auto r = http_client::http_request("GET", url, "", "", seconds(2));
        double took = duration<double, std::milli>(steady_clock::now() - start).count();
        ms.push_back(took);
        if (!r || r->status != 200) {
            ++failures;
            last_failure = r ? "HTTP " + std::to_string(r->status) : r.error().message;
        }
        std::this_thread::sleep_until(start + milliseconds(interval_ms));
    }
    stopping = true;
    flood_io.stop();
    flood.join();
    std::sort(ms.begin(), ms.end());
    auto pct = [&](double p) { return ms[std::min(ms.size() - 1, size_t(p * ms.size()))]; };
    std::printf("probe flood: %d slow/idle connections, %zu /healthz probes over %d s\n",
                connections, ms.size(), seconds_);
    std::printf("  healthz p50:  %.1f ms\n", pct(0.50));
    std::printf("  healthz p99:  %.1f ms\n", pct(0.99));
    std::printf("  healthz max:  %.1f ms\n", ms.back());
    std::printf("  failures:     %d of %zu%s%s\n", failures, ms.size(),
                last_failure.empty() ? "" : ", last: ", last_failure.c_str());
    std::printf("  flood reconnects: %ld\n", reconnects.load());
    return 0;
}
