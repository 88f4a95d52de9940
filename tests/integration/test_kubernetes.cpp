// The controller's Kubernetes mode against a stand-in API server (HTTPS,
// token, list/watch/patch as the real one answers) and three real
// instances at their "pod IPs" on loopback: the role labels follow the
// members, a new pod joins through the watch, a 409 is read again and
// retried, a too-old watch is listed again, and on failover the old
// primary's label goes before the new primary's comes.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "fake_kube.hpp"
#include "harness.hpp"

using namespace harness;

namespace {
size_t count_calls(FakeKube& kube, const std::string& method, const std::string& prefix,
                   unsigned status = 0) {
    size_t n = 0;
    for (const auto& c : kube.calls())
        if (c.method == method && c.target.rfind(prefix, 0) == 0 && (!status || c.status == status))
            ++n;
    return n;
}

// The stand-in API server's certificate and the service-account token, in
// the controller's directory (readable by the user it runs as).
struct KubeCredentials {
    std::string crt, key, token_file, token;
    KubeCredentials(const Instance& ctl, std::string t)
        : crt(ctl.root + "/kube.crt"),
          key(ctl.root + "/kube.key"),
          token_file(ctl.root + "/kube-token"),
          token(std::move(t)) {
        REQUIRE(sh(manager_binary() + " helper make-cert " + crt + " " + key + " kube-api", true)
                    .code == 0);
        REQUIRE(sh("printf " + token + " > " + token_file, true).code == 0);
    }
};

// `ctl` as a --kubernetes controller of the pods labeled app=APP in
// namespace pgtest, with `member`'s API token.
void make_kube_controller(Instance& ctl, const Instance& member, const FakeKube& kube,
                          const KubeCredentials& creds, const std::string& app,
                          const std::vector<std::string>& extra) {
    ctl.token_file = member.token_file;
    ctl.command_override = {"controller",
                            "--api-token-file",
                            ctl.token_file,
                            "--listen",
                            ctl.address + ":" + std::to_string(ctl.http_port),
                            "--kubernetes",
                            "--selector",
                            "app=" + app,
                            "--namespace",
                            "pgtest",
                            "--kube-api-url",
                            kube.url(),
                            "--kube-token-file",
                            creds.token_file,
                            "--kube-ca-file",
                            creds.crt};
    ctl.command_override.insert(ctl.command_override.end(), extra.begin(), extra.end());
}

// Index of the first PATCH of `pod` that set `role` (null: removed) and succeeded.
std::optional<size_t> patch_index(FakeKube& kube, const std::string& pod,
                                  const nlohmann::json& role) {
    auto calls = kube.calls();
    for (size_t i = 0; i < calls.size(); ++i)
        if (calls[i].method == "PATCH" && calls[i].status == 200 &&
            calls[i].target == "/api/v1/namespaces/pgtest/pods/" + pod &&
            calls[i].body["metadata"]["labels"]["role"] == role)
            return i;
    return std::nullopt;
}
}  // namespace

