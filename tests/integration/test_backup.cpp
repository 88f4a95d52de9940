// Backups, continuous archiving and point-in-time recovery with the real
// pgbackrest and a POSIX repository in the test's directory:
// - restores to a time, an LSN and a restore point bring back what was
//   committed before the target and nothing after;
// - bad restore requests are refused with nothing written;
// - the archive stays whole across switchovers and a failover under a
//   writer: a restore to the archive's end has every acknowledged commit;
// - a broken repository shows in status and metrics, the primary serves on;
// - a replica whose WAL the primary removed catches up from the archive.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "harness.hpp"

using namespace harness;

namespace {
const char* kStanza = "it";

// A repository shared by the test's instances, owned by the user postgres runs as.
std::string make_repo(Instance& owner) {
    std::string repo = owner.root + "/repo";
    REQUIRE(sh("mkdir -p " + repo, running_as_root()).code == 0);
    return repo;
}

void with_repo(Instance& i, const std::string& repo, std::vector<std::string> more = {},
               const std::string& stanza = kStanza) {
    i.extra_args.insert(i.extra_args.end(), {"--backup-repo", repo, "--backup-stanza", stanza});
    i.extra_args.insert(i.extra_args.end(), more.begin(), more.end());
}

nlohmann::json backup_view(Instance& i) {
    auto s = i.status();
    return s.is_object() && s.contains("backup") ? s["backup"] : nlohmann::json();
}

bool stanza_ready(Instance& i) {
    auto b = backup_view(i);
    return b.is_object() && b.value("stanza_ready", false);
}

// Asks for a full backup and waits for it (and for the repository to list it).
void take_backup(Instance& i) {
    auto before = backup_view(i).value("backups", 0);
    post_json(i, "/v1/backup", {{"type", "full"}}, 200);
    REQUIRE(i.wait_until(
        [&] {
            auto b = backup_view(i);
            return b.value("running", nlohmann::json()).is_null() &&
                   b.value("last_result", nlohmann::json()).is_object() &&
                   b["last_result"].value("ok", false) && b.value("backups", 0) > before;
        },
        120s));
}

std::string one_value(Instance& i, const std::string& sql) {
    auto r = i.psql_local(sql);
    REQUIRE(r.code == 0);
    std::string v = r.out;
    while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
    return v;
}

// Until the segment holding everything written so far is in the archive.
void archive_now(Instance& i) {
    std::string wal = one_value(i, "SELECT pg_walfile_name(pg_current_wal_lsn())");
    one_value(i, "SELECT pg_switch_wal()");
    REQUIRE(i.wait_until(
        [&] {
            auto b = backup_view(i);
            auto last =
                b.value("archiver", nlohmann::json()).value("last_archived_wal", nlohmann::json());
            return last.is_string() && last.get<std::string>() >= wal;
        },
        60s));
}

// Starts `p` with a repository of its own (returned), once its stanza is ready.
std::string start_archiving(Instance& p) {
    std::string repo = make_repo(p);
    with_repo(p, repo);
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.wait_until([&] { return stanza_ready(p); }, 60s));
    return repo;
}

// A new instance restored from the repository with `flags`, promoted at its target.
void restore_into(Instance& r, const std::string& repo, std::vector<std::string> flags,
                  const std::string& stanza = kStanza) {
    flags.insert(flags.begin(), "--restore-from-backup");
    with_repo(r, repo, flags, stanza);
    r.start();
    REQUIRE(r.wait_until(
        [&] {
            auto s = r.status();
            return s.value("role", "") == "primary" && !s.value("restoring", true) &&
                   s.value("ready", false);
        },
        120s));
}

std::vector<int> ids_in(Instance& i, const std::string& table) {
    auto r = i.psql_local("SELECT id FROM " + table + " ORDER BY id", "app");
    REQUIRE(r.code == 0);
    std::vector<int> out;
    std::stringstream in(r.out);
    for (int id; in >> id;) out.push_back(id);
    return out;
}

