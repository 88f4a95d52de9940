#include "bootstrap/helper.hpp"

#include <unistd.h>

#include <cstdio>

#include "fs_util.hpp"
#include "pg_session.hpp"
#include "bootstrap/role_setup.hpp"
#include "bootstrap/tls_cert.hpp"

namespace im {

const std::string& self_exe() {
    static const std::string path = [] {
        char buf[4096];
        ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
        return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("/proc/self/exe");
    }();
    return path;
}

SpawnOptions helper_command(std::vector<std::string> args) {
    SpawnOptions opts;
    opts.argv = {self_exe(), "helper"};
    opts.argv.insert(opts.argv.end(), args.begin(), args.end());
    opts.parent_death_signal = SIGTERM;
    // Key generation and a few statements on the local socket: seconds. A
    // hung job must not hold the start-up forever.
    opts.deadline = std::chrono::minutes(2);
    return opts;
}

namespace {

int fail(const std::string& msg) {
    std::fprintf(stderr, "%s\n", msg.c_str());
    return 1;
}

int make_cert(const std::vector<std::string>& a) {
    if (a.size() != 4) return fail("usage: helper make-cert CERT KEY COMMON_NAME");
    auto made = ensure_self_signed_cert(a[1], a[2], a[3]);
    if (!made) return fail(made.error().message);
    std::printf("%s\n", *made ? "generated a self-signed TLS certificate"
                              : "TLS certificate already present");
    return 0;
}

int roles(const std::vector<std::string>& a) {
    if (a.size() != 4 && a.size() != 5)
        return fail(
            "usage: helper ensure-roles CONNINFO APP_FILE REPLICATION_FILE [SUPERUSER_FILE]");
    RoleSecrets secrets;
    auto app = fs::read_secret(a[2]);
    if (!app) return fail("app password: " + app.error().message);
    auto repl = fs::read_secret(a[3]);
    if (!repl) return fail("replication password: " + repl.error().message);
    secrets.app = *app;
    secrets.replication = *repl;
    if (a.size() == 5) {
        auto su = fs::read_secret(a[4]);
        if (!su) return fail("superuser password: " + su.error().message);
        secrets.superuser = *su;
    }
    PgConnPtr conn(PQconnectdb(a[1].c_str()));
    if (PQstatus(conn.get()) != CONNECTION_OK)
        return fail(std::string("cannot connect: ") + PQerrorMessage(conn.get()));
    if (auto st = ensure_roles(conn.get(), secrets); !st) return fail(st.error().message);
    return 0;
}

}  // namespace

int helper_main(const std::vector<std::string>& args) {
    if (args.empty()) return fail("usage: instance-manager helper make-cert|ensure-roles ...");
    if (args[0] == "make-cert") return make_cert(args);
    if (args[0] == "ensure-roles") return roles(args);
    return fail("unknown helper: " + args[0]);
}

}  // namespace im
