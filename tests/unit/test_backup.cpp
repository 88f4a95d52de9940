#include <catch2/catch.hpp>

#include "backup/archive_status.hpp"
#include "backup/pgbackrest.hpp"
#include "cli/cluster_table.hpp"
#include "config.hpp"
#include "controller/backup_schedule.hpp"
#include "temp_dir.hpp"

using namespace im;

namespace {
std::vector<std::string> with_repo(std::vector<std::string> more = {}) {
    std::vector<std::string> args = {
        "--pgdata",      "/tmp/im-backup-test-pgdata", "--name",          "n1",
        "--backup-repo", "/tmp/im-backup-test-repo",   "--backup-stanza", "main"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
}
std::string error_of(const std::vector<std::string>& args) {
    auto cfg = parse_run_args(args);
    return cfg ? std::string() : cfg.error().message;
}

// What `pgbackrest info --output=json` printed for a stanza with one full backup.
const char* kInfo =
    R"([{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000004",)"
    R"("min":"000000010000000000000001"}],"backup":[{"archive":{"start":"000000010000000000000003",)"
    R"("stop":"000000010000000000000003"},"backrest":{"format":5,"version":"2.45"},"database":{"id":1,)"
    R"("repo-key":1},"error":false,"info":{"delta":30517726,"repository":{"delta":4070867,)"
    R"("size":4070867},"size":30517726},"label":"20261202-051029F","lsn":{"start":"0/3000028",)"
    R"("stop":"0/30003E8"},"prior":null,"reference":null,"timestamp":{"start":1796188229,)"
    R"("stop":1796188231},"type":"full"}],"cipher":"none","db":[{"id":1,"repo-key":1,)"
    R"("system-id":7714569321125038610,"version":"15"}],"name":"c1","repo":[{"cipher":"none",)"
    R"("key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0,"lock":{"backup":)"
    R"({"held":false}},"message":"ok"}}])";
}  // namespace

TEST_CASE("backup flags: a repository needs a stanza, targets need a restore", "[backup]") {
    auto ok = parse_run_args(with_repo());
    REQUIRE(ok.ok());
    CHECK(ok->backups());
    CHECK(ok->backup_retention_full == 2);
    CHECK_FALSE(ok->pgbackrest_bin.empty());
    CHECK_THAT(error_of({"--pgdata", "/tmp/x", "--backup-repo", "/tmp/r"}),
               Catch::Contains("--backup-stanza is required"));
    CHECK_THAT(error_of(with_repo({"--recovery-target-lsn", "0/3000000"})),
               Catch::Contains("needs --restore-from-backup"));
    CHECK_THAT(error_of({"--pgdata", "/tmp/x", "--restore-from-backup"}),
               Catch::Contains("needs the repository"));
    CHECK_THAT(error_of(with_repo({"--restore-from-backup", "--recovery-target-lsn", "0/3000000",
                                   "--recovery-target-name", "before"})),
               Catch::Contains("one recovery target at a time"));
    CHECK_THAT(
        error_of(with_repo({"--restore-from-backup", "--recovery-target-time", "yesterday"})),
        Catch::Contains("--recovery-target-time: expected"));
    CHECK_THAT(error_of(with_repo({"--restore-from-backup", "--recovery-target-lsn", "3000000"})),
               Catch::Contains("--recovery-target-lsn"));
    CHECK_THAT(error_of(with_repo({"--restore-from-backup", "--recovery-target-xid", "12a"})),
               Catch::Contains("--recovery-target-xid"));
    CHECK_THAT(error_of({"--pgdata", "/tmp/x", "--backup-repo", "relative/path", "--backup-stanza",
                         "main"}),
               Catch::Contains("absolute"));
    CHECK_THAT(
        error_of({"--pgdata", "/tmp/x", "--backup-repo", "/tmp/r", "--backup-stanza", "a b"}),
        Catch::Contains("--backup-stanza"));
    auto restore = parse_run_args(
        with_repo({"--restore-from-backup", "--recovery-target-time", "2026-12-02 10:42:00+01"}));
    REQUIRE(restore.ok());
    CHECK(restore->recovery_target_kind == "time");
}