bool empty_dir(const std::string& dir) {
    return !std::filesystem::exists(dir) || std::filesystem::is_empty(dir);
}
}  // namespace

TEST_CASE("point-in-time recovery to a time, an LSN and a restore point", "[backup]") {
    Instance p("bk-primary");
    std::string repo = start_archiving(p);
    REQUIRE(p.psql("CREATE TABLE marks (id int PRIMARY KEY)").code == 0);
    REQUIRE(p.psql("INSERT INTO marks VALUES (1), (2)").code == 0);
    take_backup(p);
    INFO(p.log_tail());

    REQUIRE(p.psql("INSERT INTO marks VALUES (3)").code == 0);
    std::this_thread::sleep_for(1100ms);
    std::string t =
        one_value(p, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')");
    std::this_thread::sleep_for(1100ms);
    REQUIRE(p.psql("INSERT INTO marks VALUES (4)").code == 0);
    std::string lsn = one_value(p, "SELECT pg_current_wal_insert_lsn()");
    REQUIRE(p.psql("INSERT INTO marks VALUES (5)").code == 0);
    one_value(p, "SELECT pg_create_restore_point('before-six')");
    REQUIRE(p.psql("INSERT INTO marks VALUES (6)").code == 0);
    archive_now(p);

    SECTION("to a time: rows before it, none after") {
        Instance r("bk-time");
        restore_into(r, repo, {"--recovery-target-time", t});
        INFO(r.log_tail());
        CHECK(ids_in(r, "marks") == std::vector<int>{1, 2, 3});
        // A new timeline, this cluster's own: it archives there.
        CHECK(r.status()["postgres"].value("timeline", 0) >= 2);
        CHECK(r.psql("INSERT INTO marks VALUES (100)").code == 0);
        // A replica cloned from it does not stop at the restore's target
        // (nor promote itself there): it streams and stays a replica.
        Instance r2("bk-time-replica");
        r2.replica_of(r);
        with_repo(r2, repo);
        r2.start();
        REQUIRE(r2.wait_ready());
        CHECK(r.psql("INSERT INTO marks VALUES (101)").code == 0);
        CHECK(r2.wait_until([&] { return ids_in(r2, "marks").size() == 5; }, 30s));
        std::this_thread::sleep_for(2s);
        CHECK(r2.status().value("role", "") == "replica");
        CHECK_THAT(r2.log(), !Catch::Contains("selected new timeline"));
        CHECK(r.psql_local("SELECT count(*) FROM pg_stat_replication").out == "1\n");
        r2.signal(SIGTERM);
        REQUIRE(r2.wait_exit(30s) == 0);
        // Restarted with the same flags, the restored directory is reused.
        r.signal(SIGTERM);
        REQUIRE(r.wait_exit(30s) == 0);
        r.start();
        REQUIRE(r.wait_ready());
        CHECK(ids_in(r, "marks") == std::vector<int>{1, 2, 3, 100, 101});
    }
    SECTION("to an LSN") {
        Instance r("bk-lsn");
        restore_into(r, repo, {"--recovery-target-lsn", lsn});
        INFO(r.log_tail());
        CHECK(ids_in(r, "marks") == std::vector<int>{1, 2, 3, 4});
    }
    SECTION("to a restore point, as a copy that archives to a stanza of its own") {
        Instance r("bk-name");
        restore_into(r, repo,
                     {"--recovery-target-name", "before-six", "--restore-from-stanza", kStanza},
                     "it-copy");
        INFO(r.log_tail());
        CHECK(ids_in(r, "marks") == std::vector<int>{1, 2, 3, 4, 5});
        // The copy's new timeline goes to its own stanza, never the original's.
        REQUIRE(r.wait_until([&] { return stanza_ready(r); }, 60s));
        archive_now(r);
        CHECK(sh("ls " + repo + "/archive/it-copy/15-1/0000000200000000").code == 0);
        CHECK(sh("ls " + repo + "/archive/" + kStanza + "/15-1/00000002.history").code != 0);
        CHECK(sh("ls " + repo + "/archive/" + kStanza + "/15-1/0000000200000000").code != 0);
        // Its restore_command came from the restore; it is the copy's own now.
        CHECK(sh("grep -c restore_command " + r.pgdata + "/postgresql.auto.conf || true").out ==
              "0\n");
    }
    SECTION("to the end of the archive, and a replica of the restored cluster") {
        Instance r("bk-end");
        restore_into(r, repo, {});
        CHECK(ids_in(r, "marks") == std::vector<int>{1, 2, 3, 4, 5, 6});
        // The same flags on every instance (a StatefulSet): only the
        // bootstrap instance restores, the others clone from it.
        Instance r2("bk-end-replica");
        r2.replica_of(r);
        with_repo(r2, repo, {"--restore-from-backup", "--bootstrap-instance", r.name});
        r2.start();
        REQUIRE(r2.wait_ready());
        CHECK(r2.status().value("standby", false));
        CHECK(ids_in(r2, "marks") == std::vector<int>{1, 2, 3, 4, 5, 6});
        CHECK_THAT(r2.log(), !Catch::Contains("restoring the data directory"));
    }
    SECTION("requests that cannot be met change nothing") {
        Instance r("bk-bad");
        with_repo(r, repo,
                  {"--restore-from-backup", "--recovery-target-time", "2999-01-01 00:00:00"});
        CHECK(r.run_to_exit() != 0);
        CHECK_THAT(r.log(), Catch::Contains("is in the future"));
        CHECK(empty_dir(r.pgdata));
        r.extra_args.clear();
        with_repo(r, repo,
                  {"--restore-from-backup", "--recovery-target-time", "2001-01-01 00:00:00"});
        CHECK(r.run_to_exit() != 0);
        CHECK_THAT(r.log(), Catch::Contains("not after the end of the oldest backup"));
        CHECK(empty_dir(r.pgdata));
        r.extra_args.clear();
        with_repo(r, repo, {"--restore-from-backup", "--backup-set", "20000101-000000F"});
        CHECK(r.run_to_exit() != 0);
        CHECK_THAT(r.log(), Catch::Contains("no backup '20000101-000000F'"));
        CHECK(empty_dir(r.pgdata));
        r.extra_args.clear();
        with_repo(r, repo,
                  {"--restore-from-backup", "--recovery-target-lsn", "0/1",
                   "--recovery-target-name", "x"});
        CHECK(r.run_to_exit() == 2);
        CHECK(empty_dir(r.pgdata));
        // A directory with something in it is left as it is.
        REQUIRE(
            sh("mkdir -p " + r.pgdata + " && echo mine > " + r.pgdata + "/keep", running_as_root())
                .code == 0);
        r.extra_args.clear();
        with_repo(r, repo, {"--restore-from-backup"});
        CHECK(r.run_to_exit() != 0);
        CHECK_THAT(r.log(), Catch::Contains("is not empty"));
        CHECK(sh("cat " + r.pgdata + "/keep").out == "mine\n");
        CHECK(std::filesystem::directory_iterator(r.pgdata) !=
              std::filesystem::directory_iterator());
        // An unknown backup type over the API.
        auto bad = p.post("/v1/backup", R"({"type": "weekly"})");
        REQUIRE(bad.ok());
        CHECK(bad->status == 400);
    }
}

TEST_CASE("pgBackRest's own options pass through, and its secrets appear nowhere", "[backup]") {
    const std::string secret = "cipher-pass-that-must-not-leak-7f3a";
    const std::vector<std::string> cipher = {"PGBACKREST_REPO1_CIPHER_TYPE=aes-256-cbc",
                                             "PGBACKREST_REPO1_CIPHER_PASS=" + secret};
    Instance p("bk-cipher");
    std::string repo = make_repo(p);
    with_repo(p, repo);
    p.env = cipher;
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.wait_until([&] { return stanza_ready(p); }, 60s));
    REQUIRE(p.psql("CREATE TABLE marks (id int PRIMARY KEY)").code == 0);
    REQUIRE(p.psql("INSERT INTO marks VALUES (1)").code == 0);
    take_backup(p);
    archive_now(p);
    // The repository is encrypted: its info file is no longer plain text.
    CHECK(
        sh("grep -c backup-current " + repo + "/backup/" + kStanza + "/backup.info || true").out ==
        "0\n");
    Instance r("bk-cipher-restore");
    r.env = cipher;
    restore_into(r, repo, {});
    CHECK(ids_in(r, "marks") == std::vector<int>{1});
    auto listed = p.get("/v1/backups");  // without the token: refused
    REQUIRE(listed.ok());
    CHECK(listed->status == 401);
    for (auto* i : {&p, &r}) {
        CHECK_THAT(i->log(), !Catch::Contains(secret));
        CHECK_THAT(i->status().dump(), !Catch::Contains(secret));
        auto metrics = i->get("/metrics");
        REQUIRE(metrics.ok());
        CHECK_THAT(metrics->body, !Catch::Contains(secret));
    }
    CHECK_THAT(p.log(), Catch::Contains("<redacted>"));
}

