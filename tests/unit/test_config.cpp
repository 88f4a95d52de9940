#include <catch2/catch.hpp>
#include <cstdlib>

#include "config.hpp"

using namespace im;

TEST_CASE("host:port parsing", "[config]") {
    std::string host;
    int port = 0;
    REQUIRE(parse_host_port("0.0.0.0:8000", host, port));
    CHECK(host == "0.0.0.0");
    CHECK(port == 8000);
    REQUIRE(parse_host_port("[::1]:9", host, port));
    CHECK(host == "::1");
    CHECK(port == 9);
    CHECK_FALSE(parse_host_port("8000", host, port));
    CHECK_FALSE(parse_host_port(":8000", host, port));
    CHECK_FALSE(parse_host_port("h:", host, port));
    CHECK_FALSE(parse_host_port("h:70000", host, port));
    CHECK_FALSE(parse_host_port("h:12a", host, port));
    CHECK_FALSE(parse_host_port("[::1]8000", host, port));
}

TEST_CASE("durations", "[config]") {
    std::chrono::milliseconds d{};
    REQUIRE(parse_duration("10s", d));
    CHECK(d.count() == 10'000);
    REQUIRE(parse_duration("250ms", d));
    CHECK(d.count() == 250);
    REQUIRE(parse_duration("2m", d));
    CHECK(d.count() == 120'000);
    REQUIRE(parse_duration("3", d));
    CHECK(d.count() == 3'000);
    CHECK_FALSE(parse_duration("", d));
    CHECK_FALSE(parse_duration("s", d));
    REQUIRE(parse_duration("6h", d));
    CHECK(d == std::chrono::hours(6));
    REQUIRE(parse_duration("7d", d));
    CHECK(d == std::chrono::hours(24 * 7));
    CHECK_FALSE(parse_duration("5w", d));
    CHECK_FALSE(parse_duration("-5s", d));
}

namespace {
std::vector<std::string> base_args() {
    return {"--pgdata", "/tmp/im-config-test-pgdata", "--name", "n1"};
}
}  // namespace

TEST_CASE("run arguments: valid", "[config]") {
    auto args = base_args();
    args.insert(args.end(), {"--pg-port", "6543", "--http-listen", "127.0.0.1:0",
                             "--restart-policy", "never", "--fast-shutdown-timeout", "5s"});
    ParseOutcome out;
    auto cfg = parse_run_args(args, &out);
    REQUIRE(cfg.ok());
    CHECK_FALSE(out.exit_now);
    CHECK(cfg->name == "n1");
    CHECK(cfg->pg_port == 6543);
    CHECK(cfg->http_host == "127.0.0.1");
    CHECK(cfg->http_port == 0);
    CHECK(cfg->restart_policy == RestartPolicy::never);
    CHECK(cfg->fast_shutdown_timeout.count() == 5000);
    CHECK(cfg->copy_stall_timeout == std::chrono::minutes(10));
    CHECK_FALSE(cfg->pg_bin.empty());
    args.insert(args.end(), {"--copy-stall-timeout", "90s"});
    CHECK(parse_run_args(args)->copy_stall_timeout == std::chrono::seconds(90));
}

TEST_CASE("run arguments: every bad input is exit code 2 with a message", "[config]") {
    std::vector<std::vector<std::string>> bad = {
        {"--no-such-flag"},
        {"--pg-port", "0"},
        {"--pg-port", "abc"},
        {"--http-listen", "nowhere"},
        {"--restart-policy", "sometimes"},
        {"--smart-shutdown-timeout", "forever"},
        {"--api-token-file", "/nonexistent/token"},
        {"--pg-tls-cert", "/etc/hostname"},
        {"--tls-cert", "/etc/hostname"},
        {"--tls-client-ca", "/etc/hostname"},
        {"--pg-bin", "/nonexistent"},
        {"--name", "bad name"},
        {"--check-interval", "5s"},
        {"--log-level", "loud"},
        {"--primary-conninfo", "host=h password=inline"},
        {"--primary-conninfo", "host='open"},
        {"--on-rewind-failure", "wipe"},
        {"--copy-stall-timeout", "soon"},
        {"--copy-stall-timeout", "500ms"},
        {"--app-password-file", "/nonexistent-dir/app.password"},
    };
    for (const auto& extra : bad) {
        auto args = base_args();
        args.insert(args.end(), extra.begin(), extra.end());
        ParseOutcome out;
        auto cfg = parse_run_args(args, &out);
        INFO(extra[0]);
        REQUIRE_FALSE(cfg.ok());
        CHECK(out.exit_code == 2);
        CHECK_FALSE(cfg.error().message.empty());
    }
}

TEST_CASE("run arguments: pgdata is required and environment variables count", "[config]") {
    ::unsetenv("PGDATA");
    ParseOutcome out;
    auto missing = parse_run_args({}, &out);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().message.find("pgdata") != std::string::npos);

    ::setenv("PGDATA", "/tmp/im-env-pgdata", 1);
    ::setenv("IM_PG_PORT", "7777", 1);
    auto cfg = parse_run_args({"--name", "x"}, &out);
    ::unsetenv("PGDATA");
    ::unsetenv("IM_PG_PORT");
    REQUIRE(cfg.ok());
    CHECK(cfg->pgdata == "/tmp/im-env-pgdata");
    CHECK(cfg->pg_port == 7777);
}
