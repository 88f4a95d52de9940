#include "bootstrap/role_setup.hpp"

#include "pg_session.hpp"

namespace im {

namespace {

// A SCRAM verifier, quoted as an SQL literal: the plaintext password never
// reaches the server or its logs.
Result<std::string> verifier_literal(PGconn* c, const std::string& password, const char* user) {
    char* v = PQencryptPasswordConn(c, password.c_str(), user, "scram-sha-256");
    if (!v) return make_error(std::string("cannot hash password: ") + PQerrorMessage(c));
    std::string hashed = v;
    PQfreemem(v);
    char* lit = PQescapeLiteral(c, hashed.c_str(), hashed.size());
    if (!lit) return make_error("cannot quote password");
    std::string quoted = lit;
    PQfreemem(lit);
    return quoted;
}

Result<PgResultPtr> exec(PGconn* c, const std::string& sql) {
    PgResultPtr r(PQexec(c, sql.c_str()));
    auto st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        std::string msg = PQerrorMessage(c);
        while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
        return make_error(msg);
    }
    return r;
}

}  // namespace

Status ensure_roles(PGconn* c, const RoleSecrets& secrets) {
    auto app = verifier_literal(c, secrets.app, "app");
    if (!app) return app.error();
    auto repl = verifier_literal(c, secrets.replication, "streaming_replica");
    if (!repl) return repl.error();
    std::string su = "NULL";
    if (secrets.superuser) {
        auto s = verifier_literal(c, *secrets.superuser, "postgres");
        if (!s) return s.error();
        su = *s;
    }
    std::string sql =
        "DO $$ BEGIN\n"
        "  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN CREATE ROLE app; END "
        "IF;\n"
        "  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'streaming_replica') THEN\n"
        "    CREATE ROLE streaming_replica; END IF;\n"
        "END $$;\n"
        "ALTER ROLE app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
        "PASSWORD " +
        *app +
        ";\n"
        "ALTER ROLE streaming_replica LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE "
        "PASSWORD " +
        *repl +
        ";\n"
        // What pg_rewind needs from a non-superuser source.
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO "
        "streaming_replica;\n"
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO streaming_replica;\n"
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO streaming_replica;\n"
        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) "
        "TO streaming_replica;\n"
        "ALTER ROLE postgres PASSWORD " +
        su + ";\n";
    if (auto r = exec(c, sql); !r) return make_error("creating roles: " + r.error().message);
    auto exists = exec(c, "SELECT 1 FROM pg_database WHERE datname = 'app'");
    if (!exists) return exists.error();
    if (PQntuples(exists->get()) == 0) {
        // CREATE DATABASE cannot run inside the multi-statement block above.
        if (auto r = exec(c, "CREATE DATABASE app OWNER app"); !r)
            return make_error("creating database app: " + r.error().message);
    }
    return Ok{};
}

}  // namespace im