TEST_CASE("a broken repository is loud, and the primary serves on", "[backup]") {
    Instance p("bk-broken");
    std::string repo = start_archiving(p);
    REQUIRE(sh("chmod -R a-w " + repo + "/archive", running_as_root()).code == 0);
    REQUIRE(p.psql("CREATE TABLE t (i int)").code == 0);
    one_value(p, "SELECT pg_switch_wal()");
    REQUIRE(p.wait_until([&] { return backup_view(p).value("archive_failing", false); }, 60s));
    auto metrics = p.get("/metrics");
    REQUIRE(metrics.ok());
    CHECK_THAT(metrics->body, Catch::Contains("instance_manager_archive_failing 1"));
    CHECK_THAT(metrics->body, Catch::Contains("instance_manager_pg_wal_bytes"));
    CHECK_THAT(p.log(), Catch::Contains("archiving fails"));
    auto ready = p.get("/readyz");
    REQUIRE(ready.ok());
    CHECK(ready->status == 200);
    CHECK(p.psql("INSERT INTO t VALUES (1)").code == 0);
    REQUIRE(sh("chmod -R u+w " + repo + "/archive", running_as_root()).code == 0);
    CHECK(p.wait_until([&] { return !backup_view(p).value("archive_failing", true); }, 90s));
}

