// The controller's pure rules and its command line.
#include <catch2/catch.hpp>

#include "cluster_rules.hpp"
#include "cluster_table.hpp"
#include "controller_config.hpp"

using namespace im;

namespace {
MemberView view(const std::string& name, const std::string& role, uint64_t received,
                uint64_t term = 1, int port = 5432) {
    nlohmann::json status = {
        {"role", role},
        {"ready", true},
        {"term", term},
        {"standby", role == "replica"},
        {"postgres",
         {{"running", true}, {"system_identifier", "42"}, {"port", port}, {"timeline", 1}}},
        {"replication",
         {{"received_lsn", "0/" + std::to_string(received)},
          {"replayed_lsn", "0/" + std::to_string(received)},
          {"streaming", true},
          {"upstream", {{"host", "10.0.0.1"}, {"port", "5432"}}}}}};
    return member_view(name, "http://10.0.0." + name.substr(1) + ":8000", status);
}
}  // namespace

TEST_CASE("cluster rules: the primary, candidates and followers", "[cluster]") {
    std::vector<MemberView> m = {view("n1", "primary", 0, 3), view("n2", "replica", 500),
                                 view("n3", "replica", 900)};
    REQUIRE(find_primary(m) == 0u);
    // A second, older primary loses to the newer term.
    m.push_back(view("n4", "primary", 0, 2));
    CHECK(find_primary(m) == 0u);
    m.pop_back();
    CHECK(cluster_system_identifier(m) == "42");
    CHECK(follows(m[1], m[0]));
    CHECK_FALSE(follows(m[1], m[2]));
    CHECK(conninfo_of(m[0]) == "host=10.0.0.1 port=5432");

    // Most WAL first; priority breaks ties; a negative priority never; sync only.
    CHECK(pick_candidate(m, "42", {}, std::nullopt) == 2u);
    m[1].received_lsn = m[2].received_lsn;
    m[1].replayed_lsn = m[2].replayed_lsn;
    CHECK(pick_candidate(m, "42", {}, std::nullopt) == 1u);  // same WAL: by name
    CHECK(pick_candidate(m, "42", {{"n3", 5}}, std::nullopt) == 2u);
    CHECK(pick_candidate(m, "42", {{"n2", -1}}, std::nullopt) == 2u);
    CHECK(pick_candidate(m, "42", {}, std::set<std::string>{"n3"}) == 2u);
    CHECK_FALSE(pick_candidate(m, "42", {}, std::set<std::string>{}).has_value());
    CHECK_FALSE(pick_candidate(m, "other", {}, std::nullopt).has_value());
    m[2].reachable = false;
    m[1].running = false;
    CHECK_FALSE(pick_candidate(m, "42", {}, std::nullopt).has_value());

    auto spec = synchronous_spec(m, m[0], 1, {{"n3", 2}});
    CHECK(spec["method"] == "first");
    CHECK(spec["standbys"] == nlohmann::json({"n3", "n2"}));
    CHECK(synchronous_spec(m, m[0], 0, {}).is_null());

    auto table = render_table({{"term", 3},
                               {"primary", "n1"},
                               {"members", {member_summary(m[0], m), member_summary(m[1], m)}}});
    CHECK(table.find("Cluster: term 3, primary n1") != std::string::npos);
    CHECK(table.find("n2      replica") != std::string::npos);
    CHECK(member_summary(m[1], m)["upstream"] == "n1");
}

TEST_CASE("controller arguments: every bad input is exit code 2", "[cluster]") {
    std::vector<std::vector<std::string>> bad = {
        {},
        {"--member", "n1"},
        {"--member", "n1=ftp://x", "--api-token-file", "/etc/hostname"},
        {"--member", "n1=http://a:1", "--member", "n1=http://b:1", "--api-token-file",
         "/etc/hostname"},
        {"--member", "n1=http://a:1"},
        {"--member", "n1=http://a:1", "--api-token-file", "/etc/hostname", "--lease-ttl", "2s",
         "--failover-delay", "2s"},
        {"--member", "n1=http://a:1", "--api-token-file", "/etc/hostname", "--synchronous", "1"},
        {"--member", "n1=http://a:1", "--api-token-file", "/etc/hostname", "--priority", "n1=x"},
        {"--member", "n1=http://a:1", "--api-token-file", "/etc/hostname", "--listen", "x"},
    };
    for (const auto& args : bad) {
        ParseOutcome out;
        auto cfg = parse_controller_args(args, &out);
        INFO(nlohmann::json(args).dump());
        REQUIRE_FALSE(cfg.ok());
        CHECK(out.exit_code == 2);
    }
    ParseOutcome out;
    auto ok = parse_controller_args(
        {"--member", "n1=http://a:1", "--member", "n2=http://b:1", "--api-token-file",
         "/etc/hostname", "--synchronous", "1", "--lease-ttl", "2s"},
        &out);
    REQUIRE(ok.ok());
    CHECK(ok->members.size() == 2);
    CHECK(ok->failover_delay.count() == 2750);
    CHECK(ok->synchronous == 1);
}