TEST_CASE("recovery target times", "[backup]") {
    CHECK(parse_timestamp("1970-01-01 00:00:00") == std::time_t{0});
    CHECK(parse_timestamp("2026-12-02 10:42:00Z") == parse_timestamp("2026-12-02 10:42:00"));
    CHECK(*parse_timestamp("2026-12-02 10:42:00+01") + 3600 ==
          *parse_timestamp("2026-12-02 10:42:00"));
    CHECK(*parse_timestamp("2026-12-02T10:42:00-05:30") == *parse_timestamp("2026-12-02 16:12:00"));
    CHECK(parse_timestamp("2026-12-02 10:42:00.123456").has_value());
    CHECK_FALSE(parse_timestamp("2026-12-02 10:42").has_value());
    CHECK_FALSE(parse_timestamp("2026-13-02 10:42:00").has_value());
    CHECK_FALSE(parse_timestamp("2026-12-02 10:42:00 UTC").has_value());
    CHECK_FALSE(parse_timestamp("2026-12-02 10:42:00.").has_value());
    CHECK_FALSE(parse_timestamp("2026-02-31 10:42:00").has_value());
    CHECK(parse_timestamp("2028-02-29 10:42:00").has_value());
    CHECK(parse_lsn("0/3000060") == 0x3000060);
    CHECK(parse_lsn("1/") == 0);
    CHECK(parse_lsn("123456789/0") == 0);
}

TEST_CASE("pgBackRest's environment: the manager's options win", "[backup]") {
    Config cfg = *parse_run_args(with_repo());
    cfg.backup_env = {"PGBACKREST_REPO1_S3_KEY=secret", "PGBACKREST_STANZA=other",
                      "PGBACKREST_REPO1_RETENTION_FULL=7"};
    auto env = backup::environment(cfg);
    auto has = [&](const std::string& e) {
        return std::find(env.begin(), env.end(), e) != env.end();
    };
    CHECK(has("PGBACKREST_REPO1_S3_KEY=secret"));
    CHECK(has("PGBACKREST_STANZA=main"));
    CHECK_FALSE(has("PGBACKREST_STANZA=other"));
    CHECK(has("PGBACKREST_REPO1_RETENTION_FULL=7"));  // the user's, not the default
    CHECK(has("PGBACKREST_REPO1_PATH=/tmp/im-backup-test-repo"));
    CHECK(has("PGBACKREST_CONFIG=/dev/null"));
    CHECK(has("PGBACKREST_PG1_PATH=/tmp/im-backup-test-pgdata"));
    CHECK(has("PGBACKREST_LOCK_PATH=/tmp/im-backup-test-pgdata.pgbackrest/lock"));
    auto conf = backup::archive_settings(cfg);
    CHECK_THAT(conf, Catch::Contains("archive_mode = 'on'"));
    CHECK_THAT(conf, Catch::Contains("archive-push %p"));
    CHECK_THAT(conf, Catch::Contains("archive-get %f \"%p\""));
    CHECK(backup::shell_quote("it's") == "'it'\\''s'");
}

