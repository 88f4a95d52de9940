// The primary lease with three real instances: a lapsed lease with a
// majority around keeps serving; without one the primary fences itself; a
// fenced or restarted old primary never serves beside a newer one.
#include <signal.h>

#include <catch2/catch.hpp>
#include <thread>

#include "harness.hpp"

using namespace harness;

TEST_CASE("lease: self-fencing without a majority, no second primary on return", "[lease]") {
    Instance p("l-one");
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.psql("CREATE TABLE t (v text)").code == 0);
    Instance a("l-two");
    Instance b("l-three");
    start_replicas(p, {&a, &b});
    const nlohmann::json members = {
        {"l-one", api_url(p)}, {"l-two", api_url(a)}, {"l-three", api_url(b)}};
    const nlohmann::json names = {"l-one", "l-two", "l-three"};

    // Bad leases change nothing; a lease is for a primary only.
    post_json(p, "/v1/lease", {{"term", 1}, {"ttl_ms", 5}, {"members", members}}, 400);
    post_json(p, "/v1/lease", {{"term", 1}, {"ttl_ms", 400}, {"members", {{"x", "nope"}}}}, 400);
    post_json(a, "/v1/lease", {{"term", 1}, {"ttl_ms", 400}, {"members", members}}, 409);

    // A lapsed lease with the replicas answering: the primary serves on
    // (a dead controller alone never stops writes).
    auto leased =
        post_json(p, "/v1/lease", {{"term", 1}, {"ttl_ms", 400}, {"members", members}}, 200);
    CHECK(leased["expires_in_ms"] == 400);
    CHECK(p.status()["lease"]["ttl_ms"] == 400);
    std::this_thread::sleep_for(1500ms);
    CHECK(p.status()["role"] == "primary");
    CHECK(p.psql("INSERT INTO t VALUES ('lapsed, majority')").code == 0);
    // Renewals with the same term keep working.
    post_json(p, "/v1/lease", {{"term", 1}, {"ttl_ms", 400}, {"members", members}}, 200);

    // The replicas' managers stop answering (the primary is on the small side of a
    // partition): once the lease lapses it fences itself.
    a.signal(SIGSTOP);
    b.signal(SIGSTOP);
    post_json(p, "/v1/lease", {{"term", 1}, {"ttl_ms", 400}, {"members", members}}, 200);
    CHECK(p.wait_until([&] { return p.status()["role"] == "fenced"; }, 5s));
    a.signal(SIGCONT);
    b.signal(SIGCONT);
    auto fenced = p.status();
    CHECK(fenced["last_error"].get<std::string>().find("lease lapsed") != std::string::npos);
    CHECK(fenced["standby"] == false);
    CHECK(fenced["postgres"]["running"] == false);

    // A replica is promoted with a newer term; the old primary may not unfence.
    post_json(a, "/v1/promote", {{"term", 2}, {"members", names}}, 200);
    REQUIRE(a.psql("INSERT INTO t VALUES ('on l-two')").code == 0);
    auto refused = post_json(p, "/v1/unfence", {{"term", 3}}, 409);
    CHECK(refused["error"].get<std::string>().find("newer term") != std::string::npos);
    CHECK(p.status()["role"] == "fenced");

    // It rejoins through demote: rewind, then a replica of the new primary.
    auto demoted =
        post_json(p, "/v1/demote", {{"term", 3}, {"primary_conninfo", a.upstream()}}, 200);
    CHECK(demoted["rewound"] == true);
    REQUIRE(p.wait_ready(60s));
    CHECK(p.status()["role"] == "replica");
    CHECK(p.wait_until([&] { return p.psql("SELECT count(*) FROM t").out == "2\n"; }, 30s));

    // The new primary under leases goes down; another is promoted meanwhile.
    // When it comes back it sees the newer term and stays fenced.
    post_json(a, "/v1/lease", {{"term", 3}, {"ttl_ms", 2000}, {"members", members}}, 200);
    post_json(b, "/v1/follow", {{"term", 3}, {"primary_conninfo", a.upstream()}}, 200);
    a.signal(SIGTERM);
    REQUIRE(a.wait_exit(60s) == 0);
    post_json(b, "/v1/promote", {{"term", 4}, {"members", names}}, 200);
    a.start();
    CHECK(a.wait_until([&] { return a.status()["role"] == "fenced"; }, 30s));
    CHECK(a.status()["postgres"]["running"] == false);
    CHECK(a.get("/primary")->status == 503);
}
