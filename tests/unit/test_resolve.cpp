// Host names for libpq and the HTTP client, resolved before the connection
// starts (off the loop, within the deadline), and the conninfo that carries
// the addresses.
#include <catch2/catch.hpp>

#include "resolve.hpp"

using namespace im;

TEST_CASE("conninfo: which hosts need a lookup", "[resolve]") {
    CHECK(host_names_to_resolve({{"host", "db-1.demo"}}) == std::vector<std::string>{"db-1.demo"});
    CHECK(host_names_to_resolve({{"host", "/tmp"}}).empty());
    CHECK(host_names_to_resolve({{"host", "@abstract"}}).empty());
    CHECK(host_names_to_resolve({{"host", "10.0.0.1,::1"}}).empty());
    CHECK(host_names_to_resolve({{"host", "a,/tmp,b,a,10.0.0.1"}}) ==
          std::vector<std::string>{"a", "b"});
    // With hostaddr libpq resolves nothing: it stays as the caller gave it.
    CHECK(host_names_to_resolve({{"host", "a"}, {"hostaddr", "10.0.0.1"}}).empty());
    CHECK(host_names_to_resolve({{"port", "5432"}}).empty());
}

TEST_CASE("conninfo: hostaddr beside host, one entry per address", "[resolve]") {
    auto one =
        with_host_addresses({{"host", "db.demo"}, {"port", "5432"}, {"sslmode", "verify-full"}},
                            {{"db.demo", {"10.0.0.7"}}});
    REQUIRE(one.ok());
    CHECK(one->at("host") == "db.demo");  // TLS verification still uses the name
    CHECK(one->at("hostaddr") == "10.0.0.7");
    CHECK(one->at("port") == "5432");
    CHECK(one->at("sslmode") == "verify-full");

    // Several hosts with their own ports; a socket directory and an address
    // get empty hostaddr entries (libpq then uses the host entry as it is).
    auto multi = with_host_addresses({{"host", "a,/run/pg,b,10.0.0.9"}, {"port", "1,2,3,4"}},
                                     {{"a", {"10.0.0.1", "10.0.0.2"}}, {"b", {"::1"}}});
    REQUIRE(multi.ok());
    CHECK(multi->at("host") == "a,a,/run/pg,b,10.0.0.9");
    CHECK(multi->at("hostaddr") == "10.0.0.1,10.0.0.2,,::1,");
    CHECK(multi->at("port") == "1,1,2,3,4");

    // A name that did not resolve is left out; none left is an error.
    auto partial = with_host_addresses({{"host", "a,b"}}, {{"b", {"10.0.0.2"}}});
    REQUIRE(partial.ok());
    CHECK(partial->at("host") == "b");
    CHECK(partial->at("hostaddr") == "10.0.0.2");
    CHECK_FALSE(with_host_addresses({{"host", "a"}}, {}).ok());

    // Mismatched port lists are libpq's error to report: unchanged.
    auto odd = with_host_addresses({{"host", "a,b,c"}, {"port", "1,2"}}, {{"a", {"10.0.0.1"}}});
    REQUIRE(odd.ok());
    CHECK_FALSE(odd->count("hostaddr"));
}

TEST_CASE("resolve_host: literals at once, names off the loop", "[resolve]") {
    asio::io_context io;
    std::optional<Result<std::vector<asio::ip::address>>> literal, name;
    std::optional<Result<std::string>> socket_conninfo;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
            literal.emplace(co_await resolve_host("10.1.2.3", deadline));
            name.emplace(co_await resolve_host("localhost", deadline));
            socket_conninfo.emplace(co_await resolve_conninfo("host=/tmp port=5432", deadline));
        },
        asio::detached);
    io.run();
    REQUIRE(literal);
    REQUIRE(literal->ok());
    CHECK(literal->value().at(0).to_string() == "10.1.2.3");
    REQUIRE(name);
    REQUIRE(name->ok());
    CHECK(name->value().at(0).is_loopback());
    REQUIRE(socket_conninfo);
    CHECK(socket_conninfo->value() == "host=/tmp port=5432");
}
