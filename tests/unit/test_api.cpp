#include <catch2/catch.hpp>

#include "api/api.hpp"
#include "commands/command_slot.hpp"
#include "event.hpp"
#include "url_query.hpp"

using namespace im;

namespace {

struct FakeActions : ApiActions {
    awaitable<CommandAnswer> backups() override { co_return nlohmann::json::object(); }
    int restarts = 0, reloads = 0;
    std::vector<std::pair<std::string, nlohmann::json>> calls;
    awaitable<CommandAnswer> run(const std::string& command, const nlohmann::json& body) override {
        calls.emplace_back(command, body);
        if (command == "restart") {
            ++restarts;
            co_return nlohmann::json{{"restarted", true}};
        }
        if (command == "promote") {
            Error e = make_error("not enough WAL", 412);
            e.fields = {{"received_lsn", "0/10"}};
            co_return e;
        }
        ++reloads;
        co_return make_error("postgres is not running", 409);
    }
    CommandAnswer authority(const std::string& what, const nlohmann::json& body) override {
        calls.emplace_back("authority/" + what, body);
        return nlohmann::json{{"ok", false}, {"promised_term", 0}};
    }
};

struct Fixture {
    asio::io_context io;
    Config cfg;
    InstanceState state;
    Metrics metrics;
    FakeActions actions;
    Api api{cfg, state, metrics, actions, std::string("s3cret")};

    HttpResponse call(http::verb verb, const std::string& target, const std::string& body = "",
                      const std::string& auth = "Bearer s3cret") {
        HttpRequest req{verb, target, 11};
        if (!auth.empty()) req.set(http::field::authorization, auth);
        req.body() = body;
        HttpResponse out;
        asio::co_spawn(
            io, [&]() -> awaitable<void> { out = co_await api.handle(req); }, asio::detached);
        io.restart();
        io.run();
        return out;
    }
    static nlohmann::json body(const HttpResponse& r) { return nlohmann::json::parse(r.body()); }
};

}  // namespace

TEST_CASE("routing: unknown paths and wrong methods", "[api]") {
    Fixture f;
    auto r = f.call(http::verb::get, "/nope");
    CHECK(r.result_int() == 404);
    CHECK(f.body(r).contains("error"));
    r = f.call(http::verb::post, "/readyz");
    CHECK(r.result_int() == 405);
    CHECK(r[http::field::allow] == "GET, HEAD");
    r = f.call(http::verb::get, "/v1/restart");
    CHECK(r.result_int() == 405);
    CHECK(f.actions.restarts == 0);
}

TEST_CASE("probes answer from state", "[api]") {
    Fixture f;
    CHECK(f.call(http::verb::get, "/healthz").result_int() == 200);
    auto r = f.call(http::verb::get, "/readyz?lag=16MB");
    CHECK(r.result_int() == 503);
    CHECK(f.body(r)["reason"] == "postgres is not running");
    CHECK(f.call(http::verb::head, "/startupz").result_int() == 503);
    f.state.process.running = true;
    f.state.pg.accepting = true;
    f.state.setup_done = true;
    CHECK(f.call(http::verb::get, "/readyz").result_int() == 200);
    CHECK(f.call(http::verb::get, "/startupz").result_int() == 200);
}

TEST_CASE("status has the documented fields and no secrets", "[api]") {
    Fixture f;
    f.cfg.name = "db-1";
    f.state.process.running = true;
    f.state.process.pid = 42;
    f.state.pg.accepting = true;
    f.state.pg.system_identifier = "7000";
    f.state.pg.timeline = 3;
    f.state.pg.current_lsn = "0/3000060";
    auto r = f.call(http::verb::get, "/v1/status");
    REQUIRE(r.result_int() == 200);
    auto j = f.body(r);
    CHECK(j["name"] == "db-1");
    CHECK(j["role"] == "starting");
    CHECK(j["postgres"]["pid"] == 42);
    CHECK(j["postgres"]["timeline"] == 3);
    CHECK(j["postgres"]["system_identifier"] == "7000");
    CHECK(j["postgres"]["current_lsn"] == "0/3000060");
    for (const char* key :
         {"running", "accepting_connections", "version", "start_time", "pending_restart"})
        CHECK(j["postgres"].contains(key));
    for (const char* key : {"version", "uptime_s", "started_at"}) CHECK(j["manager"].contains(key));
    CHECK(j.contains("restart_count"));
    CHECK(j.contains("last_error"));
    CHECK(r.body().find("s3cret") == std::string::npos);
}

