#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "bootstrap/data_dir.hpp"
#include "fs_util.hpp"
#include "log.hpp"
#include "secrets.hpp"
#include "temp_dir.hpp"
#include "api/status_report.hpp"

using namespace im;

using im::test::TempDir;

TEST_CASE("secrets compare by value only", "[secrets]") {
    CHECK(secrets_equal("abc", "abc"));
    CHECK_FALSE(secrets_equal("abd", "abc"));
    CHECK_FALSE(secrets_equal("ab", "abc"));
    CHECK_FALSE(secrets_equal("", ""));  // an empty token never matches
    auto a = random_token(24), b = random_token(24);
    CHECK(a.size() == 32);
    CHECK(a != b);
    CHECK(a.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
          std::string::npos);
}

TEST_CASE("LSN parsing", "[status]") {
    CHECK(parse_lsn("0/0") == 0);
    CHECK(parse_lsn("16/B374D848") == ((0x16ULL << 32) | 0xB374D848ULL));
    CHECK(parse_lsn("") == 0);
    CHECK(parse_lsn("zz") == 0);
}

TEST_CASE("log lines are one valid JSON object with the four fields", "[log]") {
    auto line = log::format_line(log::Level::warn, "postgres", "quote \" and \n newline \xff",
                                 {{"pid", 7}});
    CHECK(line.find('\n') == std::string::npos);
    auto j = nlohmann::json::parse(line);
    CHECK(j["level"] == "warn");
    CHECK(j["logger"] == "postgres");
    CHECK(j["pid"] == 7);
    CHECK(j["msg"].get<std::string>().rfind("quote \" and \n newline", 0) == 0);
    CHECK(j["time"].get<std::string>().size() == 24);
}