TEST_CASE("a replica whose WAL the primary removed catches up from the archive", "[backup]") {
    Instance p("bk-up"), r("bk-down");
    std::string repo = make_repo(p);
    with_repo(p, repo);
    with_repo(r, repo);
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.wait_until([&] { return stanza_ready(p); }, 60s));
    REQUIRE(p.psql("CREATE TABLE t (i int)").code == 0);
    start_replicas(p, {&r});
    r.signal(SIGTERM);
    REQUIRE(r.wait_exit(30s) == 0);
    // Its slot gone and more WAL than the primary keeps (wal_keep_size 512MB: 32 segments).
    one_value(p, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots");
    for (int i = 0; i < 40; ++i) {
        REQUIRE(p.psql("INSERT INTO t VALUES (" + std::to_string(i) + ")").code == 0);
        one_value(p, "SELECT pg_switch_wal()");
    }
    archive_now(p);
    one_value(p, "CHECKPOINT");
    std::string first_kept =
        one_value(p, "SELECT min(name) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'");
    INFO("primary keeps WAL from " << first_kept);
    r.start();
    REQUIRE(r.wait_until(
        [&] { return r.psql_local("SELECT count(*) FROM t", "app").out == "40\n"; }, 90s));
    CHECK_THAT(r.log(), Catch::Contains("restored log file"));
}