TEST_CASE("backup requests", "[backup]") {
    CHECK(backup::parse_backup_request(nlohmann::json::object())->type == "full");
    CHECK_FALSE(backup::parse_backup_request(nlohmann::json::object())->primary);
    CHECK(backup::parse_backup_request({{"type", "incr"}})->type == "incr");
    CHECK_FALSE(backup::parse_backup_request({{"type", "weekly"}}));
    CHECK_FALSE(backup::parse_backup_request({{"kind", "full"}}));
    CHECK_FALSE(backup::parse_backup_request(nlohmann::json::array()));

    nlohmann::json primary = {{"host", "demo-0.demo-headless"},
                              {"port", 8432},
                              {"pg_path", "/var/lib/postgresql/data/pgdata"},
                              {"pg_port", 5432},
                              {"socket_path", "/tmp/instance-manager-demo-0"}};
    auto standby = backup::parse_backup_request({{"type", "diff"}, {"primary", primary}});
    REQUIRE(standby);
    REQUIRE(standby->primary);
    CHECK(standby->primary->host == "demo-0.demo-headless");
    CHECK(backup::to_json(*standby->primary) == primary);
    // Every field is needed, each of its kind; nothing else is taken (the
    // values become pgBackRest options: no spaces, no relative paths).
    for (const char* field : {"host", "port", "pg_path", "pg_port", "socket_path"}) {
        auto missing = primary;
        missing.erase(field);
        CHECK_FALSE(backup::parse_backup_request({{"primary", missing}}));
    }
    for (auto [field, bad] :
         std::vector<std::pair<std::string, nlohmann::json>>{{"host", "a b"},
                                                             {"host", "--pg2-host=x"},
                                                             {"host", ""},
                                                             {"port", 0},
                                                             {"port", 70000},
                                                             {"port", "8432"},
                                                             {"pg_path", "relative/path"},
                                                             {"pg_path", "/a\nb"},
                                                             {"socket_path", 5},
                                                             {"extra", 1}}) {
        auto changed = primary;
        changed[field] = bad;
        INFO(field << " = " << bad.dump());
        auto r = backup::parse_backup_request({{"primary", changed}});
        REQUIRE_FALSE(r);
        CHECK(r.error().http_status == 400);
        CHECK_THAT(r.error().message, Catch::StartsWith("primary must be {"));
    }
    CHECK_FALSE(backup::parse_backup_request({{"primary", "demo-0"}}));
}

TEST_CASE("pgBackRest's server and a standby backup's options", "[backup]") {
    Config cfg;
    cfg.name = "m1";
    cfg.pgdata = "/tmp/im-backup-test-pgdata";
    cfg.pgbackrest_bin = "/usr/bin/pgbackrest";
    cfg.backup_repo = "/repo";
    cfg.backup_stanza = "c1";
    cfg.http_host = "0.0.0.0";
    cfg.backup_tls_cert = "/certs/m.crt";
    cfg.backup_tls_key = "/certs/m.key";
    cfg.backup_tls_ca = "/certs/ca.crt";
    cfg.backup_server_port = 8555;
    auto server = backup::server_command(cfg, {"demo-member", "ops"});
    auto has_arg = [&](const std::string& a) {
        return std::find(server.argv.begin(), server.argv.end(), a) != server.argv.end();
    };
    CHECK(server.argv.back() == "server");
    CHECK(has_arg("--tls-server-address=*"));
    CHECK(has_arg("--tls-server-port=8555"));
    CHECK(has_arg("--tls-server-cert-file=/certs/m.crt"));
    CHECK(has_arg("--tls-server-ca-file=/certs/ca.crt"));
    // Only these clients, only this stanza.
    CHECK(has_arg("--tls-server-auth=demo-member=c1"));
    CHECK(has_arg("--tls-server-auth=ops=c1"));
    CHECK_FALSE(has_arg("--log-level-console=info"));

    backup::PrimaryServer p{"demo-0.demo-headless", 8432, "/data/p", "/run/p", 5433};
    auto env = backup::standby_environment(cfg, p);
    auto has = [&](const std::string& e) {
        return std::find(env.begin(), env.end(), e) != env.end();
    };
    CHECK(has("PGBACKREST_BACKUP_STANDBY=y"));
    CHECK(has("PGBACKREST_PG2_HOST=demo-0.demo-headless"));
    CHECK(has("PGBACKREST_PG2_HOST_TYPE=tls"));
    CHECK(has("PGBACKREST_PG2_HOST_PORT=8432"));
    CHECK(has("PGBACKREST_PG2_HOST_CERT_FILE=/certs/m.crt"));
    CHECK(has("PGBACKREST_PG2_HOST_CA_FILE=/certs/ca.crt"));
    CHECK(has("PGBACKREST_PG2_PATH=/data/p"));
    CHECK(has("PGBACKREST_PG2_SOCKET_PATH=/run/p"));
    CHECK(has("PGBACKREST_PG2_PORT=5433"));
}

