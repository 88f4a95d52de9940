#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "fs_util.hpp"
#include "bootstrap/pg_files.hpp"

using namespace im;

TEST_CASE("hba lets in app, replication and the manager; superuser only when enabled",
          "[pg_files]") {
    auto hba = render_hba(false);
    CHECK(hba.find("host     app          app                all      scram-sha-256") !=
          std::string::npos);
    CHECK(hba.find("hostssl  replication  streaming_replica") != std::string::npos);
    CHECK(hba.find("local    all          postgres                    peer map=instance-manager") !=
          std::string::npos);
    CHECK(hba.find("host     all          postgres           all      scram") == std::string::npos);
    CHECK(hba.find("host     all          postgres           all      reject") != std::string::npos);
    CHECK(hba.find("trust") == std::string::npos);
    auto with_su = render_hba(true);
    CHECK(with_su.find("host     all          postgres           all      scram-sha-256") !=
          std::string::npos);
    // The reject line comes after every allow line.
    CHECK(with_su.find("reject") > with_su.find("postgres           all"));
}

TEST_CASE("managed settings", "[pg_files]") {
    Config cfg;
    cfg.name = "db-1";
    cfg.pg_port = 6000;
    cfg.socket_dir = "/run/it's";
    auto conf = render_managed_conf(cfg, {"/c.crt", "/c.key"});
    for (const char* line :
         {"port = 6000", "wal_log_hints = on", "hot_standby = on", "restart_after_crash = off",
          "listen_addresses = '*'", "ssl = on", "ssl_cert_file = '/c.crt'",
          "unix_socket_directories = '/run/it''s'", "cluster_name = 'db-1'"})
        CHECK(conf.find(line) != std::string::npos);
    CHECK(render_ident("pgrunner").find("instance-manager pgrunner postgres") != std::string::npos);
}

TEST_CASE("the include line is added to postgresql.conf once and nothing else changes",
          "[pg_files]") {
    char tmpl[] = "/tmp/im-unit-XXXXXX";
    std::string dir = ::mkdtemp(tmpl);
    std::string conf = dir + "/postgresql.conf";
    REQUIRE(fs::write_file_atomic(conf, "shared_buffers = 1GB\nwork_mem = '8MB'", 0600).ok());
    REQUIRE(ensure_include(dir).ok());
    REQUIRE(ensure_include(dir).ok());
    auto text = fs::read_file(conf);
    REQUIRE(text.ok());
    CHECK(text->rfind("shared_buffers = 1GB\nwork_mem = '8MB'\n", 0) == 0);
    auto first = text->find(kIncludeLine);
    REQUIRE(first != std::string::npos);
    CHECK(text->find(kIncludeLine, first + 1) == std::string::npos);
    std::filesystem::remove_all(dir);
}
