// The HTTP API of a real manager over loopback: probes, status, metrics,
// commands and every kind of bad request, and instance-probe's exit codes.
#include <signal.h>

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace harness;

TEST_CASE("probes, status and metrics over HTTP", "[http]") {
    Instance pg("http1");
    pg.start();
    // Before postgres is up the manager already answers liveness.
    REQUIRE(pg.wait_until([&] { return pg.get("/healthz").ok(); }, 10s));
    REQUIRE(pg.wait_ready());
    for (const char* path : {"/healthz", "/readyz", "/startupz"}) {
        auto get = pg.get(path);
        REQUIRE(get.ok());
        CHECK(get->status == 200);
        auto head = pg.get(path, "HEAD");
        REQUIRE(head.ok());
        CHECK(head->status == 200);
        CHECK(head->body.empty());
    }
    auto s = pg.status();
    for (const char* key : {"name", "role", "postgres", "manager", "restart_count", "last_error"})
        CHECK(s.contains(key));
    CHECK(s["name"] == "http1");
    CHECK(s["postgres"]["running"] == true);
    CHECK(s["postgres"]["accepting_connections"] == true);
    CHECK(s["postgres"]["system_identifier"].is_string());
    CHECK(s["postgres"]["current_lsn"].is_string());
    auto m = pg.get("/metrics");
    REQUIRE(m.ok());
    CHECK(m->body.find("pg_up 1") != std::string::npos);
    CHECK(m->body.find("instance_manager_role{role=\"primary\"} 1") != std::string::npos);

    CHECK(sh(std::string(IM_PROBE_BINARY) +
             " --url http://127.0.0.1:" + std::to_string(pg.http_port) + " readyz")
              .code == 0);
}

TEST_CASE("bad requests get their code and a JSON error, and change nothing", "[http]") {
    Instance pg("http2");
    pg.start();
    REQUIRE(pg.wait_ready());
    pid_t postmaster = pg.postmaster_pid();
    struct Case {
        std::string path, body;
        std::optional<std::string> token;
        unsigned status;
    };
    std::vector<Case> cases = {
        {"/v1/restart", "{}", std::string(""), 401},
        {"/v1/restart", "{}", std::string("wrong-token"), 401},
        {"/v1/restart", "{\"term\": ", std::nullopt, 400},
        {"/v1/restart", "{\"bogus\": 1}", std::nullopt, 400},
        {"/v1/restart", std::string(70 * 1024, ' '), std::nullopt, 413},
        {"/v1/nothing", "{}", std::nullopt, 404},
        {"/readyz", "{}", std::nullopt, 405},
    };
    for (const auto& c : cases) {
        INFO(c.path << " " << c.status);
        auto r = pg.post(c.path, c.body, c.token);
        REQUIRE(r.ok());
        CHECK(r->status == c.status);
        auto j = nlohmann::json::parse(r->body, nullptr, false);
        CHECK(j.is_object());
        CHECK(j["error"].is_string());
    }
    CHECK(pg.postmaster_pid() == postmaster);
    CHECK(pg.status()["postgres"]["restarts"] == 0);
}

TEST_CASE("restart and reload with the token", "[http]") {
    Instance pg("http3");
    pg.start();
    REQUIRE(pg.wait_ready());
    pid_t before = pg.postmaster_pid();
    auto reload = pg.post("/v1/reload", "{}");
    REQUIRE(reload.ok());
    CHECK(reload->status == 200);
    auto r = pg.post("/v1/restart", "");
    REQUIRE(r.ok());
    INFO(r->body);
    CHECK(r->status == 200);
    REQUIRE(pg.wait_ready());
    CHECK(pg.postmaster_pid() != before);
    // A planned restart is not a crash.
    CHECK(pg.status()["restart_count"] == 0);
}

TEST_CASE("without a token file every mutating call is 403", "[http]") {
    Instance pg("http4");
    pg.with_token = false;
    pg.start();
    REQUIRE(pg.wait_ready());
    auto r = pg.post("/v1/restart", "{}", std::string("anything"));
    REQUIRE(r.ok());
    CHECK(r->status == 403);
}

