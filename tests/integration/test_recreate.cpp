// The kind host-path recipe's flow without Kubernetes: three instances whose
// data directories are folders of one host directory (instance-0..2), the
// whole cluster - members and controller - stopped and started again from
// the same folders, in another order (replicas first, the old primary last):
// the rows are there, the roles are the same, no failover, and no initdb or
// clone ran where data existed. Then one replica's folder emptied: that one
// member clones again, the others reuse their data.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "harness.hpp"

using namespace std::chrono_literals;
using namespace harness;

namespace {
// What a member's log says since `from` (its size before a start).
std::string since(const Instance& i, size_t from) {
    const std::string log = i.log();
    return from < log.size() ? log.substr(from) : std::string();
}
void stop_all(const std::vector<Instance*>& all) {
    for (auto* i : all) i->signal(SIGTERM);
    for (auto* i : all) REQUIRE(i->wait_exit(60s).has_value());
}
}  // namespace

TEST_CASE("host folders: the cluster stopped and started again reuses every data directory",
          "[recreate]") {
    Instance a("hf-0"), b("hf-1"), c("hf-2");
    std::vector<Instance*> all{&a, &b, &c};
    const std::string host = a.root + "/pgdata";
    // As in the recipe: the folder is the volume (PGDATA a directory in it,
    // the manager's other state beside PGDATA, in it too).
    std::vector<std::string> folder;
    for (int n = 0; n < 3; ++n) {
        folder.push_back(host + "/instance-" + std::to_string(n));
        REQUIRE(sh("install -d -m 0700 -o " + run_user() + " " + folder.back()).code == 0);
        all[n]->pgdata = folder.back() + "/pgdata";
    }
    sh("chown " + run_user() + " " + host);
    a.start();
    REQUIRE(a.wait_ready());
    REQUIRE(a.psql("CREATE TABLE cookie (id int PRIMARY KEY, flavour text); "
                   "INSERT INTO cookie VALUES (1, 'oat'), (2, 'ginger')")
                .code == 0);
    start_replicas(a, {&b, &c});
    Instance ctl("hf-ctl");
    make_controller(ctl, all);
    ctl.start();
    REQUIRE(ctl.wait_until([&] { return converged(ctl, "hf-0"); }, 60s));
    REQUIRE(a.wait_until([&] { return holds_write_right(a); }, 10s));
    REQUIRE(a.psql("INSERT INTO cookie VALUES (3, 'almond')").code == 0);
    REQUIRE(c.wait_until([&] { return c.psql_local("SELECT count(*) FROM cookie", "app").out == "3\n"; },
                         30s));

    // Everything goes (a deleted cluster: pods and controller), the folders stay.
    ctl.signal(SIGTERM);
    REQUIRE(ctl.wait_exit(30s).has_value());
    stop_all(all);
    std::vector<size_t> mark;
    for (auto* i : all) mark.push_back(i->log().size());
    const size_t ctl_mark = ctl.log().size();
    // Back in another order: the controller and the replicas first, the old
    // primary a few seconds later (it waits for a majority of its peers).
    ctl.start();
    c.start();
    b.start();
    std::this_thread::sleep_for(3s);
    a.start();
    REQUIRE(ctl.wait_until([&] { return converged(ctl, "hf-0"); }, 90s));
    for (size_t n = 0; n < all.size(); ++n) {
        const std::string log = since(*all[n], mark[n]);
        INFO(all[n]->name << ": " << log.substr(0, 3000));
        CHECK(log.find("reusing the existing data directory") != std::string::npos);
        CHECK(log.find("initializing an empty data directory") == std::string::npos);
        CHECK(log.find("cloning the primary") == std::string::npos);
    }
    CHECK(since(ctl, ctl_mark).find("\"action\":\"failover\"") == std::string::npos);
    CHECK(a.status()["role"] == "primary");
    CHECK(b.status()["role"] == "replica");
    CHECK(c.status()["role"] == "replica");
    CHECK(a.psql("SELECT string_agg(flavour, ',' ORDER BY id) FROM cookie").out ==
          "oat,ginger,almond\n");
    REQUIRE(a.psql("INSERT INTO cookie VALUES (4, 'hazelnut')").code == 0);

    // Again, with hf-2's folder emptied (a lost volume): it clones from the
    // primary; the others reuse theirs.
    ctl.signal(SIGTERM);
    REQUIRE(ctl.wait_exit(30s).has_value());
    stop_all(all);
    for (const auto& e : std::filesystem::directory_iterator(folder[2]))
        std::filesystem::remove_all(e.path());
    mark.clear();
    for (auto* i : all) mark.push_back(i->log().size());
    ctl.start();
    a.start();
    b.start();
    c.start();
    REQUIRE(ctl.wait_until([&] { return converged(ctl, "hf-0"); }, 120s));
    CHECK(since(a, mark[0]).find("reusing the existing data directory") != std::string::npos);
    CHECK(since(b, mark[1]).find("reusing the existing data directory") != std::string::npos);
    CHECK(since(c, mark[2]).find("cloning the primary") != std::string::npos);
    CHECK(since(c, mark[2]).find("initializing an empty data directory") == std::string::npos);
    REQUIRE(c.wait_until(
        [&] {
            return c.psql_local("SELECT string_agg(flavour, ',' ORDER BY id) FROM cookie", "app").out ==
                   "oat,ginger,almond,hazelnut\n";
        },
        30s));
}