TEST_CASE("controller: Kubernetes mode keeps the pods' role labels true", "[kubernetes]") {
    Instance p("kt-0"), a("kt-1"), b("kt-2");
    int api_port = free_port();
    p.address = "127.0.0.11";
    a.address = "127.0.0.12";
    b.address = "127.0.0.13";
    for (auto* i : {&p, &a, &b}) i->http_port = api_port;  // one port, one address per pod
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1)").code == 0);
    start_replicas(p, {&a, &b});

    Instance ctl("kt-ctl");
    KubeCredentials creds(ctl, "kube-token-123");
    FakeKube kube("pgtest", "app", "kt", creds.token, creds.crt, creds.key);
    kube.add_pod("kt-0", p.address);
    kube.add_pod("kt-1", a.address);
    kube.add_pod("other-0", "127.0.0.14", "other");  // another app's pod: never a member
    make_kube_controller(ctl, p, kube, creds, "kt",
                         {"--member-port", std::to_string(api_port), "--membership",
                          "kt-0,kt-1,kt-2"});
    ctl.start();
    INFO(ctl.log_tail());
    REQUIRE(ctl.wait_until(
        [&] { return kube.role_of("kt-0") == "primary" && kube.role_of("kt-1") == "replica"; },
        30s));
    CHECK_FALSE(kube.role_of("other-0").has_value());

    // A new pod comes through the watch: first without an address, then with one.
    kube.add_pod("kt-2", "");
    REQUIRE(ctl.wait_until([&] { return cluster_of(ctl)["kubernetes"]["pods"].contains("kt-2"); },
                           10s));
    CHECK(cluster_of(ctl)["kubernetes"]["pods"]["kt-2"]["ip"] == "");
    kube.set_pod_ip("kt-2", b.address);
    REQUIRE(ctl.wait_until([&] { return kube.role_of("kt-2") == "replica"; }, 20s));
    CHECK(cluster_of(ctl)["members"].size() == 3);
    CHECK(cluster_of(ctl)["kubernetes"]["pods"]["kt-2"]["role_label"] == "replica");

    // Someone changed the pod between our read and our patch: 409, read
    // again, patch again.
    kube.conflict_next_patch();
    kube.set_label("kt-1", std::nullopt);
    REQUIRE(ctl.wait_until([&] { return kube.role_of("kt-1") == "replica"; }, 20s));
    CHECK(count_calls(kube, "PATCH", "/api/v1/namespaces/pgtest/pods/kt-1", 409) == 1);
    CHECK(count_calls(kube, "GET", "/api/v1/namespaces/pgtest/pods/kt-1", 200) >= 1);

    // The watch is too old for the server (410): the controller lists again.
    auto lists = [&] {
        size_t n = 0;
        for (const auto& c : kube.calls())
            if (c.method == "GET" && c.target.find("/pods?") != std::string::npos &&
                c.target.find("watch=") == std::string::npos)
                ++n;
        return n;
    };
    size_t before = lists();
    kube.expire_watches();
    REQUIRE(ctl.wait_until([&] { return lists() > before; }, 20s));
    kube.set_label("kt-2", std::nullopt);
    REQUIRE(ctl.wait_until([&] { return kube.role_of("kt-2") == "replica"; }, 20s));

    // Failover: the primary pod's manager dies. Its label goes first, then
    // the new primary's comes.
    p.signal(SIGKILL);
    REQUIRE(p.wait_exit(10s).has_value());
    std::string next;
    REQUIRE(ctl.wait_until(
        [&] {
            for (const char* n : {"kt-1", "kt-2"})
                if (kube.role_of(n) == "primary") next = n;
            return !next.empty();
        },
        30s));
    CHECK_FALSE(kube.role_of("kt-0").has_value());
    auto removed = patch_index(kube, "kt-0", nullptr);
    auto promoted = patch_index(kube, next, "primary");
    REQUIRE(removed.has_value());
    REQUIRE(promoted.has_value());
    CHECK(*removed < *promoted);
    Instance& np = next == "kt-1" ? a : b;
    CHECK(np.psql("INSERT INTO t VALUES (2)").code == 0);

    // The pod is recreated (a new pod object without the label) on the same
    // volume: the old primary rejoins as a replica and is labeled so.
    kube.delete_pod("kt-0");
    kube.add_pod("kt-0", "");
    p.start();
    kube.set_pod_ip("kt-0", p.address);
    REQUIRE(ctl.wait_until([&] { return kube.role_of("kt-0") == "replica"; }, 60s));
    CHECK(p.wait_until([&] { return p.psql("SELECT count(*) FROM t").out == "2\n"; }, 30s));

    // A controller that does not trust the API server's certificate talks to it not at all.
    Instance wary("kt-wary");
    KubeCredentials own(wary, creds.token);  // the right token, but another certificate as CA
    size_t calls_before = kube.calls().size();
    make_kube_controller(wary, p, kube, own, "kt",
                         {"--member-port", std::to_string(api_port), "--membership",
                          "kt-0,kt-1,kt-2"});
    wary.start();
    REQUIRE(wary.wait_until(
        [&] { return wary.log().find("cannot list the pods") != std::string::npos; }, 20s));
    CHECK(wary.log().find("certificate verify failed") != std::string::npos);
    CHECK(kube.calls().size() == calls_before);
    CHECK(cluster_of(wary)["members"].empty());

    auto violations = kube.violations();
    for (const auto& v : violations) WARN(v);
    CHECK(violations.empty());

    // The stand-in's checks bite: a wrong token and a wrong content type are caught.
    im::http_client::TlsClientOptions tls;
    tls.ca_file = creds.crt;
    auto url = *im::http_client::parse_url(kube.url() + "/api/v1/namespaces/pgtest/pods/kt-1");
    CHECK(im::http_client::http_request("GET", url, "", "wrong", 5s, tls)->status == 401);
    CHECK(im::http_client::http_request("PATCH", url,
                                        R"({"metadata":{"labels":{"role":"primary"}}})",
                                        "kube-token-123", 5s, tls)
              ->status == 415);
    CHECK(kube.violations().size() == 2);
}