TEST_CASE("metrics are Prometheus text", "[api]") {
    Fixture f;
    f.call(http::verb::get, "/readyz");
    auto r = f.call(http::verb::get, "/metrics");
    REQUIRE(r.result_int() == 200);
    CHECK(r[http::field::content_type].find("text/plain") == 0);
    CHECK(r.body().find("# TYPE pg_up gauge\npg_up 0") != std::string::npos);
    CHECK(r.body().find("instance_manager_probes_total{probe=\"readyz\",result=\"fail\"} 1") !=
          std::string::npos);
    CHECK(r.body().find("instance_manager_role{role=\"starting\"} 1") != std::string::npos);
}

TEST_CASE("mutating calls: token, body and state checks change nothing", "[api]") {
    Fixture f;
    CHECK(f.call(http::verb::post, "/v1/restart", "{}", "").result_int() == 401);
    auto wrong = f.call(http::verb::post, "/v1/restart", "{}", "Bearer nope");
    CHECK(wrong.result_int() == 401);
    CHECK(wrong[http::field::www_authenticate] == "Bearer");
    CHECK(f.call(http::verb::post, "/v1/restart", "{}", "Basic s3cret").result_int() == 401);
    auto bad = f.call(http::verb::post, "/v1/restart", "{not json");
    CHECK(bad.result_int() == 400);
    CHECK(f.body(bad)["error"] == "malformed JSON body");
    auto unknown = f.call(http::verb::post, "/v1/restart", R"({"force": true})");
    CHECK(unknown.result_int() == 400);
    CHECK(f.body(unknown)["error"] == "unknown field 'force'");
    CHECK(f.call(http::verb::post, "/v1/restart", "[1]").result_int() == 400);
    CHECK(f.actions.restarts == 0);

    CHECK(f.call(http::verb::post, "/v1/restart", "").result_int() == 200);
    CHECK(f.actions.restarts == 1);
    auto conflict = f.call(http::verb::post, "/v1/reload", "{}");
    CHECK(conflict.result_int() == 409);
    CHECK(f.body(conflict)["error"] == "postgres is not running");
}

TEST_CASE("no token configured: every mutating call is forbidden", "[api]") {
    asio::io_context io;
    Config cfg;
    InstanceState state;
    Metrics metrics;
    FakeActions actions;
    Api api{cfg, state, metrics, actions, std::nullopt};
    HttpRequest req{http::verb::post, "/v1/restart", 11};
    req.set(http::field::authorization, "Bearer anything");
    HttpResponse out;
    asio::co_spawn(
        io, [&]() -> awaitable<void> { out = co_await api.handle(req); }, asio::detached);
    io.run();
    CHECK(out.result_int() == 403);
    CHECK(actions.restarts == 0);
}

TEST_CASE("one command at a time: the slot commands and the self-fence share", "[api]") {
    CommandSlot slot;
    {
        auto first = slot.try_take();
        REQUIRE(first);
        CHECK(slot.busy());
        CHECK_FALSE(slot.try_take());  // a second command meanwhile: refused
        auto moved = std::move(*first);
        first.reset();
        CHECK(slot.busy());  // still held by the moved-to owner
    }
    CHECK_FALSE(slot.busy());
    CHECK(slot.try_take());
}