TEST_CASE("the archive stays whole across switchovers and a failover under a writer (ANY 1)",
          "[backup]") {
    Instance m0("bk-a"), m1("bk-b"), m2("bk-c");
    std::vector<Instance*> all{&m0, &m1, &m2};
    std::string repo = make_repo(m0);
    for (auto* m : all) with_repo(*m, repo);
    m0.start();
    REQUIRE(m0.wait_ready());
    REQUIRE(m0.psql("CREATE TABLE bench_log (id bigint PRIMARY KEY, at timestamptz DEFAULT now())")
                .code == 0);
    start_replicas(m0, {&m1, &m2});
    Instance ctl("bk-ctl");
    // Synchronous (ANY 1): the failover itself loses no acknowledged commit,
    // so a commit missing after the restore is the archive's hole.
    // The first backup is the schedule's: none in the repository, a full is due.
    make_controller(ctl, all, {"--durability", "any 1", "--backup-schedule", "full=1d"});
    ctl.start();
    REQUIRE(ctl.wait_until([&] { return converged_in(ctl, "ANY 1"); }, 60s));
    REQUIRE(m0.wait_until([&] { return stanza_ready(m0); }, 60s));
    REQUIRE(m0.wait_until([&] { return backup_view(m0).value("backups", 0) >= 1; }, 120s));
    CHECK_THAT(ctl.log(), Catch::Contains("scheduled: full"));
    CHECK(cluster_of(ctl)["settings"].value("backup_schedule", "") == "full=1d");

    Writer writer(rw_conninfo(all), m0.root + "/writer", 1);
    REQUIRE(m0.wait_until([&] { return writer.lines() > 50; }, 30s));
    auto by_name = [&](const std::string& n) -> Instance& {
        for (auto* i : all)
            if (i->name == n) return *i;
        FAIL("no member " << n);
        return m0;
    };
    for (int round = 0; round < 5; ++round) {
        std::string from = primary_of(ctl);
        std::string to = all[(round + 1) % 3]->name == from ? all[(round + 2) % 3]->name
                                                            : all[(round + 1) % 3]->name;
        post_json(ctl, "/v1/switchover", {{"to", to}}, 200);
        REQUIRE(ctl.wait_until([&] { return converged_in(ctl, "ANY 1", to); }, 60s));
        auto lines = writer.lines();
        REQUIRE(m0.wait_until([&] { return writer.lines() > lines + 20; }, 30s));
    }
    // A failover: the primary's manager and postgres killed at once.
    std::string old = primary_of(ctl);
    Instance& gone = by_name(old);
    pid_t pm = gone.postmaster_pid();
    gone.signal(SIGKILL);
    if (pm > 0) ::kill(pm, SIGKILL);
    std::string now_primary = new_primary(ctl, old, 60s);
    REQUIRE(!now_primary.empty());
    auto lines = writer.lines();
    REQUIRE(m0.wait_until([&] { return writer.lines() > lines + 50; }, 60s));
    auto ids = writer.stop();
    Instance& np = by_name(now_primary);
    REQUIRE(missing(np, ids) == 0);
    REQUIRE(np.wait_until([&] { return stanza_ready(np); }, 90s));
    archive_now(np);
    INFO(np.log_tail());

    Instance r("bk-whole");
    restore_into(r, repo, {});
    int lost = missing(r, ids);
    std::printf(
        "archive continuity: %zu acknowledged commits over 5 switchovers and a failover, "
        "%d missing after a restore to the archive's end\n",
        ids.size(), lost);
    CHECK(lost == 0);
}