namespace {
// /etc/netns/NS/hosts for each namespace: `ip netns exec` mounts it over
// /etc/hosts, so the namespace's processes resolve these names (a
// headless Service's DNS records, in a cluster). Rewritten in place: the
// mount follows the file, not a new one.
struct NetnsHosts {
    std::vector<std::string> namespaces;
    void write(const std::string& text) {
        for (const auto& ns : namespaces) {
            std::filesystem::create_directories("/etc/netns/" + ns);
            std::ofstream("/etc/netns/" + ns + "/hosts", std::ios::trunc) << text;
        }
    }
    ~NetnsHosts() {
        for (const auto& ns : namespaces) std::filesystem::remove_all("/etc/netns/" + ns);
    }
};
}  // namespace

TEST_CASE("Kubernetes mode: members by DNS name survive a re-creation of every pod with new IPs",
          "[kubernetes][root]") {
    if (skip_unless_root("network namespaces")) return;
    // Three "pods" and the controller, each in a network namespace of its own.
    NetLab lab(4);
    NetnsHosts hosts{{lab.ns(0), lab.ns(1), lab.ns(2), lab.ns(3)}};
    std::vector<std::string> ips = {lab.address(0), lab.address(1), lab.address(2)};
    auto write_hosts = [&] {
        std::string text = "127.0.0.1 localhost\n" + lab.host_address() + " kube-api\n";
        for (int i = 0; i < 3; ++i) text += ips[i] + " kd-" + std::to_string(i) + ".kd-headless\n";
        hosts.write(text);
    };
    write_hosts();

    Instance p("kd-0"), a("kd-1"), b("kd-2");
    std::vector<Instance*> pods = {&p, &a, &b};
    for (int i = 0; i < 3; ++i) lab.place(*pods[i], i);
    p.start(true);
    REQUIRE(p.wait_ready());
    REQUIRE(p.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2)").code == 0);
    start_replicas(p, {&a, &b}, true);

    Instance ctl("kd-ctl");
    KubeCredentials creds(ctl, "kube-token-456");
    FakeKube kube("pgtest", "app", "kd", creds.token, creds.crt, creds.key, lab.host_address(),
                  "kube-api");
    for (int i = 0; i < 3; ++i) kube.add_pod("kd-" + std::to_string(i), ips[i]);
    ctl.netns = lab.ns(3);
    ctl.address = lab.address(3);
    make_kube_controller(ctl, p, kube, creds, "kd",
                         {"--member-port", "8000", "--member-domain", "kd-headless",
                          "--membership", "kd-0,kd-1,kd-2", "--durability", "any 1"});
    ctl.start();
    INFO(ctl.log_tail());
    auto labeled = [&] {
        return kube.role_of("kd-0") == "primary" && kube.role_of("kd-1") == "replica" &&
               kube.role_of("kd-2") == "replica";
    };
    REQUIRE(ctl.wait_until(labeled, 30s));
    // The replicas are told to stream from the primary's name, not its IP.
    auto upstream_by_name = [&] {
        for (auto* r : {&a, &b})
            if (r->status()["replication"]["upstream"].value("host", "") != "kd-0.kd-headless")
                return false;
        return true;
    };
    REQUIRE(ctl.wait_until(upstream_by_name, 30s));
    REQUIRE(p.wait_until([&] { return holds_write_right(p); }, 10s));
    // Synchronous on Kubernetes: the primary waits for one of the others.
    auto synchronous = [&] {
        return p.status()["replication"].value("synchronous_standby_names", "") ==
               "ANY 1 (\"kd-1\", \"kd-2\")";
    };
    REQUIRE(p.wait_until(synchronous, 30s));

    // The StatefulSet is deleted and created again: every pod stops, and its
    // successor comes up on the same volume with a new IP.
    for (auto* i : pods) i->signal(SIGTERM);
    for (auto* i : pods) REQUIRE(i->wait_exit(60s).has_value());
    for (int i = 0; i < 3; ++i) {
        std::string name = "kd-" + std::to_string(i);
        kube.delete_pod(name);
        kube.add_pod(name, "");
        ips[i] = lab.readdress(i, 40 + i);
        pods[i]->address = ips[i];
    }
    write_hosts();
    // The controller is re-created with the rest (kubectl delete -k takes it
    // too): a new controller, which has not seen a primary yet.
    ctl.signal(SIGTERM);
    REQUIRE(ctl.wait_exit(30s).has_value());
    ctl.start();
    // The old primary first: alone, it waits for a majority of its peers
    // (found by name) before it serves; the controller has lost it for
    // longer than the failover delay when the replicas come.
    p.start(true);
    kube.set_pod_ip("kd-0", ips[0]);
    REQUIRE(p.wait_until(
        [&] { return p.log().find("waiting for a majority") != std::string::npos; }, 30s));
    std::this_thread::sleep_for(2500ms);
    for (int i = 1; i < 3; ++i) {
        pods[i]->start(true);
        kube.set_pod_ip("kd-" + std::to_string(i), ips[i]);
    }
    // kd-0 is primary again, without a failover: it found its peers by name.
    REQUIRE(ctl.wait_until(labeled, 90s));
    REQUIRE(p.wait_ready(30s));
    CHECK(p.status()["role"] == "primary");
    CHECK(p.wait_until(synchronous, 30s));
    CHECK(p.psql("INSERT INTO t VALUES (3)").code == 0);
    for (auto* r : {&a, &b})
        CHECK(r->wait_until([&] { return r->psql("SELECT count(*) FROM t").out == "3\n"; }, 30s));
    auto decisions = cluster_of(ctl)["decisions"];
    bool waited = false;
    for (const auto& d : decisions) {
        CHECK(d["action"] != "failover");
        if (d["reason"].get<std::string>().find("on its way up") != std::string::npos)
            waited = true;
    }
    // Whether the controller saw a replica running before the primary served
    // (and so had to wait for it) depends on timing; say which it was.
    WARN("the controller " << (waited ? "held a failover back for the primary on its way up"
                                      : "saw the primary serve before any replica ran"));
    CHECK(kube.violations().empty());
}