TEST_CASE("role commands: term required and typed, fields checked, error facts in the body",
          "[api]") {
    Fixture f;
    auto missing = f.call(http::verb::post, "/v1/promote", "{}");
    CHECK(missing.result_int() == 400);
    CHECK(f.body(missing)["error"] == "field 'term' is required");
    CHECK(f.call(http::verb::post, "/v1/promote", R"({"term": -1})").result_int() == 400);
    CHECK(f.call(http::verb::post, "/v1/promote", R"({"term": "1"})").result_int() == 400);
    CHECK(f.call(http::verb::post, "/v1/promote", R"({"term": 1, "min_lsn": "zz"})").result_int() ==
          400);
    CHECK(f.call(http::verb::post, "/v1/promote", R"({"term": 1, "timeout_s": 0})").result_int() ==
          400);
    CHECK(f.call(http::verb::post, "/v1/promote", R"({"term": 1, "members": [1]})").result_int() ==
          400);
    CHECK(f.call(http::verb::post, "/v1/follow", R"({"term": 1})").result_int() == 400);
    CHECK(f.call(http::verb::post, "/v1/follow", R"({"term": 1, "primary_conninfo": "host='open"})")
              .result_int() == 400);
    CHECK(f.call(http::verb::post, "/v1/replication", R"({"term": 1})").result_int() == 400);
    auto too_many = f.call(http::verb::post, "/v1/replication",
                           R"({"term": 1, "synchronous": {"number": 2, "standbys": ["a"]}})");
    CHECK(too_many.result_int() == 400);
    CHECK(f.body(too_many)["error"].get<std::string>().find("exceeds") != std::string::npos);
    CHECK(f.call(http::verb::post, "/v1/replication",
                 R"({"term": 1, "synchronous": {"method": "some", "standbys": ["a"]}})")
              .result_int() == 400);
    CHECK(f.actions.calls.empty());
    // A valid body reaches the daemon (whose fake answers 409 for it).
    CHECK(f.call(http::verb::post, "/v1/replication", R"({"term": 1, "synchronous": null})")
              .result_int() == 409);
    REQUIRE(f.actions.calls.size() == 1);
    CHECK(f.actions.calls[0].first == "replication");
    f.actions.calls.clear();

    auto refused = f.call(http::verb::post, "/v1/promote",
                          R"({"term": 3, "min_lsn": "0/3000060", "members": ["a", "b"]})");
    CHECK(refused.result_int() == 412);
    CHECK(f.body(refused)["received_lsn"] == "0/10");
    REQUIRE(f.actions.calls.size() == 1);
    CHECK(f.actions.calls[0].first == "promote");
    CHECK(f.actions.calls[0].second["term"] == 3);
}

TEST_CASE("role probes and lag limits", "[api]") {
    Fixture f;
    f.state.process.running = true;
    f.state.pg.accepting = true;
    f.state.setup_done = true;
    CHECK(f.call(http::verb::get, "/primary").result_int() == 200);
    CHECK(f.call(http::verb::get, "/replica").result_int() == 503);
    f.state.pg.in_recovery = true;
    f.state.pg.streaming = true;
    f.state.pg.lag_bytes = 20 << 20;
    CHECK(f.call(http::verb::get, "/primary").result_int() == 503);
    CHECK(f.call(http::verb::get, "/replica").result_int() == 200);
    CHECK(f.call(http::verb::get, "/replica?lag=16MB").result_int() == 503);
    CHECK(f.call(http::verb::get, "/replica?lag=32MB").result_int() == 200);
    CHECK(f.call(http::verb::get, "/readyz?lag=16MB").result_int() == 503);
    CHECK(f.call(http::verb::get, "/readyz").result_int() == 200);
    CHECK(f.call(http::verb::head, "/replica?lag=lots").result_int() == 400);
    CHECK(query_param("/readyz?a=1&lag=5", "lag") == std::optional<std::string>("5"));
    CHECK_FALSE(query_param("/readyz?lagx=5", "lag").has_value());
}

TEST_CASE("query strings: encoded, decoded, looked up") {
    CHECK(percent_encode("app=demo,tier in (a,b)") == "app%3Ddemo%2Ctier%20in%20%28a%2Cb%29");
    CHECK(percent_decode("app%3Ddemo%2Ctier+in") == "app=demo,tier in");
    CHECK(percent_decode("100%") == "100%");  // a malformed escape stays
    CHECK(percent_decode("%zz1") == "%zz1");
    std::string target = "/pods?labelSelector=" + percent_encode("app=demo") + "&watch=1&x";
    CHECK(query_param(target, "labelSelector") == std::optional<std::string>("app=demo"));
    CHECK(query_param(target, "watch") == std::optional<std::string>("1"));
    CHECK(query_param(target, "x") == std::optional<std::string>(""));
    CHECK_FALSE(query_param("/pods", "watch").has_value());
}

TEST_CASE("a body that is not exactly one JSON object is refused whole", "[api]") {
    Fixture f;
    // nlohmann's parser stops at a NUL: this body was once executed as {"term": 1}.
    auto nul = f.call(http::verb::post, "/v1/fence", std::string("{\"term\": 1}\0junk", 16));
    CHECK(nul.result_int() == 400);
    CHECK(f.body(nul)["error"] == "NUL byte in JSON body");
    CHECK(f.call(http::verb::post, "/v1/fence", std::string("{\"term\": 1}\0", 12)).result_int() ==
          400);
    CHECK(f.call(http::verb::post, "/v1/fence", R"({"term": 1} {"term": 2})").result_int() == 400);
    CHECK(f.call(http::verb::post, "/v1/fence", R"({"term": 1} x)").result_int() == 400);
    CHECK(f.call(http::verb::post, "/v1/follow",
                 "{\"term\": 1, \"primary_conninfo\": \"host=a\xff\"}")
              .result_int() == 400);
    CHECK(f.call(http::verb::post, "/v1/fence", "{\"term\": 1}\xff").result_int() == 400);
    // Two parsers may keep different ones of two equal keys: neither is taken.
    auto twice = f.call(http::verb::post, "/v1/fence", R"({"term": 1, "term": 7})");
    CHECK(twice.result_int() == 400);
    CHECK(f.body(twice)["error"] == "a key appears twice in the JSON body");
    CHECK(
        f.call(http::verb::post, "/v1/members",
               R"({"term": 1, "member_urls": {"a": "http://a:1", "a": "http://b:1"}})")
            .result_int() == 400);
    CHECK(f.actions.calls.empty());
    // Equal keys in different objects are fine; so is whitespace around the object.
    CHECK(f.call(http::verb::post, "/v1/members",
                 " {\"term\": 1, \"member_urls\": {\"term\": \"http://a:1\"}}\r\n")
              .result_int() == 409);
    CHECK(f.actions.calls.size() == 1);
}

TEST_CASE("a request target with bytes outside ASCII is 400, never a thrown dump", "[api]") {
    Fixture f;
    // Echoing it in "no such path" once made json::dump throw and the
    // connection drop.
    auto r = f.call(http::verb::get, "/caf\xc3");
    CHECK(r.result_int() == 400);
    CHECK(f.body(r).contains("error"));
    CHECK(f.call(http::verb::post, "/v1/fence\xff", R"({"term": 1})").result_int() == 400);
    CHECK(f.call(http::verb::get, "/readyz?lag=\xe2\x82").result_int() == 400);
    CHECK(f.actions.calls.empty());
    // What does get echoed is still valid JSON, whatever the bytes.
    auto bad = error_response(http::status::not_found, "no such path: /\xff\xfe");
    CHECK_NOTHROW(nlohmann::json::parse(bad.body()));
}

TEST_CASE("the authority endpoints: token, strict fields, no role command", "[api]") {
    Fixture f;
    const std::string grant =
        R"({"holder": "h1", "to": "h2", "term": 3, "ttl_ms": 1000, "membership_version": 1,
            "seq": 9})";
    auto ok = f.call(http::verb::post, "/v1/authority/grant", grant);
    CHECK(ok.result_int() == 200);
    REQUIRE(f.actions.calls.size() == 1);
    CHECK(f.actions.calls[0].first == "authority/grant");
    CHECK(f.call(http::verb::post, "/v1/authority/grant", grant, "wrong").result_int() == 401);
    CHECK(f.call(http::verb::post, "/v1/authority/grant",
                 R"({"holder": "h1", "to": "h2", "term": 3, "ttl_ms": 1000, "membership_version": 1})")
              .result_int() == 400);  // seq is required
    CHECK(f.call(http::verb::post, "/v1/authority/promise",
                 R"({"term": 3, "proposer": "c1", "to": "a", "membership_version": 1,
                     "members": ["a"], "extra": 1})")
              .result_int() == 400);
    CHECK(f.call(http::verb::post, "/v1/authority/release", R"({"holder": "h1", "term": -1})")
              .result_int() == 400);
    CHECK(f.call(http::verb::get, "/v1/authority/grant").result_int() == 405);
    CHECK(f.actions.calls.size() == 1);
}
