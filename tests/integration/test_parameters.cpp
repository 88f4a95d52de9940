// The cluster's parameters file on real instances: a reload-only change in
// force on every member within seconds, the same version everywhere; bad
// versions refused with the server's own message, nothing changed; a fixed
// file applies.
#include <catch2/catch.hpp>
#include <fstream>

#include "harness.hpp"

using namespace std::chrono_literals;
using namespace harness;

TEST_CASE("cluster parameters: applied on every member, bad versions refused", "[parameters]") {
    Instance primary("par1");
    const std::string file = primary.root + "/cluster.conf";
    const std::string hba = primary.root + "/cluster-hba.conf";
    write_as_user(file, "work_mem = 12MB\n");
    write_as_user(hba, "host reports app 10.0.0.0/8 scram-sha-256\n");
    primary.extra_args = {"--pg-parameters-file", file, "--pg-hba-file", hba};
    primary.start();
    REQUIRE(primary.wait_ready());
    Instance replica("par2");
    replica.replica_of(primary);
    replica.extra_args = {"--pg-parameters-file", file, "--pg-hba-file", hba};
    replica.start();
    REQUIRE(replica.wait_ready(120s));
    CHECK(show_setting(primary, "work_mem") == "12MB");
    CHECK(show_setting(replica, "work_mem") == "12MB");

    write_as_user(file, "work_mem = 33MB\nmax_connections = 150\n");
    for (auto* i : {&primary, &replica})
        REQUIRE(i->wait_until([&] { return show_setting(*i, "work_mem") == "33MB"; }, 15s));
    auto version = primary.status()["parameters"]["version"];
    CHECK(version.is_string());
    CHECK(replica.status()["parameters"]["version"] == version);
    REQUIRE(primary.wait_until(
        [&] {
            auto p = primary.status()["parameters"]["pending_restart"];
            return p.is_array() && p.size() == 1 && p[0] == "max_connections";
        },
        10s));

    for (auto [text, message] :
         {std::pair<std::string, std::string>{"work_mem = 4XB\n", "Valid units for this parameter"},
          {"shared_bufers = 1GB\n", "unrecognized configuration parameter \"shared_bufers\""},
          {"port = 7000\n", "port is set by the manager"}}) {
        write_as_user(file, text);
        REQUIRE(primary.wait_until(
            [&, message = message] {
                auto e = primary.status()["parameters"]["error"];
                return e.is_string() && e.get<std::string>().find(message) != std::string::npos;
            },
            15s));
        CHECK(primary.status()["parameters"]["version"] == version);
        CHECK(show_setting(primary, "work_mem") == "33MB");
    }
    write_as_user(file, "work_mem = 8MB\n");
    for (auto* i : {&primary, &replica})
        REQUIRE(i->wait_until([&] { return show_setting(*i, "work_mem") == "8MB"; }, 15s));
    CHECK(primary.status()["parameters"]["error"].is_null());
    CHECK(primary.status()["parameters"]["version"] != version);
    const auto fixed = primary.status()["parameters"]["version"];
    // Broken hba lines: one the manager's check refuses, one only the
    // server does (an option its method does not take); the rules in force
    // stay, and so does the version.
    auto rules = [&] {
        return primary.psql_local("SELECT string_agg(array_to_string(database, ',') || ' ' || "
                                  "array_to_string(user_name, ','), ';' ORDER BY line_number) "
                                  "FROM pg_hba_file_rules WHERE database && '{reports,audit}'")
            .out;
    };
    const std::string rules_before = rules();
    CHECK(rules_before == "reports app\n");
    for (auto [text, message] :
         {std::pair<std::string, std::string>{"host reports app 10.0.0.0/33 scram-sha-256\n",
                                              "10.0.0.0/33"},
          {"host reports app 10.0.0.0/8 scram-sha-256 clientcert=bogus\n",
           "the server refuses it"}}) {
        write_as_user(hba, text);
        REQUIRE(primary.wait_until(
            [&, message = message] {
                auto e = primary.status()["parameters"]["error"];
                return e.is_string() && e.get<std::string>().find(message) != std::string::npos;
            },
            15s));
        CHECK(primary.status()["parameters"]["version"] == fixed);
        CHECK(rules() == rules_before);
        CHECK(primary.psql("SELECT 1").code == 0);  // the rules in force still let app in
    }
    // Fixed: the new rules are in force.
    write_as_user(hba, "host reports app 10.0.0.0/8 scram-sha-256\n"
                       "host audit app 10.0.0.0/8 scram-sha-256\n");
    REQUIRE(primary.wait_until([&] { return rules() == "reports app;audit app\n"; }, 15s));
    CHECK(primary.status()["parameters"]["error"].is_null());
}