TEST_CASE("standby backup flags: all three files, a repository, a port of its own", "[backup]") {
    // A readable file stands in for the certificates: the flags are checked, not the PEM.
    test::TempDir dir;
    const std::string f = dir.write("stand-in.pem", "not a certificate\n");
    auto tls = [&](std::vector<std::string> more = {}) {
        std::vector<std::string> a = {"--backup-tls-cert", f, "--backup-tls-key", f,
                                      "--backup-tls-ca",   f};
        a.insert(a.end(), more.begin(), more.end());
        return a;
    };
    auto ok = parse_run_args(with_repo(tls({"--backup-tls-clients", "a,b"})));
    REQUIRE(ok.ok());
    CHECK(ok->backup_server());
    CHECK(ok->backup_server_port == 8432);
    CHECK(ok->backup_tls_clients == std::vector<std::string>{"a", "b"});
    CHECK_FALSE(parse_run_args(with_repo())->backup_server());
    CHECK_THAT(error_of(with_repo({"--backup-tls-cert", f})), Catch::Contains("all three"));
    CHECK_THAT(error_of({"--pgdata", "/tmp/x", "--backup-tls-cert", f}),
               Catch::Contains("need --backup-repo"));
    CHECK_THAT(error_of(with_repo(tls({"--backup-server-port", "5432"}))),
               Catch::Contains("a port of its own"));
    CHECK_THAT(error_of(with_repo(tls({"--backup-server-port", "0"}))),
               Catch::Contains("--backup-server-port"));
    CHECK_THAT(error_of(with_repo(tls({"--backup-tls-clients", "a=b"}))),
               Catch::Contains("--backup-tls-clients"));
    CHECK_THAT(error_of(with_repo({"--backup-tls-cert", "/nonexistent.crt", "--backup-tls-key", f,
                                   "--backup-tls-ca", f})),
               Catch::Contains("cannot read"));
    CHECK_THAT(error_of(with_repo({"--backup-server-host", "h"})),
               Catch::Contains("need --backup-tls-cert"));
}

TEST_CASE("what the repository holds, and what a restore can reach", "[backup]") {
    auto info = backup::parse_info(kInfo, "c1");
    REQUIRE(info.ok());
    CHECK(info->stanza_exists);
    REQUIRE(info->backups.size() == 1);
    CHECK(info->backups[0].label == "20261202-051029F");
    CHECK(info->backups[0].stop == 1796188231);
    CHECK(info->backups[0].lsn_stop == "0/30003E8");
    CHECK(info->archive_max == "000000010000000000000004");
    auto other = backup::parse_info(kInfo, "elsewhere");
    REQUIRE(other.ok());
    CHECK_FALSE(other->stanza_exists);
    CHECK_FALSE(backup::parse_info("INFO: not json", "c1"));

    Config cfg;
    cfg.backup_stanza = "c1";
    const std::time_t now = 1796188300;
    CHECK(backup::check_restore_target(cfg, *info, now));
    cfg.recovery_target_kind = "time";
    cfg.recovery_target = "2026-12-02 05:10:40";  // 1796188240: after the backup
    CHECK(backup::check_restore_target(cfg, *info, now));
    cfg.recovery_target = "2026-12-02 05:12:00";  // after `now`
    CHECK_THAT(backup::check_restore_target(cfg, *info, now).error().message,
               Catch::Contains("in the future"));
    cfg.recovery_target = "2026-12-02 05:10:00";  // before the backup ended
    CHECK_THAT(backup::check_restore_target(cfg, *info, now).error().message,
               Catch::Contains("not after the end of the oldest backup"));
    cfg.recovery_target = "2026-12-02 05:10:31";  // the very second it ended
    CHECK_FALSE(backup::check_restore_target(cfg, *info, now));
    cfg.recovery_target_kind = "lsn";
    cfg.recovery_target = "0/3800000";
    CHECK(backup::check_restore_target(cfg, *info, now));
    cfg.recovery_target = "0/3000000";
    CHECK_FALSE(backup::check_restore_target(cfg, *info, now));
    cfg.recovery_target = "0/5000001";  // past segment 4's end
    CHECK_THAT(backup::check_restore_target(cfg, *info, now).error().message,
               Catch::Contains("beyond the end of the archive"));
    cfg.recovery_target_kind = "";
    cfg.backup_set = "20991231-000000F";
    CHECK_THAT(backup::check_restore_target(cfg, *info, now).error().message,
               Catch::Contains("no backup '20991231-000000F'"));
    backup::RepositoryInfo empty;
    empty.stanza_exists = true;
    cfg.backup_set.clear();
    CHECK_THAT(backup::check_restore_target(cfg, empty, now).error().message,
               Catch::Contains("holds no backup"));
}

