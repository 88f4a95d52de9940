// Host names are resolved off the event loop: a name server that never
// answers (a UDP socket that takes queries and drops them) must not stop
// the manager from answering its probes while it waits for an upstream.
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <thread>

#include "harness.hpp"

using namespace harness;

TEST_CASE("a replica whose upstream's name server never answers keeps answering /healthz",
          "[http]") {
    if (!running_as_root()) {
        WARN("needs root (a mount namespace for its own resolv.conf)");
        return;
    }
    // The silent name server: bound on a loopback address of its own,
    // never read, so every query waits for the resolver's timeout.
    namespace asio = boost::asio;
    asio::io_context io;
    asio::ip::udp::socket silent(io);
    boost::system::error_code ec;
    std::string ns_address = "127.83.0.1";
    silent.open(asio::ip::udp::v4(), ec);
    if (!ec) silent.bind({asio::ip::make_address(ns_address), 53}, ec);
    REQUIRE_FALSE(ec);

    Instance r("dns1");
    r.resolv_conf = r.root + "/resolv.conf";
    {
        std::ofstream(r.resolv_conf)
            << "nameserver " << ns_address << "\noptions timeout:5 attempts:2\n";
    }
    std::string password = r.root + "/replication.password";
    { std::ofstream(password) << "unused\n"; }
    // Not in /etc/hosts: only the silent name server could answer for it.
    r.extra_args = {"--primary-conninfo", "host=upstream.dns-test.example port=5432",
                    "--replication-password-file", password};
    r.start();
    REQUIRE(r.wait_until([&] { return r.get("/healthz").ok(); }, 30s));
    // Its first try has failed: the next ones are what the probes run beside.
    REQUIRE(r.wait_until(
        [&] { return r.log().find("primary does not answer yet") != std::string::npos; }, 60s));

    // Kubelet's view: one probe every 250 ms for 10 s (its retries back off
    // 1, 2, 4 s), each with a 2 s timeout. A lookup on the loop holds it for
    // seconds per try.
    int answered = 0;
    std::string latencies;
    im::http_client::Url url{false, r.address, std::to_string(r.http_port), "/healthz"};
    for (int i = 0; i < 40; ++i) {
        auto start = std::chrono::steady_clock::now();
        auto reply = im::http_client::http_request("GET", url, "", "", 2s);
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
        latencies += std::to_string(ms) + (reply && reply->status == 200 ? "ms " : "ms(failed) ");
        if (reply && reply->status == 200) ++answered;
        std::this_thread::sleep_until(start + 250ms);
    }
    std::printf("healthz latencies while the upstream's name does not resolve: %s\n",
                latencies.c_str());
    INFO(r.log_tail());
    CHECK(answered == 40);
    CHECK(r.log().find("upstream.dns-test.example") != std::string::npos);
}