TEST_CASE("atomic writes and secrets files", "[fs]") {
    TempDir d;
    std::string p = d.path + "/f";
    REQUIRE(fs::write_file_atomic(p, "one", 0600).ok());
    REQUIRE(fs::write_file_atomic(p, "two", 0600).ok());
    CHECK(*fs::read_file(p) == "two");
    CHECK_FALSE(fs::exists(p + ".tmp"));

    std::string secret = d.path + "/app.password";
    auto made = fs::read_or_create_secret(secret);
    REQUIRE(made.ok());
    struct stat st {};
    REQUIRE(::stat(secret.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(*fs::read_or_create_secret(secret) == *made);
    REQUIRE(fs::write_file_atomic(secret, "  \n", 0600).ok());
    CHECK_FALSE(fs::read_secret(secret).ok());
}

TEST_CASE("data directory kinds", "[data_dir]") {
    TempDir d;
    CHECK(*inspect_data_dir(d.path) == DataDirKind::empty);
    CHECK(*inspect_data_dir(d.path + "/new/sub") == DataDirKind::empty);
    CHECK(fs::is_dir(d.path + "/new/sub"));
    REQUIRE(fs::write_file_atomic(d.path + "/notes.txt", "mine", 0644).ok());
    CHECK(*inspect_data_dir(d.path) == DataDirKind::foreign);
    std::filesystem::create_directory(d.path + "/global");
    REQUIRE(fs::write_file_atomic(d.path + "/PG_VERSION", "15\n", 0600).ok());
    REQUIRE(fs::write_file_atomic(d.path + "/global/pg_control", "x", 0600).ok());
    CHECK(*inspect_data_dir(d.path) == DataDirKind::cluster);
    CHECK(*cluster_major_version(d.path) == 15);
}

TEST_CASE("stale postmaster.pid of a dead process is removed", "[data_dir]") {
    TempDir d;
    std::string pidfile = d.path + "/postmaster.pid";
    // PID 2^22-1 is above the default pid_max on most systems: not alive.
    REQUIRE(fs::write_file_atomic(pidfile, "4194303\n/x\n1\n5432\n/tmp\n*\n  1 2\nready   \n", 0600)
                .ok());
    auto info = read_pid_file(d.path);
    REQUIRE(info.ok());
    CHECK(info->pid == 4194303);
    CHECK(info->status == "ready");
    REQUIRE(clear_stale_pid_file(d.path).ok());
    CHECK_FALSE(fs::exists(pidfile));
    // A live process that is not postgres on this directory: also stale.
    REQUIRE(
        fs::write_file_atomic(pidfile, std::to_string(::getpid() == 1 ? 2 : 1) + "\n", 0600).ok());
    REQUIRE(clear_stale_pid_file(d.path).ok());
    CHECK_FALSE(fs::exists(pidfile));
}

#include "bootstrap/replication_config.hpp"
#include "daemon/state_store.hpp"

TEST_CASE("terms: stale refused, same command and term is a repeat", "[state]") {
    PersistentState s;
    s.term = 5;
    nlohmann::json follow_a = {{"term", 5}, {"primary_conninfo", "host=a"}};
    s.last_command = command_key("follow", 5, follow_a);
    CHECK(s.last_command == "follow:5:{\"primary_conninfo\":\"host=a\"}");
    CHECK(judge_term(s, command_key("follow", 4, follow_a), 4) == TermVerdict::stale);
    CHECK(judge_term(s, command_key("follow", 5, follow_a), 5) == TermVerdict::repeat);
    CHECK(judge_term(s, command_key("follow", 5, {{"primary_conninfo", "host=b"}}), 5) ==
          TermVerdict::fresh);
    CHECK(judge_term(s, command_key("fence", 5, {}), 5) == TermVerdict::fresh);
    CHECK(judge_term(s, command_key("follow", 6, follow_a), 6) == TermVerdict::fresh);
}

TEST_CASE("persistent state round-trips and a corrupt file is an error", "[state]") {
    TempDir d;
    StateStore store(d.path + "/state.json");
    auto fresh = store.load();
    REQUIRE(fresh.ok());
    CHECK(fresh->term == 0);
    PersistentState s;
    s.term = 9;
    s.fenced = true;
    s.primary_conninfo = "host=a port=5432";
    s.members = {"a", "b"};
    s.synchronous = SyncSpec{"first", 1, {"b"}};
    REQUIRE(store.save(s).ok());
    auto back = store.load();
    REQUIRE(back.ok());
    CHECK(back->term == 9);
    CHECK(back->fenced);
    CHECK(back->primary_conninfo == "host=a port=5432");
    CHECK(back->members == std::vector<std::string>{"a", "b"});
    REQUIRE(back->synchronous.has_value());
    CHECK(back->synchronous->method == "first");
    CHECK(back->synchronous->standbys == std::vector<std::string>{"b"});
    REQUIRE(fs::write_file_atomic(d.path + "/state.json", "{nope", 0600).ok());
    CHECK_FALSE(store.load().ok());
}

TEST_CASE("replication conninfo: TLS required, passfile, no inline password", "[replication]") {
    ReplicationAuth auth{"/d/replication.pgpass", ""};
    auto c = replication_conninfo("host=10.0.0.1 port=5432", "pg-2", auth);
    REQUIRE(c.ok());
    auto m = parse_conninfo(*c);
    REQUIRE(m.ok());
    CHECK(m->at("sslmode") == "require");
    CHECK(m->at("user") == "streaming_replica");
    CHECK(m->at("passfile") == "/d/replication.pgpass");
    CHECK(m->at("application_name") == "pg-2");
    CHECK_FALSE(m->count("password"));
    // No client file is left for libpq to find in a home directory.
    for (const char* key : {"sslcert", "sslkey", "sslrootcert", "sslcrl"})
        CHECK(m->at(key) == kNoSuchFile);
    auto verify = replication_conninfo("host=h", "x", {"/p", "/ca.crt"});
    REQUIRE(verify.ok());
    CHECK(parse_conninfo(*verify)->at("sslmode") == "verify-full");
    CHECK(parse_conninfo(*verify)->at("sslrootcert") == "/ca.crt");
    auto own_cert = replication_conninfo("host=h sslcert=/c.crt sslkey=/c.key", "x", auth);
    REQUIRE(own_cert.ok());
    CHECK(parse_conninfo(*own_cert)->at("sslcert") == "/c.crt");
    CHECK_FALSE(replication_conninfo("host=h password=secret", "x", auth).ok());
    CHECK_FALSE(replication_conninfo("port=5432", "x", auth).ok());
    CHECK_FALSE(replication_conninfo("host=h user=app", "x", auth).ok());
    CHECK(slot_name_for("PG-2.east") == "pg_2_east");
    CHECK(render_passfile("a:b\\c") == "*:*:*:streaming_replica:a\\:b\\\\c\n");
    auto settings = render_standby_settings("host='h' x='it''s'", "pg_2");
    CHECK(settings.find("primary_slot_name = 'pg_2'") != std::string::npos);
    CHECK(settings.find("recovery_target_timeline = 'latest'") != std::string::npos);
    CHECK(public_upstream(*c).count("passfile") == 0);
    CHECK(public_upstream(*c).at("host") == "10.0.0.1");
}

TEST_CASE("synchronous replication specs", "[replication]") {
    auto off = parse_sync_spec(nullptr);
    REQUIRE(off.ok());
    CHECK_FALSE(off->has_value());
    auto any = parse_sync_spec({{"standbys", {"pg-2", "pg-3"}}});
    REQUIRE(any.ok());
    CHECK(synchronous_standby_names(**any) == "ANY 1 (\"pg-2\", \"pg-3\")");
    auto first = parse_sync_spec({{"method", "first"}, {"number", 2}, {"standbys", {"a", "b"}}});
    REQUIRE(first.ok());
    CHECK(synchronous_standby_names(**first) == "FIRST 2 (\"a\", \"b\")");
    CHECK(to_json(*first)["number"] == 2);
    CHECK(to_json(std::nullopt).is_null());
    CHECK_FALSE(parse_sync_spec({{"standbys", {"a"}}, {"number", 2}}).ok());
    CHECK_FALSE(parse_sync_spec({{"standbys", {"a"}}, {"number", 0}}).ok());
    CHECK_FALSE(parse_sync_spec({{"standbys", nlohmann::json::array()}}).ok());
    CHECK_FALSE(parse_sync_spec({{"standbys", {"a\"b"}}}).ok());
    CHECK_FALSE(parse_sync_spec({{"standbys", {"a"}}, {"method", "all"}}).ok());
    CHECK_FALSE(parse_sync_spec({{"standbys", {"a"}}, {"extra", 1}}).ok());
    CHECK_FALSE(parse_sync_spec("ANY 1 (a)").ok());
}

TEST_CASE("timeline history: where our timeline ends", "[replication]") {
    std::string history =
        "1\t0/3000060\tno recovery target specified\n"
        "\n"
        "2\t0/5000000\tno recovery target specified\n";
    CHECK(timeline_switchpoint(history, 1) == parse_lsn("0/3000060"));
    CHECK(timeline_switchpoint(history, 2) == parse_lsn("0/5000000"));
    CHECK_FALSE(timeline_switchpoint(history, 3).has_value());
    CHECK_FALSE(timeline_switchpoint("", 1).has_value());
    CHECK_FALSE(timeline_switchpoint("# comment 1\n", 1).has_value());
    const uint64_t mb16 = 16 * 1024 * 1024;
    CHECK(wal_segment_suffix(parse_lsn("0/3000060"), mb16) == "0000000000000003");
    CHECK(wal_segment_suffix(parse_lsn("0/3000000"), mb16) == "0000000000000002");
    CHECK(wal_segment_suffix(parse_lsn("1/A0000010"), mb16) == "00000001000000A0");
}


TEST_CASE("an LSN as text and back", "[misc]") {
    CHECK(lsn_text(parse_lsn("16/B374D848")) == "16/B374D848");
    CHECK(lsn_text(parse_lsn("0/3000060")) == "0/3000060");
    CHECK(lsn_text(0) == "0/0");
}

#include "api/file_health.hpp"
#include "bootstrap/tls_cert.hpp"

TEST_CASE("file health: a certificate's expiry and secrets that read", "[files]") {
    auto dir = std::filesystem::temp_directory_path() / ("im-fh-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir / "instance-manager" / "tls");
    const std::string crt = (dir / "instance-manager" / "tls" / "server.crt").string();
    REQUIRE(im::ensure_self_signed_cert(crt, (dir / "instance-manager" / "tls" / "server.key").string(),
                                        "pg-1"));
    auto expiry = im::certificate_expiry(crt);
    REQUIRE(expiry.has_value());
    CHECK(*expiry > static_cast<double>(std::time(nullptr)) + 86400.0);
    CHECK_FALSE(im::certificate_expiry((dir / "missing.crt").string()).has_value());
    REQUIRE(im::fs::write_file_atomic((dir / "not-a-cert").string(), "hello\n", 0600));
    CHECK_FALSE(im::certificate_expiry((dir / "not-a-cert").string()).has_value());

    im::Config cfg;
    cfg.pgdata = dir.string();
    cfg.app_password_file = (dir / "app.password").string();
    cfg.api_token_file = (dir / "token").string();
    REQUIRE(im::fs::write_file_atomic(cfg.app_password_file, "s3cret\n", 0600));
    // Emptied by a bad rotation.
    REQUIRE(im::fs::write_file_atomic(cfg.api_token_file, "", 0600));
    auto certs = im::certificates_in_use(cfg);
    REQUIRE(certs.size() == 1);
    CHECK(certs[0] == std::make_pair(std::string("postgres"), crt));
    auto secrets = im::secret_files_ok(cfg);
    CHECK(secrets == std::vector<std::pair<std::string, bool>>{{"app-password", true},
                                                               {"api-token", false}});
    std::filesystem::remove_all(dir);
}