TEST_CASE("restore arguments", "[backup]") {
    Config cfg;
    CHECK(backup::restore_args(cfg) == std::vector<std::string>{"restore", "--type=default"});
    cfg.recovery_target_kind = "time";
    cfg.recovery_target = "2026-12-02 10:42:00";
    cfg.backup_set = "20261202-051029F";
    CHECK(backup::restore_args(cfg) ==
          std::vector<std::string>{"restore", "--set=20261202-051029F", "--type=time",
                                   "--target=2026-12-02 10:42:00+00", "--target-action=promote"});
    cfg.recovery_target = "2026-12-02 10:42:00.25+02";
    CHECK(backup::restore_args(cfg)[3] == "--target=2026-12-02 08:42:00.25+00");
    cfg.recovery_target = "2026-12-02T10:42:00Z";
    CHECK(backup::restore_args(cfg)[3] == "--target=2026-12-02 10:42:00+00");
}

TEST_CASE("after a promotion, the parent timeline's complete segments", "[backup]") {
    const uint64_t mb16 = 16 * 1024 * 1024;
    std::vector<std::string> files = {
        "000000010000000000000002", "000000010000000000000003",        "000000010000000000000004",
        "000000010000000000000005", "000000020000000000000005",        "00000002.history",
        "archive_status",           "000000010000000000000004.partial"};
    // The switch inside segment 5: 2..4 are complete, 5 is postgres's .partial.
    CHECK(backup::fork_segments(files, "1\t0/5000060\tno recovery target specified\n", mb16) ==
          std::vector<std::string>{"000000010000000000000002", "000000010000000000000003",
                                   "000000010000000000000004"});
    // The switch at a segment boundary: segment 4 ends the old timeline, whole.
    CHECK(backup::fork_segments(files, "1\t0/5000000\treason\n", mb16).back() ==
          "000000010000000000000004");
    CHECK(backup::fork_segments(files, "", mb16).empty());
    CHECK(backup::segment_end_lsn("000000010000000000000004", mb16) == 0x5000000);
    CHECK(backup::segment_end_lsn("00000001000000010000000A", mb16) == (1ULL << 32) + 0xB000000);
    CHECK(backup::segment_end_lsn("nonsense", mb16) == 0);
}

TEST_CASE("a failing archive is the newest attempt failing", "[backup]") {
    using nlohmann::json;
    CHECK_FALSE(backup::archive_failing(json()));
    CHECK_FALSE(backup::archive_failing(
        {{"failed_count", 0}, {"last_archived_time", 100.0}, {"last_failed_time", nullptr}}));
    CHECK(backup::archive_failing(
        {{"failed_count", 3}, {"last_archived_time", 100.0}, {"last_failed_time", 200.0}}));
    CHECK(backup::archive_failing(
        {{"failed_count", 3}, {"last_archived_time", nullptr}, {"last_failed_time", 200.0}}));
    CHECK_FALSE(backup::archive_failing(
        {{"failed_count", 3}, {"last_archived_time", 300.0}, {"last_failed_time", 200.0}}));
}

