// The controller's pure rules and its command line.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "api/api.hpp"
#include "bootstrap/replication_config.hpp"
#include "cli/cluster_table.hpp"
#include "controller/cluster_rules.hpp"
#include "controller/controller_config.hpp"
#include "controller/kubernetes/kube_api.hpp"
#include "controller/role_labels.hpp"

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

    const std::vector<std::string> names = {"n1", "n2", "n3"};
    auto spec = synchronous_spec(names, "n1", "first", 1, {{"n3", 2}}, std::nullopt);
    CHECK(spec["method"] == "first");
    CHECK(spec["standbys"] == nlohmann::json({"n3", "n2"}));
    CHECK(synchronous_spec(names, "n1", "any", 0, {}, std::nullopt).is_null());
    // Required: every other member is listed, streaming or not.
    spec = synchronous_spec(names, "n2", "any", 2, {}, std::nullopt);
    CHECK(spec["method"] == "any");
    CHECK(spec["number"] == 2);
    CHECK(spec["standbys"] == nlohmann::json({"n1", "n3"}));
    // Preferred: as many as stream, asynchronous when none does.
    spec = synchronous_spec(names, "n2", "any", 2, {}, std::set<std::string>{"n3"});
    CHECK(spec["number"] == 1);
    CHECK(spec["standbys"] == nlohmann::json({"n1", "n3"}));
    CHECK(synchronous_spec(names, "n2", "any", 2, {}, std::set<std::string>{}).is_null());
    // A member never promoted is left out (it could be a commit's only holder).
    spec = synchronous_spec(names, "n1", "any", 2, {{"n3", -1}}, std::nullopt);
    CHECK(spec["standbys"] == nlohmann::json({"n2"}));
    CHECK(spec["number"] == 1);

    auto table = render_table({{"term", 3},
                               {"primary", "n1"},
                               {"members", {member_summary(m[0], m), member_summary(m[1], m)}}});
    CHECK(table.find("Cluster: term 3, primary n1") != std::string::npos);
    CHECK(table.find("n2      replica") != std::string::npos);
    // The durability line and each member's sync state.
    m[0].synchronous_standby_names = "ANY 1 (\"n2\", \"n3\")";
    m[0].sync_states = {{"n2", "quorum"}};
    m[1].upstream_host = m[0].host;
    m[1].upstream_port = std::to_string(m[0].pg_port);
    CHECK(member_summary(m[0], m)["sync_state"] == "ANY 1");
    CHECK(member_summary(m[1], m)["sync_state"] == "quorum");
    table = render_table({{"term", 3},
                          {"primary", "n1"},
                          {"settings", {{"durability", "any 1"}, {"data_durability", "required"}}},
                          {"failover_blocked", "synchronous durability: quorum not met"},
                          {"members", {member_summary(m[0], m), member_summary(m[1], m)}}});
    CHECK(table.find("durability any 1 (required)") != std::string::npos);
    CHECK(table.find("Failover blocked: synchronous durability") != std::string::npos);
    CHECK(table.find("quorum") != std::string::npos);
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
        {"--member", "n1=http://a:1", "--api-token-file", "/etc/hostname", "--failover-delay",
         "100ms"},
        {"--member", "n1=http://a:1", "--api-token-file", "/etc/hostname", "--takeover-delay",
         "500ms"},
        {"--member", "n1=http://a:1", "--api-token-file", "/etc/hostname", "--membership", "n2"},
        {"--member", "n1=http://a:1", "--api-token-file", "/etc/hostname", "--membership",
         "n1,n1"},
        {"--api-token-file", "/etc/hostname", "--kubernetes", "--selector", "app=x",
         "--kube-api-url", "https://k:1", "--kube-token-file", "/etc/hostname", "--kube-ca-file",
         "/etc/hostname"},
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
         "/etc/hostname", "--synchronous", "1", "--failover-delay", "2s"},
        &out);
    REQUIRE(ok.ok());
    CHECK(ok->members.size() == 2);
    CHECK(ok->failover_delay.count() == 2000);
    CHECK(ok->synchronous == 1);
    CHECK(ok->membership == std::vector<std::string>{"n1", "n2"});
}