TEST_CASE("a new replica from the repository instead of the primary", "[backup]") {
    Instance p("bk-source"), r("bk-from-repo");
    std::string repo = start_archiving(p);
    REQUIRE(p.psql("CREATE TABLE marks (id int PRIMARY KEY)").code == 0);
    REQUIRE(p.psql("INSERT INTO marks VALUES (1)").code == 0);
    take_backup(p);
    // Written after the backup: from the archive, then by streaming.
    REQUIRE(p.psql("INSERT INTO marks VALUES (2)").code == 0);
    archive_now(p);
    REQUIRE(p.psql("INSERT INTO marks VALUES (3)").code == 0);
    with_repo(r, repo, {"--clone-from-backup"});
    start_replicas(p, {&r});
    REQUIRE(r.wait_until([&] { return ids_in(r, "marks") == std::vector<int>{1, 2, 3}; }, 60s));
    CHECK_THAT(r.log(), Catch::Contains("a new replica from the repository's newest backup"));
    CHECK_THAT(r.log(), !Catch::Contains("running " + pg_bin() + "/pg_basebackup"));
    REQUIRE(p.psql("INSERT INTO marks VALUES (4)").code == 0);
    // Row 4 comes by streaming (the archive would take up to a minute).
    CHECK(r.wait_until([&] { return ids_in(r, "marks").size() == 4; }, 30s));
    CHECK(r.wait_until([&] { return r.status()["replication"].value("streaming", false); }, 30s));
}

TEST_CASE("an S3 repository: s3rver over TLS, the same archive, backup and restore", "[backup]") {
    // s3rver from npm (tests/s3), its npm packages kept in the build tree.
    const std::string work = std::string(IM_BUILD_DIR) + "/s3rver";
    sh("rm -rf " + work + "/data");
    const int port = free_port();
    auto started =
        sh(std::string(IM_SOURCE_DIR) + "/tests/s3/s3rver.sh " + work + " " + std::to_string(port));
    INFO(started.out);
    REQUIRE(started.code == 0);
    struct Stop {
        std::string pid;
        ~Stop() { sh("kill " + pid + " 2>/dev/null || true"); }
    } stop{started.out.substr(started.out.find_last_of('\n', started.out.size() - 2) + 1)};
    const std::vector<std::string> s3 = {
        "PGBACKREST_REPO1_TYPE=s3", "PGBACKREST_REPO1_S3_BUCKET=bk",
        "PGBACKREST_REPO1_S3_ENDPOINT=127.0.0.1",
        "PGBACKREST_REPO1_S3_PORT=" + std::to_string(port), "PGBACKREST_REPO1_S3_REGION=us-east-1",
        "PGBACKREST_REPO1_S3_URI_STYLE=path",
        // s3rver's own certificate: not one a CA signed.
        "PGBACKREST_REPO1_STORAGE_VERIFY_TLS=n", "PGBACKREST_REPO1_S3_KEY=S3RVER",
        "PGBACKREST_REPO1_S3_KEY_SECRET=S3RVER"};
    Instance p("bk-s3");
    with_repo(p, "/cluster");  // the repository's path inside the bucket
    p.env = s3;
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.wait_until([&] { return stanza_ready(p); }, 90s));
    REQUIRE(p.psql("CREATE TABLE marks (id int PRIMARY KEY)").code == 0);
    REQUIRE(p.psql("INSERT INTO marks VALUES (1)").code == 0);
    take_backup(p);
    REQUIRE(p.psql("INSERT INTO marks VALUES (2)").code == 0);
    archive_now(p);
    CHECK(sh("ls " + work + "/data/bk/cluster/archive/" + kStanza).code == 0);
    Instance r("bk-s3-restore");
    r.env = s3;
    restore_into(r, "/cluster", {});
    CHECK(ids_in(r, "marks") == std::vector<int>{1, 2});
    CHECK_THAT(p.log(), !Catch::Contains("S3RVER\""));
}

// Both members run pgBackRest's TLS server with one self-signed certificate
// (its own CA; common name and DNS name "localhost": pgBackRest checks DNS
// names, and the controller's member addresses are IPs).
void with_backup_server(Instance& i, const std::string& cert_dir) {
    i.extra_args.insert(
        i.extra_args.end(),
        {"--backup-tls-cert", cert_dir + "/backup.crt", "--backup-tls-key",
         cert_dir + "/backup.key", "--backup-tls-ca", cert_dir + "/backup.crt",
         "--backup-server-port", std::to_string(free_port()), "--backup-server-host", "localhost"});
}

