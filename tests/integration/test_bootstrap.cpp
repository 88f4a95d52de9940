// Bootstrap from an empty volume, reuse of an existing one, refusal of a
// foreign one, and start-up argument errors: all against real postgres.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "harness.hpp"

using namespace harness;

TEST_CASE("bootstrap from an empty directory gives a usable, locked-down database", "[bootstrap]") {
    Instance pg("boot1");
    pg.start();
    REQUIRE(pg.wait_ready());

    // app over TCP, with TLS from the start.
    auto ssl = pg.psql("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    INFO(ssl.out);
    REQUIRE(ssl.code == 0);
    CHECK(ssl.out.rfind("t|TLSv1.3", 0) == 0);

    // app owns its database and can work in it, but cannot create databases.
    REQUIRE(pg.psql("CREATE TABLE cookie (id serial PRIMARY KEY, text text); INSERT INTO cookie "
                    "(text) VALUES ('x')")
                .code == 0);
    auto createdb = pg.psql("CREATE DATABASE x");
    CHECK(createdb.code != 0);
    CHECK(createdb.out.find("permission denied to create database") != std::string::npos);
    auto attrs =
        pg.psql("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'app'");
    CHECK(attrs.out == "f|f|f\n");
    auto owner = pg.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'");
    CHECK(owner.out == "app\n");
    CHECK(pg.psql("SELECT 1", "app", "app", std::string("wrong")).code != 0);

    // Superuser over TCP is rejected unless switched on; locally the manager gets in.
    auto su = pg.psql("SELECT 1", "postgres", "postgres", std::string("anything"));
    CHECK(su.code != 0);
    CHECK(su.out.find("pg_hba.conf rejects connection") != std::string::npos);
    CHECK(pg.psql_local("SELECT 1").out == "1\n");

    auto repl = pg.psql_local(
        "SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = 'streaming_replica'");
    CHECK(repl.out == "t|f\n");
    CHECK(pg.psql_local("SHOW data_checksums").out == "on\n");
    CHECK(pg.psql_local("SHOW wal_log_hints").out == "on\n");
    CHECK(pg.psql_local("SHOW password_encryption").out == "scram-sha-256\n");

    // Passwords are generated into 0600 files; none of them shows in status.
    struct stat st {};
    REQUIRE(::stat((pg.pgdata + "/instance-manager/app.password").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    auto status = pg.get("/v1/status");
    REQUIRE(status.ok());
    CHECK(status->body.find(pg.app_password()) == std::string::npos);
    auto js = pg.status();
    CHECK(js["role"] == "primary");
    CHECK(js["postgres"]["timeline"] == 1);
    CHECK(js["postgres"]["version_num"].get<int>() >= 130000);

    // The user's postgresql.conf only gained the include line.
    std::ifstream conf(pg.pgdata + "/postgresql.conf");
    std::string text((std::istreambuf_iterator<char>(conf)), {});
    CHECK(text.find("include_if_exists = 'instance-manager.conf'") != std::string::npos);

    pg.signal(SIGTERM);
    auto code = pg.wait_exit(60s);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    CHECK(pg.control_state() == "shut down");
}

TEST_CASE("superuser over TCP when a superuser password file is given", "[bootstrap]") {
    Instance pg("boot2");
    std::string su_file = pg.root + "/superuser.password";
    pg.extra_args = {"--superuser-password-file", su_file};
    pg.start();
    REQUIRE(pg.wait_ready());
    std::ifstream in(su_file);
    std::string password;
    std::getline(in, password);
    REQUIRE(password.size() >= 16);
    auto r = pg.psql("CREATE DATABASE testdb", "postgres", "postgres", password);
    INFO(r.out);
    CHECK(r.code == 0);
}

TEST_CASE("an existing data directory is reused with its data", "[bootstrap]") {
    Instance pg("boot3");
    pg.start();
    REQUIRE(pg.wait_ready());
    REQUIRE(pg.psql("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)").code == 0);
    auto sysid = pg.status()["postgres"]["system_identifier"];
    std::string password = pg.app_password();
    pg.signal(SIGTERM);
    REQUIRE(pg.wait_exit(60s) == 0);

    pg.start();
    REQUIRE(pg.wait_ready());
    CHECK(pg.psql("SELECT v FROM kept").out == "42\n");
    CHECK(pg.status()["postgres"]["system_identifier"] == sysid);
    CHECK(pg.app_password() == password);
    CHECK(pg.log().find("reusing the existing data directory") != std::string::npos);
}

TEST_CASE("a stale postmaster.pid naming a live unrelated process does not block start",
          "[bootstrap]") {
    Instance pg("boot4");
    pg.start();
    REQUIRE(pg.wait_ready());
    pg.signal(SIGTERM);
    REQUIRE(pg.wait_exit(60s) == 0);
    // As after a container crash: a lock file whose PID now belongs to someone else.
    auto sleeper = sh("sleep 60 >/dev/null 2>&1 & echo $!");
    std::string pid = sleeper.out.substr(0, sleeper.out.find('\n'));
    sh("printf '%s\\n%s\\n' " + pid + " " + pg.pgdata + " > " + pg.pgdata + "/postmaster.pid",
       true);
    pg.start();
    CHECK(pg.wait_ready());
    CHECK(pg.log().find("removing stale postmaster.pid") != std::string::npos);
    sh("kill " + pid);
}

TEST_CASE("a non-empty directory that is not a cluster is refused untouched", "[bootstrap]") {
    Instance pg("boot5");
    std::filesystem::create_directory(pg.pgdata);
    { std::ofstream(pg.pgdata + "/family-photos.txt") << "precious\n"; }
    sh("chown -R " + run_user() + " " + pg.pgdata);
    int code = pg.run_to_exit();
    CHECK(code != 0);
    CHECK(pg.log().find("not a PostgreSQL data directory") != std::string::npos);
    std::vector<std::string> entries;
    for (auto& e : std::filesystem::directory_iterator(pg.pgdata))
        entries.push_back(e.path().filename());
    REQUIRE(entries.size() == 1);
    CHECK(entries[0] == "family-photos.txt");
}

TEST_CASE("bad arguments exit 2 before anything is touched", "[bootstrap]") {
    for (std::vector<std::string> bad : {std::vector<std::string>{"--no-such-flag"},
                                         {"--pg-port", "99999"},
                                         {"--restart-policy", "maybe"},
                                         {"--api-token-file", "/nonexistent/token"}}) {
        Instance pg("boot6");
        pg.extra_args = bad;
        INFO(bad[0]);
        CHECK(pg.run_to_exit() == 2);
        CHECK_FALSE(std::filesystem::exists(pg.pgdata));
        CHECK(pg.log().find("instance-manager run:") != std::string::npos);
    }
}