TEST_CASE("role labels: removals first, the primary last", "[cluster]") {
    std::vector<MemberView> m = {view("n1", "primary", 0, 3), view("n2", "replica", 500),
                                 view("n3", "replica", 900)};
    // A fresh cluster: replicas first, the primary last.
    auto plan = plan_role_labels(m, "n1", {{"n1", ""}, {"n2", ""}, {"n3", "replica"}});
    REQUIRE(plan.size() == 2);
    CHECK(plan[0].pod == "n2");
    CHECK(plan[0].role == "replica");
    CHECK(plan[1].pod == "n1");
    CHECK(plan[1].role == "primary");
    // Nothing to do when the labels are true; pods unknown to Kubernetes are skipped.
    CHECK(plan_role_labels(m, "n1", {{"n1", "primary"}, {"n2", "replica"}}).empty());

    // After a failover to n3: the old primary (unreachable) loses its label
    // before n3 gets it; n2 keeps its own.
    m[0] = member_view("n1", "http://10.0.0.1:8000", nullptr);
    m[2] = view("n3", "primary", 0, 4);
    plan = plan_role_labels(m, "n3", {{"n1", "primary"}, {"n2", "replica"}, {"n3", "replica"}});
    REQUIRE(plan.size() == 2);
    CHECK(plan[0].pod == "n1");
    CHECK_FALSE(plan[0].role.has_value());
    CHECK(plan[1].pod == "n3");
    CHECK(plan[1].role == "primary");

    // An unreachable replica keeps its label (the Service's readiness covers it),
    // and so does an unreachable primary still held as primary.
    CHECK(plan_role_labels(m, "n1", {{"n1", "primary"}}).empty());
    m[1] = member_view("n2", "http://10.0.0.2:8000", nullptr);
    CHECK(plan_role_labels(m, "n3", {{"n2", "replica"}}).empty());

    // A switchover: the demoted primary turns replica before the new one is primary.
    m = {view("n1", "replica", 900, 5), view("n2", "primary", 0, 5)};
    plan = plan_role_labels(m, "n2", {{"n1", "primary"}, {"n2", "replica"}});
    REQUIRE(plan.size() == 2);
    CHECK(plan[0].pod == "n1");
    CHECK(plan[0].role == "replica");
    CHECK(plan[1].pod == "n2");

    // Fenced or a stale second primary: no label. Before any primary is
    // adopted (a controller just started) a primary's label stays.
    m = {view("n1", "fenced", 0, 5), view("n2", "primary", 0, 5), view("n3", "primary", 0, 2)};
    plan = plan_role_labels(m, "n2", {{"n1", "replica"}, {"n2", "primary"}, {"n3", "primary"}});
    REQUIRE(plan.size() == 2);
    CHECK_FALSE(plan[0].role.has_value());
    CHECK_FALSE(plan[1].role.has_value());
    CHECK(plan_role_labels(m, "", {{"n2", "primary"}, {"n3", "primary"}}).empty());
}

TEST_CASE("Kubernetes API: pods, patches and selectors", "[cluster]") {
    auto pod = pod_from_json(nlohmann::json::parse(R"({
        "metadata": {"name": "demo-1", "resourceVersion": "812",
                     "labels": {"app": "demo", "role": "replica"}},
        "status": {"podIP": "10.1.2.3", "phase": "Running"}})"));
    CHECK(pod.name == "demo-1");
    CHECK(pod.ip == "10.1.2.3");
    CHECK(pod.role == "replica");
    CHECK(pod.resource_version == "812");
    CHECK_FALSE(pod.deleting);
    auto pending = pod_from_json(nlohmann::json::parse(
        R"({"metadata": {"name": "demo-2", "deletionTimestamp": "2026-01-01T00:00:00Z"}})"));
    CHECK(pending.ip.empty());
    CHECK(pending.role.empty());
    CHECK(pending.deleting);

    CHECK(role_label_patch(pod, std::string("primary")) ==
          nlohmann::json::parse(
              R"({"metadata": {"labels": {"role": "primary"}, "resourceVersion": "812"}})"));
    CHECK(role_label_patch(pending, std::nullopt) ==
          nlohmann::json::parse(R"({"metadata": {"labels": {"role": null}}})"));

    KubeSettings k;
    k.member_port = 8000;
    CHECK(member_url(pod, k) == "http://10.1.2.3:8000");
    CHECK(member_url(pending, k).empty());  // no IP yet: unreachable
    Pod v6 = pod;
    v6.ip = "fd00::5";
    CHECK(member_url(v6, k) == "http://[fd00::5]:8000");
    k.member_domain = "demo-headless";
    k.member_scheme = "https";
    CHECK(member_url(pod, k) == "https://demo-1.demo-headless:8000");
    CHECK(member_url(pending, k).empty());
}