TEST_CASE("Kubernetes: a template change replaces the pods in order, one switchover, no failover",
          "[kubernetes]") {
    Instance p("ku-0"), a("ku-1"), b("ku-2");
    std::vector<Instance*> pods{&p, &a, &b};
    int api_port = free_port();
    p.address = "127.0.0.31";
    a.address = "127.0.0.32";
    b.address = "127.0.0.33";
    for (auto* i : pods) i->http_port = api_port;
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1)").code == 0);
    start_replicas(p, {&a, &b});

    Instance ctl("ku-ctl");
    KubeCredentials creds(ctl, "kube-token-789");
    FakeKube kube("pgtest", "app", "ku", creds.token, creds.crt, creds.key);
    kube.set_statefulset("ku", "ku-rev1");
    for (auto* i : pods) kube.add_pod(i->name, i->address);
    make_kube_controller(ctl, p, kube, creds, "ku",
                         {"--member-port", std::to_string(api_port), "--membership",
                          "ku-0,ku-1,ku-2"});
    ctl.start();
    INFO(ctl.log_tail());
    REQUIRE(ctl.wait_until([&] { return converged(ctl, "ku-0"); }, 60s));
    REQUIRE(p.wait_until([&] { return holds_write_right(p); }, 10s));

    // The StatefulSet's controller with updateStrategy OnDelete, and the
    // kubelet: a deleted pod's container stops, and a new pod from the
    // current template starts on the same volume.
    std::atomic<bool> done{false};
    std::thread statefulset([&] {
        size_t seen = 0;
        while (!done) {
            auto deleted = kube.deleted();
            for (; seen < deleted.size(); ++seen)
                for (auto* i : pods)
                    if (i->name == deleted[seen]) {
                        i->signal(SIGTERM);
                        i->wait_exit(60s);
                        kube.add_pod(i->name, "");
                        i->start();
                        kube.set_pod_ip(i->name, i->address);
                    }
            std::this_thread::sleep_for(50ms);
        }
    });
    kube.set_statefulset("ku", "ku-rev2");  // a new image in the template
    auto all_current = [&] {
        for (auto* i : pods)
            if (kube.revision_of(i->name) != "ku-rev2") return false;
        auto c = cluster_of(ctl);
        return c["rollout"].is_object() && !c["rollout"].value("active", true) && converged(ctl);
    };
    const bool finished = ctl.wait_until(all_current, 180s);
    done = true;
    statefulset.join();
    REQUIRE(finished);
    // Replicas first (in name order), the old primary last, after one switchover.
    CHECK(kube.deleted() == std::vector<std::string>{"ku-1", "ku-2", "ku-0"});
    const std::string primary = primary_of(ctl);
    CHECK(primary != "ku-0");
    size_t switchovers = 0;
    const std::string log = ctl.log();
    for (auto at = log.find("\"action\":\"switchover-done\""); at != std::string::npos;
         at = log.find("\"action\":\"switchover-done\"", at + 1))
        ++switchovers;
    CHECK(switchovers == 1);
    CHECK(log.find("\"action\":\"failover\"") == std::string::npos);
    Instance& np = primary == "ku-1" ? a : b;
    CHECK(np.psql("INSERT INTO t VALUES (2)").code == 0);
    CHECK(p.wait_until([&] { return p.psql("SELECT count(*) FROM t").out == "2\n"; }, 30s));
    auto violations = kube.violations();
    for (const auto& v : violations) WARN(v);
    CHECK(violations.empty());
}