TEST_CASE("a standby backup taken under pgbench restores to a consistent database", "[backup]") {
    Instance p("bk-busy"), r("bk-busy-r");
    std::string repo = make_repo(p);
    REQUIRE(sh(manager_binary() + " helper make-cert " + p.root + "/backup.crt " + p.root +
                   "/backup.key localhost",
               true)
                .code == 0);
    for (auto* i : {&p, &r}) {
        with_repo(*i, repo);
        with_backup_server(*i, p.root);
    }
    p.start();
    REQUIRE(p.wait_ready());
    REQUIRE(p.wait_until([&] { return stanza_ready(p); }, 60s));
    start_replicas(p, {&r});
    Instance ctl("bk-busy-ctl");
    make_controller(ctl, {&p, &r});
    ctl.start();
    REQUIRE(ctl.wait_until([&] { return converged(ctl, "bk-busy"); }, 60s));
    REQUIRE(p.wait_until(
        [&] {
            auto srv = backup_view(p).value("server", nlohmann::json());
            return srv.is_object() && srv.value("running", false);
        },
        30s));
    auto server = backup_view(p)["server"];
    auto metrics = p.get("/metrics");
    REQUIRE(metrics);
    CHECK_THAT(metrics->body, Catch::Contains("instance_manager_backup_server_up 1"));
    CHECK(server["host"] == "localhost");
    CHECK(server["pg_path"] == p.pgdata);

    SECTION("requests a member refuses") {
        nlohmann::json primary = {{"host", "localhost"},
                                  {"port", server["port"]},
                                  {"pg_path", p.pgdata},
                                  {"pg_port", p.pg_port},
                                  {"socket_path", server["socket_path"]}};
        // A standby backup is a replica's; the primary's is without "primary".
        post_json(p, "/v1/backup", {{"type", "full"}, {"primary", primary}}, 409);
        post_json(r, "/v1/backup", {{"type", "full"}}, 409);
        auto bad = primary;
        bad["pg_path"] = "relative";
        post_json(r, "/v1/backup", {{"type", "full"}, {"primary", bad}}, 400);
        bad = primary;
        bad["host"] = "localhost --repo1-path=/elsewhere";
        post_json(r, "/v1/backup", {{"type", "full"}, {"primary", bad}}, 400);
        // A primary this replica does not stream from (another port, another
        // address): refused before pgBackRest dials it.
        bad = primary;
        bad["pg_port"] = p.pg_port + 1;
        auto refused = post_json(r, "/v1/backup", {{"type", "full"}, {"primary", bad}}, 409);
        CHECK_THAT(refused.dump(), Catch::Contains("streams from"));
        bad = primary;
        bad["host"] = "127.0.0.9";
        refused = post_json(r, "/v1/backup", {{"type", "full"}, {"primary", bad}}, 409);
        CHECK_THAT(refused.dump(), Catch::Contains("not from 127.0.0.9"));
        CHECK(backup_view(r)["last_result"].is_null());
        CHECK(backup_view(r)["running"].is_null());
        CHECK(backup_view(p)["last_result"].is_null());
    }

    SECTION("the controller takes it on the replica") {
        const std::string conn = "'host=" + p.address + " port=" + std::to_string(p.pg_port) +
                                 " user=app dbname=app password=" + p.app_password() + "'";
        REQUIRE(sh("pgbench -q -i -s 2 " + conn + " >/dev/null 2>&1").code == 0);
        std::string load =
            sh("pgbench -n -c 4 -j 2 -T 20 " + conn + " >/dev/null 2>&1 & echo $!").out;
        while (!load.empty() && load.back() == '\n') load.pop_back();
        std::this_thread::sleep_for(3s);
        auto started = post_json(ctl, "/v1/backup", {{"type", "full"}}, 200);
        CHECK(started["member"] == "bk-busy-r");
        // One at a time across the cluster.
        auto again = ctl.post("/v1/backup", R"({"type":"incr"})");
        REQUIRE(again);
        CHECK(again->status == 409);
        // The controller's own gate answered (not the replica's "is running").
        CHECK_THAT(again->body, Catch::Contains("one at a time"));
        REQUIRE(r.wait_until(
            [&] {
                auto b = backup_view(r);
                return b.value("running", nlohmann::json()).is_null() &&
                       b.value("last_result", nlohmann::json()).is_object() &&
                       b.value("backups", 0) > 0;
            },
            120s));
        auto result = backup_view(r)["last_result"];
        INFO(result.dump());
        REQUIRE(result.value("ok", false));
        CHECK(result["source"] == "standby");
        // pgBackRest's own account: the start on the primary, the files from here.
        CHECK_THAT(r.log(), Catch::Contains("wait for replay on the standby"));
        REQUIRE(
            p.wait_until([&] { return sh("kill -0 " + load + " 2>/dev/null").code != 0; }, 60s));
        auto last = backup_view(r)["last_backup"];
        INFO(last.dump());
        // The database as the backup alone makes it: its set, replayed to its end.
        Instance restored("bk-busy-restore");
        restore_into(restored, repo,
                     {"--backup-set", last.value("label", ""), "--recovery-target-lsn",
                      last.value("lsn_stop", "")});
        // TPC-B's invariants hold in every consistent state: each transaction
        // adds the same delta to an account, its teller, its branch and the history.
        auto sums = restored.psql(
            "SELECT (SELECT sum(abalance) FROM pgbench_accounts) = "
            "(SELECT COALESCE(sum(delta), 0) FROM pgbench_history) AND "
            "(SELECT sum(tbalance) FROM pgbench_tellers) = "
            "(SELECT sum(bbalance) FROM pgbench_branches) AND "
            "(SELECT sum(bbalance) FROM pgbench_branches) = "
            "(SELECT COALESCE(sum(delta), 0) FROM pgbench_history), "
            "(SELECT count(*) FROM pgbench_history)");
        REQUIRE(sums.code == 0);
        INFO(sums.out);
        CHECK(sums.out.substr(0, 2) == "t|");
        CHECK(sums.out != "t|0\n");  // transactions were running when the backup was taken
    }
}