TEST_CASE("the controller's backup schedule", "[backup]") {
    auto s = parse_backup_schedule("full=7d,diff=1d,incr=1h");
    REQUIRE(s.ok());
    CHECK(s->full == std::chrono::hours(24 * 7));
    CHECK_FALSE(parse_backup_schedule("diff=1d"));          // full is required
    CHECK_FALSE(parse_backup_schedule("full=7d,full=1d"));  // once each
    CHECK_FALSE(parse_backup_schedule("full=10s"));         // at least a minute
    CHECK_FALSE(parse_backup_schedule("weekly=7d"));
    CHECK_FALSE(parse_backup_schedule("full"));
    const std::time_t day = 86400, now = 100 * day;
    NewestBackups none;
    CHECK(backup_due(*s, none, now) == "full");
    NewestBackups n;
    n.full = now - 2 * day;  // a full two days old: a diff is due
    CHECK(backup_due(*s, n, now) == "diff");
    n.diff = now - 2 * 3600;  // a diff two hours old: an incremental
    CHECK(backup_due(*s, n, now) == "incr");
    n.incr = now - 60;
    CHECK(backup_due(*s, n, now) == "");
    n.full = now - 8 * day;  // the full is too old, whatever came since
    CHECK(backup_due(*s, n, now) == "full");
    auto view =
        nlohmann::json{{"newest", {{"full", now - 60}, {"diff", nullptr}, {"incr", nullptr}}}};
    CHECK(backup_due(*s, newest_backups(view), now) == "");
    CHECK(backup_due(*parse_backup_schedule("full=1d"), newest_backups(nlohmann::json()), now) ==
          "full");
}

TEST_CASE("backups in the status table and the backups list", "[backup]") {
    auto info = backup::parse_info(kInfo, "c1");
    REQUIRE(info.ok());
    nlohmann::json view = {
        {"stanza", "c1"},
        {"stanza_ready", true},
        {"archive_failing", false},
        {"archiver", {{"last_archived_wal", "000000010000000000000004"}, {"ready_segments", 0}}},
        {"backups", 1},
        {"last_backup", backup::to_json(info->backups.back())},
        {"running", nullptr},
        {"check", {{"ok", true}}}};
    nlohmann::json cluster = {{"term", 3},
                              {"primary", "a"},
                              {"members", nlohmann::json::array()},
                              {"backup", backup_summary(view)}};
    auto table = render_table(cluster);
    CHECK_THAT(table, Catch::Contains("Backups: stanza c1, 1 held, newest full 20261202-051029F"));
    CHECK_THAT(table, Catch::Contains("archive ok (last 000000010000000000000004, 0 waiting)"));
    view["archive_failing"] = true;
    CHECK_THAT(render_table({{"backup", backup_summary(view)}}),
               Catch::Contains("archive failing"));
    CHECK(backup_summary(nullptr).is_null());
    auto listed = backup::to_json(*info);
    listed["stanza"] = "c1";
    listed["member"] = "a";
    auto text = render_backups(listed);
    CHECK_THAT(text, Catch::Contains("20261202-051029F"));
    CHECK_THAT(text, Catch::Contains("000000010000000000000003 .. 000000010000000000000003"));
    CHECK_THAT(render_backups({{"backups", nlohmann::json::array()}}),
               Catch::Contains("no backups yet"));
}

TEST_CASE("a restored primary's postgresql.auto.conf loses the restore's recovery settings",
          "[backup]") {
    const std::string conf =
        "# Do not edit this file manually!\n"
        "work_mem = '8MB'\n"
        "\n"
        "# Recovery settings generated by pgBackRest restore on 2026-12-02 10:43:00\n"
        "restore_command = 'pgbackrest --stanza=orders archive-get %f \"%p\"'\n"
        "recovery_target_time = '2026-12-02 10:42:00+00'\n"
        "  recovery_target_action='promote'\n"
        "recovery_target_timeline = 'latest'\n"
        "shared_buffers = '1GB'";
    const std::string clean = backup::without_restore_settings(conf);
    CHECK(clean ==
          "# Do not edit this file manually!\n"
          "work_mem = '8MB'\n"
          "\n"
          "# Recovery settings generated by pgBackRest restore on 2026-12-02 10:43:00\n"
          "shared_buffers = '1GB'");
    CHECK(backup::without_restore_settings(clean) == clean);
    CHECK(backup::without_restore_settings("") == "");
    CHECK(backup::error_lines("INFO: a\nERROR: [082]: b\nINFO: c\n") == "ERROR: [082]: b");
    CHECK(backup::error_lines("one\ntwo\nthree\nfour\n", 2) == "three\nfour");
}

