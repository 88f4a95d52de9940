// The write authority with three real instances, the test playing the
// controller through the members' own endpoints: a primary writes only
// while a majority grants it; a dead controller never stops writes; without
// a majority postgres is stopped within the grant's time, and serves again
// once the majority is back (no newer term); a newer term stops the old
// primary for good; a SIGSTOPped manager cannot keep postgres writable (the
// watchdog kills it); a promote without a promise round never makes two
// writers.
#include <signal.h>

#include <catch2/catch.hpp>
#include <thread>

#include "harness.hpp"

using namespace harness;

namespace {
using Clock = std::chrono::steady_clock;

// A promise of `term` from `proposer` to each of `to`; the answers.
std::vector<nlohmann::json> promise(const std::vector<Instance*>& to, uint64_t term,
                                    const nlohmann::json& names,
                                    const std::string& proposer = "test") {
    std::vector<nlohmann::json> out;
    for (auto* i : to)
        out.push_back(post_json(*i, "/v1/authority/promise",
                                {{"term", term},
                                 {"proposer", proposer},
                                 {"to", i->name},
                                 {"membership_version", 1},
                                 {"members", names}},
                                200));
    return out;
}

bool writable(Instance& i) { return i.psql_local("SELECT pg_is_in_recovery()").out == "f\n"; }
}  // namespace