TEST_CASE("the monitoring kit uses only exported metrics", "[backup]") {
    // A primary that archives, a replica with its slot, and the controller:
    // every family the alert rules and the dashboard name must be in one of
    // their /metrics answers (a renamed metric breaks this test, not a
    // dashboard nobody looks at until the night it matters).
    Instance p("mon-p"), r("mon-r");
    std::string repo = start_archiving(p);
    start_replicas(p, {&r});
    Instance ctl("mon-ctl");
    make_controller(ctl, {&p, &r});
    ctl.start();
    REQUIRE(ctl.wait_until([&] { return converged(ctl, "mon-p"); }, 60s));
    std::set<std::string> exported;
    for (auto* i : {&p, &r, &ctl}) {
        auto m = i->get("/metrics");
        REQUIRE(m);
        REQUIRE(m->status == 200);
        std::istringstream lines(m->body);
        for (std::string line; std::getline(lines, line);)
            if (!line.empty() && line[0] != '#')
                exported.insert(line.substr(0, line.find_first_of("{ ")));
    }
    CHECK(exported.count("instance_manager_controller_writable_primaries"));
    CHECK(exported.count("pg_stat_database_xact_commit"));
    const std::regex name(R"(\b(pg|instance_manager)_[a-z0-9_]+)");
    size_t used = 0;
    for (const char* file : {"alerts.yml", "grafana-dashboard.json"}) {
        std::ifstream in(std::string(IM_SOURCE_DIR) + "/deploy/monitoring/" + file);
        std::stringstream text;
        text << in.rdbuf();
        const std::string body = text.str();
        REQUIRE(!body.empty());
        for (std::sregex_iterator it(body.begin(), body.end(), name), end; it != end; ++it) {
            ++used;
            INFO(file << " uses " << it->str());
            CHECK(exported.count(it->str()) == 1);
        }
    }
    CHECK(used > 20);
}
