// A rejoin cut short: the old primary's manager killed while pg_rewind
// rewrites its data directory. It must come back fenced, never start
// postgres on that directory (nor rewind it again), and rejoin by a clone.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "harness.hpp"

using namespace harness;

TEST_CASE("a kill during pg_rewind: fenced on return, never started there, re-cloned to rejoin",
          "[rewind]") {
    Instance a("rj-a");
    // The real binaries, but a pg_rewind that (past its dry run) says it
    // started and then hangs: the kill lands while it "runs".
    std::string bin = a.root + "/bin";
    REQUIRE(sh("mkdir -p " + bin + " && for f in " + pg_bin() + "/*; do ln -s \"$f\" " + bin +
                   "/; done && rm " + bin +
                   "/pg_rewind && printf '#!/bin/sh\\ncase \"$*\" in *--dry-run*) exec " +
                   pg_bin() + "/pg_rewind \"$@\";; esac\\ntouch " + a.root +
                   "/rewind-started\\nexec sleep 3600\\n' > " + bin + "/pg_rewind && chmod 755 " +
                   bin + "/pg_rewind",
               true)
                .code == 0);
    a.extra_args = {"--pg-bin", bin, "--on-rewind-failure", "reclone"};
    a.start();
    REQUIRE(a.wait_ready());
    REQUIRE(a.psql("CREATE TABLE t (v text); INSERT INTO t VALUES ('common')").code == 0);

    Instance b("rj-b");
    b.replica_of(a);
    b.start();
    REQUIRE(b.wait_ready(120s));
    REQUIRE(b.wait_until([&] { return b.psql("SELECT count(*) FROM t").out == "1\n"; }, 20s));

    // b takes over; a diverges (what a rewind would have to undo).
    post_json(b, "/v1/promote", {{"term", 2}, {"members", {"rj-a", "rj-b"}}}, 200);
    REQUIRE(a.psql("INSERT INTO t VALUES ('diverged')").code == 0);

    std::thread demote([&] {
        (void)a.post("/v1/demote",
                     nlohmann::json{{"term", 3}, {"primary_conninfo", b.upstream()}}.dump());
    });
    REQUIRE(a.wait_until([&] { return std::filesystem::exists(a.root + "/rewind-started"); }, 60s));
    CHECK(std::filesystem::exists(a.pgdata + ".rewind-in-progress"));
    a.signal(SIGKILL);
    REQUIRE(a.wait_exit(10s));
    demote.join();

    a.start();
    REQUIRE(a.wait_until([&] { return a.status().value("role", "") == "fenced"; }, 30s));
    auto st = a.status();
    CHECK(st["postgres"]["running"] == false);
    CHECK(a.log().find("interrupted") != std::string::npos);
    // No start of any kind on that directory: the gate refuses an unfence.
    auto refused = post_json(a, "/v1/unfence", {{"term", 4}}, 409);
    CHECK(refused["error"].get<std::string>().find("interrupted") != std::string::npos);
    CHECK(a.status()["postgres"]["running"] == false);

    // The rejoin again: not a second pg_rewind on that directory, a new clone.
    std::filesystem::remove(a.root + "/rewind-started");
    auto rejoined =
        post_json(a, "/v1/demote", {{"term", 5}, {"primary_conninfo", b.upstream()}}, 200);
    CHECK(rejoined["recloned"] == true);
    CHECK_FALSE(std::filesystem::exists(a.root + "/rewind-started"));
    CHECK_FALSE(std::filesystem::exists(a.pgdata + ".rewind-in-progress"));
    REQUIRE(a.wait_ready(120s));
    CHECK(a.status()["role"] == "replica");
    REQUIRE(b.psql("INSERT INTO t VALUES ('after')").code == 0);
    CHECK(a.wait_until(
        [&] {
            return a.psql_local("SELECT string_agg(v, ',' ORDER BY v) FROM t", "app").out ==
                   "after,common\n";
        },
        30s));
}