namespace {
MemberView backup_member_view(const std::string& name, const std::string& role, bool server,
                              uint64_t lag = 0) {
    MemberView m;
    m.name = name;
    m.url = "http://" + name + ":8000";
    m.host = name;
    m.reachable = m.ready = m.running = true;
    m.role = role;
    m.pg_port = 5432;
    m.timeline = 3;
    m.lag_bytes = lag;
    if (role == "replica") {
        m.streaming = true;
        m.upstream_host = "p";
        m.upstream_port = "5432";
    }
    m.status["backup"] = {{"stanza_ready", true}, {"running", nullptr}, {"server", nullptr}};
    if (server)
        m.status["backup"]["server"] = {{"running", true}, {"port", 8432},
                                        {"host", nullptr}, {"pg_path", "/data/" + name},
                                        {"pg_port", 5432}, {"socket_path", "/run/" + name}};
    return m;
}
}  // namespace

TEST_CASE("where a backup runs: a caught-up replica, else the primary", "[backup]") {
    const std::string since = "2026-12-02T10:00:00Z";
    std::vector<MemberView> v = {backup_member_view("p", "primary", true),
                                 backup_member_view("r1", "replica", true, 4096),
                                 backup_member_view("r2", "replica", true, 0)};
    auto src = backup_source(v, 0, "diff", since);
    REQUIRE(src);
    CHECK(src->standby);
    CHECK(v[src->member].name == "r2");  // the least behind
    CHECK(src->body["type"] == "diff");
    CHECK(src->body["primary"]["host"] == "p");  // the API address's host when none is set
    CHECK(src->body["primary"]["pg_path"] == "/data/p");
    CHECK(src->body["primary"]["socket_path"] == "/run/p");
    CHECK(backup::parse_backup_request(src->body));  // what the member will accept

    SECTION("the name the primary's certificate carries") {
        v[0].status["backup"]["server"]["host"] = "p.headless";
        CHECK(backup_source(v, 0, "full", since)->body["primary"]["host"] == "p.headless");
    }
    SECTION("ties go by name") {
        v[1].lag_bytes = 0;
        CHECK(v[backup_source(v, 0, "full", since)->member].name == "r1");
    }
    SECTION("replicas that cannot take it") {
        auto only = [&](auto&& spoil) {
            spoil(v[1]);
            spoil(v[2]);
            auto s = backup_source(v, 0, "full", since);
            REQUIRE(s);
            CHECK_FALSE(s->standby);
            CHECK(s->member == 0);
            CHECK(s->body == nlohmann::json{{"type", "full"}});
        };
        SECTION("not ready") {
            only([](MemberView& m) { m.ready = false; });
        }
        SECTION("unreachable") {
            only([](MemberView& m) { m.reachable = false; });
        }
        SECTION("not streaming") {
            only([](MemberView& m) { m.streaming = false; });
        }
        SECTION("from another upstream") {
            only([](MemberView& m) { m.upstream_host = "x"; });
        }
        SECTION("behind") {
            only([](MemberView& m) { m.lag_bytes = 64ull << 20; });
        }
        SECTION("another timeline") {
            only([](MemberView& m) { m.timeline = 2; });
        }
        SECTION("no server (no certificate)") {
            only([](MemberView& m) { m.status["backup"]["server"] = nullptr; });
        }
        SECTION("failed within the window") {
            only([](MemberView& m) {
                m.status["backup"]["last_result"] = {{"ok", false},
                                                     {"finished_at", "2026-12-02T10:30:00Z"}};
            });
        }
    }
    SECTION("a failure before the window does not count") {
        v[2].status["backup"]["last_result"] = {{"ok", false},
                                                {"finished_at", "2026-12-02T09:00:00Z"}};
        CHECK(v[backup_source(v, 0, "full", since)->member].name == "r2");
    }
    SECTION("the primary without a running server: the primary") {
        v[0].status["backup"]["server"]["running"] = false;
        CHECK_FALSE(backup_source(v, 0, "full", since)->standby);
        v[0].status["backup"]["server"] = nullptr;
        CHECK_FALSE(backup_source(v, 0, "full", since)->standby);
    }
    SECTION("the view that shows the newest backup, and a backup no view shows yet") {
        CHECK(newest_repository_view(v).view.is_null());
        v[0].status["backup"]["repository_read_at"] = "2026-12-02T10:00:00Z";
        v[0].status["backup"]["newest"] = {{"full", 1}};
        v[2].status["backup"]["repository_read_at"] = "2026-12-02T10:05:00Z";
        v[2].status["backup"]["newest"] = {{"full", 2}};
        v[2].status["backup"]["last_result"] = {{"ok", true},
                                                {"finished_at", "2026-12-02T10:04:59Z"}};
        auto repo = newest_repository_view(v);
        CHECK(repo.view["newest"]["full"] == 2);
        CHECK(repo.last_end == "2026-12-02T10:04:59Z");
        CHECK_FALSE(repo.unread_backup);
        // The member's backup ended after its own last read: wait for a read.
        v[2].status["backup"]["last_result"]["finished_at"] = "2026-12-02T10:06:00Z";
        CHECK(newest_repository_view(v).unread_backup);
        v[2].status["backup"]["last_result"]["finished_at"] = "2026-12-02T10:04:59Z";
        // A fresher read that shows less is not the newest view: the
        // repository is shared, the view holding the newest backup wins
        // (members' clocks are never compared).
        v[0].status["backup"]["repository_read_at"] = "2026-12-02T11:00:00Z";
        CHECK(newest_repository_view(v).view["newest"]["full"] == 2);
        // A failed read is not counted, however fresh it looks.
        v[2].status["backup"]["repository_error"] = "pgbackrest info: access denied";
        CHECK(newest_repository_view(v).view["newest"]["full"] == 1);
        v[2].status["backup"].erase("repository_error");
        v[2].reachable = false;
        CHECK(newest_repository_view(v).view["newest"]["full"] == 1);
    }
    SECTION("one backup at a time across the cluster, across missed polls") {
        using namespace std::chrono_literals;
        BackupsRunning running;
        auto t = std::chrono::steady_clock::time_point{} + 1h;
        running.observe(v, t);
        CHECK_FALSE(running.any());
        v[1].status["backup"]["running"] = {{"type", "full"}};
        running.observe(v, t += 1s);
        CHECK(running.any() == std::optional<std::string>("r1"));
        // r1 misses a poll: its backup is not over for that.
        v[1].reachable = false;
        running.observe(v, t += 1s);
        CHECK(running.any() == std::optional<std::string>("r1"));
        // Seen idle again: the mark goes.
        v[1].reachable = true;
        v[1].status["backup"]["running"] = nullptr;
        running.observe(v, t += 1s);
        CHECK_FALSE(running.any());
        // Started by this controller, before any poll shows it; a poll that
        // left before the start says "idle" and does not clear it.
        const auto poll_left = t += 1s;
        running.started("r2", t += 1s);
        CHECK(running.any() == std::optional<std::string>("r2"));
        running.observe(v, poll_left);
        CHECK(running.any() == std::optional<std::string>("r2"));
        // A member that leaves the membership loses its mark.
        running.started("gone", t);
        v[2].status["backup"]["running"] = {{"type", "incr"}};
        running.observe(v, t += 1s);
        CHECK(running.any() == std::optional<std::string>("r2"));
        // A poll sent after the start that sees it idle: over.
        v[2].status["backup"]["running"] = nullptr;
        running.observe(v, t += 1s);
        CHECK_FALSE(running.any());
    }
}
