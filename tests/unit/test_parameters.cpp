#include <catch2/catch.hpp>

#include "bootstrap/pg_files.hpp"
#include "parameters/hba_rules.hpp"
#include "parameters/parameter_file.hpp"
#include "parameters/parameter_watch.hpp"

using namespace im;
using namespace im::parameters;

TEST_CASE("a parameters file: postgresql.conf syntax, sorted, rendered quoted", "[parameters]") {
    auto p = parse_parameters(
        "# the cluster's settings\n"
        "work_mem = 64MB\n"
        "Max_Connections 300   # more clients\n"
        "\n"
        "search_path = '\"$user\", public'\n"
        "application_name = 'it''s'\n"
        "pg_stat_statements.max = 5000\n");
    REQUIRE(p);
    REQUIRE(p->size() == 5);
    CHECK((*p)[0].name == "application_name");
    CHECK((*p)[0].value == "it's");
    CHECK((*p)[1].name == "max_connections");
    CHECK((*p)[1].value == "300");
    CHECK((*p)[3].value == "\"$user\", public");
    auto text = render_parameters(*p);
    CHECK(text.find("application_name = 'it''s'\n") != std::string::npos);
    CHECK(text.find("work_mem = '64MB'\n") != std::string::npos);
    // The rendering reads back as the same set.
    auto again = parse_parameters(text);
    REQUIRE(again);
    CHECK(render_parameters(*again) == text);
    auto args = check_arguments(*p);
    REQUIRE(args.size() == 10);
    CHECK(args[0] == "-c");
    CHECK(args[3] == "max_connections=300");
}

TEST_CASE("a parameters file: every problem refused, line by line", "[parameters]") {
    auto p = parse_parameters(
        "port = 5433\n"
        "work_mem = 4MB\n"
        "work_mem = 8MB\n"
        "include 'other.conf'\n"
        "shared_buffers\n"
        "log_min_messages = 'warning\n"
        "timezone = UTC extra\n"
        "synchronous_commit = off\n");
    REQUIRE_FALSE(p);
    const auto& m = p.error().message;
    CHECK(m.find("line 1: port is set by the manager (use --pg-port)") != std::string::npos);
    CHECK(m.find("line 3: work_mem is set twice (first on line 2)") != std::string::npos);
    CHECK(m.find("line 4: include") != std::string::npos);
    CHECK(m.find("line 5: shared_buffers: no value") != std::string::npos);
    CHECK(m.find("line 6: log_min_messages: unterminated") != std::string::npos);
    CHECK(m.find("line 7: timezone: unexpected text") != std::string::npos);
    CHECK(m.find("line 8: synchronous_commit is set by the manager") != std::string::npos);
    CHECK(managed_parameter("ARCHIVE_COMMAND") != "");
    CHECK(managed_parameter("work_mem") == "");
    CHECK(hot_standby_sensitive("max_connections"));
    CHECK_FALSE(hot_standby_sensitive("work_mem"));
}

TEST_CASE("extra hba rules: checked, normalized, placed before the final rejects", "[parameters]") {
    auto r = parse_hba_rules(
        "# reporting\n"
        "host    reports   analyst   10.0.0.0/8      scram-sha-256\n"
        "hostssl all       \"Joe Q\"   192.168.1.1 255.255.255.255 cert clientcert=verify-full\n"
        "local   app       app                       peer\n");
    REQUIRE(r);
    REQUIRE(r->size() == 3);
    CHECK((*r)[0] == "host reports analyst 10.0.0.0/8 scram-sha-256");
    CHECK((*r)[1] == "hostssl all \"Joe Q\" 192.168.1.1 255.255.255.255 cert clientcert=verify-full");
    auto hba = render_hba(false, render_hba_rules(*r));
    auto extra = hba.find("host reports analyst");
    REQUIRE(extra != std::string::npos);
    // After the manager's own rules and its rejects for the roles it owns,
    // before the final rejects.
    CHECK(extra > hba.find("hostssl  replication  streaming_replica"));
    CHECK(extra > hba.find("host     all          streaming_replica  all      reject"));
    CHECK(extra < hba.find("host     all          all                all      reject"));

    auto bad = parse_hba_rules(
        "hots all all 10.0.0.0/8 trust\n"
        "host all all 10.0.0.0/40 trust\n"
        "host all all 10.0.0.1 trust\n"
        "host all all all magic\n"
        "host all all all peer\n"
        "local all all\n"
        "host all all all md5 nooption\n");
    REQUIRE_FALSE(bad);
    const auto& m = bad.error().message;
    CHECK(m.find("line 1: unknown connection type hots") != std::string::npos);
    CHECK(m.find("line 2: bad address 10.0.0.0/40") != std::string::npos);
    CHECK(m.find("line 3: address 10.0.0.1 needs a CIDR length or a mask") != std::string::npos);
    CHECK(m.find("line 4: unknown authentication method magic") != std::string::npos);
    CHECK(m.find("line 5: peer authentication is for local") != std::string::npos);
    CHECK(m.find("line 6: expected TYPE") != std::string::npos);
    CHECK(m.find("line 7: option nooption") != std::string::npos);
}

TEST_CASE("a version names the same files alike and different files apart", "[parameters]") {
    CHECK(version_of("work_mem = '4MB'\n", "") == version_of("work_mem = '4MB'\n", ""));
    CHECK(version_of("work_mem = '4MB'\n", "") != version_of("work_mem = '8MB'\n", ""));
    CHECK(version_of("a", "b") != version_of("ab", ""));
    CHECK(version_of("", "").size() == 12);
}

TEST_CASE("conf_quote escapes quotes and backslashes", "[parameters]") {
    CHECK(conf_quote("it's") == "'it''s'");
    CHECK(conf_quote("a\\b") == "'a\\\\b'");
}
