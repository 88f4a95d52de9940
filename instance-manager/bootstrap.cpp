#include "bootstrap.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <regex>

#include "data_dir.hpp"
#include "fs_util.hpp"
#include "log.hpp"
#include "tls_cert.hpp"

namespace im {

namespace {

constexpr auto kSqlTimeout = std::chrono::seconds(30);

awaitable<Result<int>> binaries_major_version(Reaper& reaper, const Config& cfg) {
    SpawnOptions opts;
    opts.argv = {cfg.pg_bin + "/postgres", "--version"};
    auto r = co_await run_command(reaper, opts, "bootstrap");
    if (!r) co_return r.error();
    std::smatch m;
    static const std::regex re(R"(\(PostgreSQL\) (\d+))");
    if (!r->success() || !std::regex_search(r->output, m, re))
        co_return make_error("cannot tell the version of " + opts.argv[0]);
    co_return std::stoi(m[1].str());
}

awaitable<Status> run_initdb(Reaper& reaper, const Config& cfg) {
    SpawnOptions opts;
    opts.argv = {cfg.pg_bin + "/initdb", "--pgdata=" + cfg.pgdata, "--username=postgres",
                 "--data-checksums", "--auth-local=peer", "--auth-host=scram-sha-256",
                 "--encoding=UTF8", "--locale=C", "--no-instructions"};
    opts.parent_death_signal = SIGTERM;
    log::info("bootstrap", "initializing an empty data directory", {{"pgdata", cfg.pgdata}});
    auto r = co_await run_command(reaper, opts, "initdb");
    if (!r) co_return r.error();
    if (!r->success()) co_return make_error("initdb " + describe_wait_status(r->wait_status));
    co_return Ok{};
}

Status copy_file(const std::string& from, const std::string& to, mode_t mode) {
    auto text = fs::read_file(from);
    if (!text) return text.error();
    return fs::write_file_atomic(to, *text, mode);
}

Status ensure_dir(const std::string& path) {
    if (fs::is_dir(path)) return Ok{};
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
        return make_error("cannot create " + path + ": " + std::strerror(errno));
    return Ok{};
}

}  // namespace

awaitable<Result<Prepared>> prepare_data_dir(Config& cfg, Reaper& reaper) {
    Prepared out;
    auto kind = inspect_data_dir(cfg.pgdata);
    if (!kind) co_return kind.error();
    if (*kind == DataDirKind::foreign)
        co_return make_error(cfg.pgdata +
                             " is not empty and is not a PostgreSQL data directory; refusing to touch it");

    auto bin_major = co_await binaries_major_version(reaper, cfg);
    if (!bin_major) co_return bin_major.error();
    if (*kind == DataDirKind::empty) {
        if (auto st = co_await run_initdb(reaper, cfg); !st) co_return st.error();
        out.initialized = true;
    } else {
        auto major = cluster_major_version(cfg.pgdata);
        if (!major) co_return major.error();
        if (*major != *bin_major)
            co_return make_error("data directory is PostgreSQL " + std::to_string(*major) +
                                 " but the binaries are " + std::to_string(*bin_major));
        log::info("bootstrap", "reusing the existing data directory",
                  {{"pgdata", cfg.pgdata}, {"major", *major}});
    }

    std::string state = cfg.state_dir();
    if (auto st = ensure_dir(state); !st) co_return st.error();
    if (auto st = ensure_dir(state + "/tls"); !st) co_return st.error();

    if (cfg.app_password_file.empty()) cfg.app_password_file = state + "/app.password";
    if (cfg.replication_password_file.empty()) cfg.replication_password_file = state + "/replication.password";
    auto app = fs::read_or_create_secret(cfg.app_password_file);
    if (!app) co_return make_error("app password: " + app.error().message);
    auto repl = fs::read_or_create_secret(cfg.replication_password_file);
    if (!repl) co_return make_error("replication password: " + repl.error().message);
    out.secrets.app = *app;
    out.secrets.replication = *repl;
    if (!cfg.superuser_password_file.empty()) {
        auto su = fs::read_or_create_secret(cfg.superuser_password_file);
        if (!su) co_return make_error("superuser password: " + su.error().message);
        out.secrets.superuser = *su;
    }

    out.tls = {state + "/tls/server.crt", state + "/tls/server.key"};
    if (!cfg.pg_tls_cert.empty()) {
        // Copied so that postgres sees a key with the 0600 mode it insists on,
        // whatever the mounted secret's mode is.
        if (auto st = copy_file(cfg.pg_tls_key, out.tls.key, 0600); !st) co_return st.error();
        if (auto st = copy_file(cfg.pg_tls_cert, out.tls.cert, 0644); !st) co_return st.error();
    } else {
        auto made = ensure_self_signed_cert(out.tls.cert, out.tls.key, cfg.name);
        if (!made) co_return made.error();
        if (*made) log::info("bootstrap", "generated a self-signed TLS certificate", {{"cn", cfg.name}});
    }

    if (auto st = write_pg_files(cfg, out.tls, out.secrets.superuser.has_value()); !st) co_return st.error();
    if (auto st = clear_stale_pid_file(cfg.pgdata); !st) co_return st.error();
    co_return out;
}

awaitable<Status> ensure_roles(PgSession& session, const Secrets& secrets) {
    PGconn* c = session.raw();
    auto verifier = [&](const std::string& password, const char* user) -> Result<std::string> {
        // Hashed here so the plaintext never reaches the server or its logs.
        char* v = PQencryptPasswordConn(c, password.c_str(), user, "scram-sha-256");
        if (!v) return make_error(std::string("cannot hash password: ") + PQerrorMessage(c));
        std::string out = v;
        PQfreemem(v);
        char* lit = PQescapeLiteral(c, out.c_str(), out.size());
        if (!lit) return make_error("cannot quote password");
        std::string quoted = lit;
        PQfreemem(lit);
        return quoted;
    };
    auto app = verifier(secrets.app, "app");
    if (!app) co_return app.error();
    auto repl = verifier(secrets.replication, "streaming_replica");
    if (!repl) co_return repl.error();
    std::string su = "NULL";
    if (secrets.superuser) {
        auto s = verifier(*secrets.superuser, "postgres");
        if (!s) co_return s.error();
        su = *s;
    }

    std::string sql =
        "DO $$ BEGIN\n"
        "  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN CREATE ROLE app; END IF;\n"
        "  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'streaming_replica') THEN\n"
        "    CREATE ROLE streaming_replica; END IF;\n"
        "END $$;\n"
        "ALTER ROLE app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD " +
        *app +
        ";\n"
        "ALTER ROLE streaming_replica LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD " +
        *repl +
        ";\n"
        // What pg_rewind needs from a non-superuser source.
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO streaming_replica;\n"
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO streaming_replica;\n"
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO streaming_replica;\n"
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) "
        "TO streaming_replica;\n"
        "ALTER ROLE postgres PASSWORD " +
        su + ";\n";
    auto r = co_await session.query(sql, kSqlTimeout);
    if (!r) co_return make_error("creating roles: " + r.error().message);

    auto exists = co_await session.query("SELECT 1 FROM pg_database WHERE datname = 'app'", kSqlTimeout);
    if (!exists) co_return exists.error();
    if (PQntuples(exists->get()) == 0) {
        // CREATE DATABASE cannot run inside the multi-statement block above.
        auto made = co_await session.query("CREATE DATABASE app OWNER app", kSqlTimeout);
        if (!made) co_return make_error("creating database app: " + made.error().message);
        log::info("bootstrap", "created database app owned by role app");
    }
    co_return Ok{};
}

}  // namespace im