TEST_CASE("controller command line: Kubernetes mode", "[cluster]") {
    auto dir = std::filesystem::temp_directory_path() / "im-kube-args";
    std::filesystem::create_directories(dir);
    std::string token = (dir / "token").string(), ca = (dir / "ca.crt").string();
    std::ofstream(token) << "abc\n";
    std::ofstream(ca) << "not checked here\n";
    // What a pod gives; the API server's address comes from the environment or the flag.
    std::vector<std::string> in_pod = {"--api-token-file",
                                       "/etc/hostname",
                                       "--kubernetes",
                                       "--kube-token-file",
                                       token,
                                       "--kube-ca-file",
                                       ca,
                                       "--namespace",
                                       "db"};
    auto plus = [](std::vector<std::string> args, const std::vector<std::string>& extra) {
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    };
    auto base = plus(in_pod, {"--kube-api-url", "https://10.0.0.1:6443", "--membership",
                              "demo-1,demo-0,demo-2"});
    auto with = [&](const std::vector<std::string>& extra) { return plus(base, extra); };
    ParseOutcome out;
    auto ok =
        parse_controller_args(with({"--selector", "app=demo", "--member-port", "8000"}), &out);
    REQUIRE(ok.ok());
    CHECK(ok->kube.enabled);
    CHECK(ok->kube.selector == "app=demo");
    CHECK(ok->kube.ns == "db");
    CHECK(ok->members.empty());
    CHECK(ok->membership == std::vector<std::string>{"demo-0", "demo-1", "demo-2"});
    std::vector<std::vector<std::string>> bad = {
        plus(in_pod, {"--kube-api-url", "https://10.0.0.1:6443", "--selector", "app=demo"}),
        with({}),                                                       // no selector
        with({"--selector", "app"}),                                    // not a selector
        with({"--selector", "app=demo", "--member", "n1=http://a:1"}),  // both ways
        with({"--selector", "app=demo", "--member-port", "0"}),
        with({"--selector", "app=demo", "--member-scheme", "ftp"}),
        plus(in_pod, {"--selector", "app=demo", "--kube-api-url", "http://10.0.0.1:6443"}),
        {"--api-token-file", "/etc/hostname", "--kubernetes", "--selector", "app=demo",
         "--kube-api-url", "https://10.0.0.1:6443", "--kube-token-file", (dir / "missing").string(),
         "--kube-ca-file", ca, "--namespace", "db"},
    };
    for (const auto& args : bad) {
        ParseOutcome o;
        INFO(nlohmann::json(args).dump());
        auto r = parse_controller_args(args, &o);
        REQUIRE_FALSE(r.ok());
        // Refused for what is wrong, not for a flag given twice.
        CHECK(r.error().message.find("At Most 1") == std::string::npos);
        CHECK(o.exit_code == 2);
    }

    // In a pod: the API server from KUBERNETES_SERVICE_HOST/PORT (IPv6 in brackets).
    in_pod.insert(in_pod.end(), {"--selector", "app=demo", "--membership", "demo-0"});
    ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    auto pod = parse_controller_args(in_pod, &out);
    REQUIRE(pod.ok());
    CHECK(pod->kube.api_url == "https://10.96.0.1:443");
    ::setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    pod = parse_controller_args(in_pod, &out);
    REQUIRE(pod.ok());
    CHECK(pod->kube.api_url == "https://[fd00::1]:443");
    ::unsetenv("KUBERNETES_SERVICE_HOST");
    ::unsetenv("KUBERNETES_SERVICE_PORT");
    CHECK_FALSE(parse_controller_args(in_pod, &out).ok());  // not in a pod, no --kube-api-url
    std::filesystem::remove_all(dir);
}

TEST_CASE("members whose slot names collide are refused", "[cluster]") {
    CHECK_FALSE(slot_name_collision({"a-b", "c", "a_c"}));
    auto clash = slot_name_collision({"db-1", "x", "db_1"});
    REQUIRE(clash);
    CHECK(clash->find("db-1") != std::string::npos);
    CHECK(clash->find("db_1") != std::string::npos);
    CHECK(slot_name_collision({"Pg1", "pg1"}));
    // The controller refuses them at start.
    ParseOutcome out;
    auto cfg = parse_controller_args({"--member", "a-b=http://a:1", "--member", "a_b=http://b:1",
                                      "--api-token-file", "/etc/hostname"},
                                     &out);
    REQUIRE_FALSE(cfg.ok());
    CHECK(out.exit_code == 2);
    CHECK(cfg.error().message.find("share the replication slot") != std::string::npos);
    // And a manager refuses such a member list in a command.
    auto names = parse_command_body(R"({"term":2,"members":["a-b","a_b"]})",
                                    {{"term", {FieldType::term}}, {"members", {FieldType::names}}});
    CHECK_FALSE(names.ok());
    auto urls = parse_command_body(
        R"({"term":2,"ttl_ms":1000,"members":{"a-b":"http://a:1","a_b":"http://b:1"}})",
        {{"term", {FieldType::term}},
         {"ttl_ms", {FieldType::millis}},
         {"members", {FieldType::member_urls}}});
    CHECK_FALSE(urls.ok());
}

TEST_CASE("member URLs name a member without an address yet as \"\"", "[cluster]") {
    // A pod without an IP: still a member (it counts towards the majority,
    // as an unreachable one), and the body stays valid.
    CommandSpec members = {{"term", {FieldType::term}},
                           {"member_urls", {FieldType::member_urls, true}}};
    auto ok = parse_command_body(
        R"({"term":2,"member_urls":{"db-0":"http://10.0.0.1:8000","db-1":""}})", members);
    REQUIRE(ok.ok());
    CHECK((*ok)["member_urls"].size() == 2);
    CHECK_FALSE(
        parse_command_body(R"({"term":2,"member_urls":{"db-0":"nota url"}})", members).ok());
}