TEST_CASE("write authority: grants from a majority, or postgres stops", "[authority]") {
    Instance p("w-one");
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.psql("CREATE TABLE t (v text)").code == 0);
    Instance a("w-two");
    Instance b("w-three");
    start_replicas(p, {&a, &b});
    const nlohmann::json urls = {
        {"w-one", api_url(p)}, {"w-two", api_url(a)}, {"w-three", api_url(b)}};
    const nlohmann::json names = {"w-one", "w-three", "w-two"};  // sorted

    // Bad calls change nothing.
    post_json(p, "/v1/authority/grant", {{"holder", "w-one"}, {"term", 1}}, 400);
    post_json(p, "/v1/authority/promise",
              {{"term", 1}, {"proposer", "x"}, {"to", "w-one"}, {"membership_version", 1},
               {"members", names}, {"extra", true}},
              400);
    {
        auto r = p.post(
            "/v1/authority/grant",
            R"({"holder":"w-one","to":"w-one","term":1,"ttl_ms":1000,"membership_version":1,"seq":1})",
            "wrong-token");
        REQUIRE(r.ok());
        CHECK(r->status == 401);
    }
    // Not a member of any membership yet: no grant.
    auto early = post_json(a, "/v1/authority/grant",
                           {{"holder", "w-one"},
                            {"to", "w-two"},
                            {"term", 1},
                            {"ttl_ms", 1000},
                            {"membership_version", 1},
                            {"seq", 1}},
                           200);
    CHECK(early["ok"] == false);
    // A membership this member is not in: no promise.
    auto foreign = post_json(a, "/v1/authority/promise",
                             {{"term", 1},
                              {"proposer", "x"},
                              {"to", "w-two"},
                              {"membership_version", 1},
                              {"members", {"z1", "z2"}}},
                             200);
    CHECK(foreign["ok"] == false);
    // Meant for another member (its address now ours): refused, nothing learned.
    auto misdirected = post_json(a, "/v1/authority/promise",
                                 {{"term", 1},
                                  {"proposer", "x"},
                                  {"to", "w-three"},
                                  {"membership_version", 1},
                                  {"members", names}},
                                 200);
    CHECK(misdirected["ok"] == false);
    CHECK(a.status()["authority"]["member"]["membership"].is_null());

    // The primary from before the write authority takes it: a promise round
    // for term 1 (fresh members are quiet), then promote on the primary.
    for (const auto& answer : promise({&p, &a, &b}, 1, names)) {
        CHECK(answer["ok"] == true);
        CHECK(answer["quiet"] == true);
        CHECK(answer["grant_remaining_us"] == 0);
    }
    auto took = post_json(p, "/v1/promote",
                          {{"term", 1}, {"members", names}, {"member_urls", urls}}, 200);
    CHECK(took["write_right"] == true);
    REQUIRE(p.wait_until([&] { return holds_write_right(p); }, 5s));
    auto st = p.status();
    CHECK(st["authority"]["write_term"] == 1);
    CHECK(st["authority"]["member"]["granted_to"] == "w-one");
    CHECK(st["authority"]["write_right"]["grants_ms"].size() == 3);
    auto metrics = p.get("/metrics");
    REQUIRE(metrics.ok());
    CHECK(metrics->body.find("instance_manager_write_right 1") != std::string::npos);

    // No controller at all: the primary renews by itself and keeps writing.
    std::this_thread::sleep_for(3s);
    CHECK(holds_write_right(p));
    CHECK(p.psql("INSERT INTO t VALUES ('no controller')").code == 0);

    // The replicas' managers stop answering: without a majority postgres is
    // stopped once the grants run out (ttl 1 s), not left writable.
    a.signal(SIGSTOP);
    b.signal(SIGSTOP);
    auto cut = Clock::now();
    CHECK(p.wait_until([&] { return !writable(p); }, 5s));
    auto stopped_after =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - cut).count();
    INFO("writable for " << stopped_after << " ms after the cut");
    CHECK(stopped_after < 2500);
    CHECK(p.status()["last_error"].get<std::string>().find("majority") != std::string::npos);
    // Back: no newer term was promised, so the same primary serves again.
    a.signal(SIGCONT);
    b.signal(SIGCONT);
    REQUIRE(p.wait_until([&] { return writable(p) && holds_write_right(p); }, 30s));
    CHECK(p.psql("INSERT INTO t VALUES ('back')").code == 0);
    CHECK(p.status()["authority"]["write_term"] == 1);
    // (Asynchronous replication: wait until the replicas have it all.)
    for (auto* r : {&a, &b})
        REQUIRE(r->wait_until([&] { return r->psql("SELECT count(*) FROM t").out == "2\n"; }, 30s));

    // A promote without any promise round (a controller gone wrong, a promote
    // by hand): the members do not grant a new holder while the primary's
    // grants are in use, so the replica is not promoted and nothing changes.
    auto rogue = post_json(a, "/v1/promote", {{"term", 7}, {"members", names}, {"member_urls", urls}},
                           503);
    CHECK(rogue["error"].get<std::string>().find("no majority") != std::string::npos);
    CHECK(a.status()["role"] == "replica");
    CHECK(writable(p));

    // A newer term: w-two and w-three promise term 2 (a majority). The old
    // primary's renewals are refused from then on: it stops, fenced for good.
    promise({&a, &b}, 2, names);
    REQUIRE(p.wait_until([&] { return p.status()["role"] == "fenced"; }, 5s));
    CHECK_FALSE(writable(p));
    CHECK(p.status()["last_error"].get<std::string>().find("term 2") != std::string::npos);
    // The new primary, once the old grants are out of use.
    post_json(a, "/v1/promote", {{"term", 2}, {"members", names}, {"member_urls", urls}}, 200);
    REQUIRE(a.wait_until([&] { return writable(a) && holds_write_right(a); }, 10s));
    REQUIRE(a.psql("INSERT INTO t VALUES ('on w-two')").code == 0);
    // The old primary may not come back writable.
    auto refused = post_json(p, "/v1/unfence", {{"term", 3}}, 409);
    CHECK(refused["error"].get<std::string>().find("newer term") != std::string::npos);
    CHECK_FALSE(writable(p));
    // It rejoins through demote: rewind, then a replica of the new primary.
    // (Killed as it wrote its lock file, a postmaster leaves an empty one:
    // pg_rewind's crash recovery must not trip over it.)
    REQUIRE(sh(": > " + p.pgdata + "/postmaster.pid && test ! -s " + p.pgdata + "/postmaster.pid",
               true)
                .code == 0);
    auto demoted =
        post_json(p, "/v1/demote", {{"term", 3}, {"primary_conninfo", a.upstream()}}, 200);
    CHECK(demoted["rewound"] == true);
    REQUIRE(p.wait_ready(60s));
    CHECK(p.status()["role"] == "replica");
    CHECK(p.status()["authority"]["write_term"] == 0);
    post_json(b, "/v1/follow", {{"term", 3}, {"primary_conninfo", a.upstream()}}, 200);

    // The new primary's manager is stopped (SIGSTOP): its loop cannot act,
    // but the watchdog stops postgres when the grants run out.
    REQUIRE(holds_write_right(a));
    a.signal(SIGSTOP);
    auto paused = Clock::now();
    bool killed = false;
    while (Clock::now() - paused < 5s && !killed) {
        killed = !writable(a);
        if (!killed) std::this_thread::sleep_for(50ms);
    }
    auto killed_after =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - paused).count();
    a.signal(SIGCONT);
    INFO("the watchdog stopped postgres " << killed_after << " ms after the pause");
    CHECK(killed);
    CHECK(a.log().find("the write right ran out without renewal") != std::string::npos);
    // Resumed, it gathers its grants again (nobody promised a newer term).
    REQUIRE(a.wait_until([&] { return writable(a) && holds_write_right(a); }, 30s));
    CHECK(a.psql("SELECT count(*) FROM t").out == "3\n");

    // A replica promoted by hand, behind its manager's back: a member never
    // writes without the write right, so it is stopped and fenced.
    REQUIRE(b.wait_ready(30s));
    REQUIRE(b.psql_local("SELECT pg_promote(true, 30)").out == "t\n");
    CHECK(b.wait_until([&] { return b.status()["role"] == "fenced"; }, 10s));
    CHECK_FALSE(writable(b));
    CHECK(b.status()["last_error"].get<std::string>().find("without the write right") !=
          std::string::npos);
    CHECK(writable(a));
}