TEST_CASE("instance-probe exit codes", "[http]") {
    int port = free_port();
    std::string probe =
        std::string(IM_PROBE_BINARY) + " --url http://127.0.0.1:" + std::to_string(port);
    auto down = sh(probe + " --timeout 1s healthz");
    CHECK(down.code == 1);
    CHECK(down.out.find("instance-probe: healthz:") != std::string::npos);
    CHECK(sh(probe + " nonsense").code == 2);
    CHECK(sh(probe + " --timeout soon readyz").code == 2);

    Instance pg("http5");
    pg.start();
    std::string live =
        std::string(IM_PROBE_BINARY) + " --url http://127.0.0.1:" + std::to_string(pg.http_port);
    REQUIRE(pg.wait_until([&] { return sh(live + " healthz").code == 0; }, 10s));
    REQUIRE(pg.wait_ready());
    CHECK(sh(live + " startupz").code == 0);
    CHECK(sh(live + " readyz").code == 0);
}

TEST_CASE("the API over TLS, with client certificates for mutating calls", "[http]") {
    Instance pg("tls1");
    std::string helper = manager_binary() + " helper make-cert ";
    auto cert = [&](const std::string& stem, const std::string& cn) {
        REQUIRE(
            sh(helper + pg.root + "/" + stem + ".crt " + pg.root + "/" + stem + ".key " + cn, true)
                .code == 0);
    };
    cert("server", "localhost");
    cert("controller", "controller");
    cert("stranger", "stranger");
    pg.extra_args = {"--tls-cert",      pg.root + "/server.crt",
                     "--tls-key",       pg.root + "/server.key",
                     "--tls-client-ca", pg.root + "/controller.crt"};
    pg.api_tls = true;
    pg.tls_client.ca_file = pg.root + "/server.crt";
    pg.start();
    REQUIRE(pg.wait_ready());

    // Probes and status need no client certificate.
    CHECK(pg.get("/readyz")->status == 200);
    CHECK(pg.status()["name"] == "tls1");
    CHECK(sh(std::string(IM_PROBE_BINARY) + " --url https://127.0.0.1:" +
             std::to_string(pg.http_port) + " --ca-file " + pg.root + "/server.crt readyz")
              .code == 0);
    // Without the server's CA the probe refuses to trust it; --insecure skips the check.
    CHECK(sh(std::string(IM_PROBE_BINARY) +
             " --url https://127.0.0.1:" + std::to_string(pg.http_port) + " readyz")
              .code == 1);
    CHECK(sh(std::string(IM_PROBE_BINARY) +
             " --url https://127.0.0.1:" + std::to_string(pg.http_port) + " --insecure readyz")
              .code == 0);

    // A mutating call with the token but no client certificate: 403, nothing done.
    auto pid = pg.postmaster_pid();
    auto no_cert = pg.post("/v1/restart", "{}");
    REQUIRE(no_cert.ok());
    CHECK(no_cert->status == 403);
    CHECK(no_cert->body.find("client certificate") != std::string::npos);
    CHECK(pg.postmaster_pid() == pid);

    // A certificate the client CA did not sign: the handshake fails.
    pg.tls_client.cert_file = pg.root + "/stranger.crt";
    pg.tls_client.key_file = pg.root + "/stranger.key";
    CHECK_FALSE(pg.post("/v1/restart", "{}").ok());

    // The controller's certificate and the token: done.
    pg.tls_client.cert_file = pg.root + "/controller.crt";
    pg.tls_client.key_file = pg.root + "/controller.key";
    auto ok = pg.post("/v1/restart", "{}");
    REQUIRE(ok.ok());
    CHECK(ok->status == 200);
    // ... and still the token is checked.
    CHECK(pg.post("/v1/restart", "{}", "wrong-token")->status == 401);

    // Plain HTTP to the TLS port gets nowhere.
    pg.api_tls = false;
    auto plain = pg.get("/readyz");
    CHECK((!plain.ok() || plain->status != 200));
}