TEST_CASE("write authority over https with client certificates (mTLS)", "[authority]") {
    // Each member's API certificate is also its client certificate towards
    // the others; every member trusts the bundle of them all (and the test's).
    Instance p("wt-one");
    Instance r("wt-two");
    std::string helper = manager_binary() + " helper make-cert ";
    auto cert = [&](const std::string& stem, const std::string& cn) {
        REQUIRE(sh(helper + p.root + "/" + stem + ".crt " + p.root + "/" + stem + ".key " + cn, true)
                    .code == 0);
    };
    cert("one", "localhost");
    cert("two", "localhost");
    cert("test", "test");
    const std::string bundle = p.root + "/clients.crt";
    REQUIRE(sh("cat " + p.root + "/one.crt " + p.root + "/two.crt " + p.root + "/test.crt > " +
               bundle + " && chmod 644 " + bundle + " " + p.root + "/*.crt " + p.root + "/*.key")
                .code == 0);
    auto tls_for = [&](Instance& i, const std::string& stem) {
        i.extra_args = {"--tls-cert", p.root + "/" + stem + ".crt", "--tls-key",
                        p.root + "/" + stem + ".key", "--tls-client-ca", bundle};
        i.api_tls = true;
        i.tls_client.insecure = true;
        i.tls_client.cert_file = p.root + "/test.crt";
        i.tls_client.key_file = p.root + "/test.key";
    };
    tls_for(p, "one");
    p.start();
    REQUIRE(p.wait_ready());
    tls_for(r, "two");
    start_replicas(p, {&r});
    auto url = [](const Instance& i) {
        return "https://" + i.address + ":" + std::to_string(i.http_port);
    };
    const nlohmann::json urls = {{"wt-one", url(p)}, {"wt-two", url(r)}};
    const nlohmann::json names = {"wt-one", "wt-two"};
    promise({&p, &r}, 1, names);
    post_json(p, "/v1/promote", {{"term", 1}, {"members", names}, {"member_urls", urls}}, 200);
    // Two members: the majority is both, so the grant over https counts.
    REQUIRE(p.wait_until([&] { return holds_write_right(p); }, 5s));
    CHECK(p.status()["authority"]["write_right"]["grants_ms"].size() == 2);
    CHECK(r.status()["authority"]["member"]["granted_to"] == "wt-one");
    CHECK(p.psql("CREATE TABLE t (v int)").code == 0);
}
