// instance-manager: the entrypoint of a PostgreSQL container. main() parses
// the command line and hands over to Daemon; nothing else lives here.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "api/http_server.hpp"
#include "api/status_report.hpp"
#include "bootstrap/helper.hpp"
#include "config.hpp"
#include "controller/controller.hpp"
#include "environment.hpp"
#include "daemon/daemon.hpp"
#include "fs_util.hpp"
#include "log.hpp"
#include "quorum/watchdog.hpp"

namespace {
void usage() {
    std::fputs(
        "usage: instance-manager run [options]          supervise one PostgreSQL instance\n"
        "       instance-manager controller [options]   keep a cluster's roles (one per cluster)\n"
        "       instance-manager status --controller URL | --member NAME=URL ... [--json]\n"
        "       instance-manager switchover --controller URL --to NAME --api-token-file F\n"
        "       instance-manager failover --controller URL --to NAME --force "
        "[--accept-data-loss] --api-token-file F\n"
        "       instance-manager restart --controller URL --member NAME | --all --api-token-file F\n"
        "       instance-manager backup --controller URL [--type full|diff|incr] --api-token-file F\n"
        "       instance-manager backups --controller URL [--json] --api-token-file F\n"
        "       (each with --help)\n"
        "       instance-manager --version\n",
        stderr);
}
}  // namespace

int main(int argc, char** argv) {
    // A peer that closes early (an HTTP client, postgres on our libpq
    // socket) is an EPIPE to handle, not a signal that ends the manager.
    // Children get the default back in spawn().
    std::signal(SIGPIPE, SIG_IGN);
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
        usage();
        return 2;
    }
    if (args[0] == "--version") {
        std::printf("instance-manager %s\n", im::kManagerVersion);
        return 0;
    }
    if (args[0] == "--help" || args[0] == "-h") {
        usage();
        return 0;
    }
    // The write authority's watchdog (quorum/watchdog.hpp), started by the manager.
    if (args[0] == "watchdog") return im::quorum::watchdog_main();
    if (args[0] == "helper") return im::helper_main({args.begin() + 1, args.end()});
    if (args[0] == "controller") return im::controller_main({args.begin() + 1, args.end()});
    if (args[0] == "status") return im::status_main({args.begin() + 1, args.end()});
    if (args[0] == "switchover") return im::switchover_main({args.begin() + 1, args.end()});
    if (args[0] == "failover") return im::failover_main({args.begin() + 1, args.end()});
    if (args[0] == "restart") return im::restart_main({args.begin() + 1, args.end()});
    if (args[0] == "backup") return im::backup_main({args.begin() + 1, args.end()});
    if (args[0] == "backups") return im::backups_main({args.begin() + 1, args.end()});
    if (args[0] != "run") {
        std::fprintf(stderr, "instance-manager: unknown command '%s'\n", args[0].c_str());
        usage();
        return 2;
    }
    im::ParseOutcome outcome;
    auto cfg = im::parse_run_args({args.begin() + 1, args.end()}, &outcome);
    if (!cfg) {
        if (outcome.exit_code != 0)
            std::fprintf(stderr, "instance-manager run: %s\n", cfg.error().message.c_str());
        return outcome.exit_code;
    }
    // The configuration is read (PGDATA is --pgdata's variable): from here
    // on no PG* variable of the caller reaches our own libpq connections.
    im::drop_pg_environment();
    if (::geteuid() == 0) {
        std::fputs(
            "instance-manager run: refusing to run as root; PostgreSQL must run as an unprivileged "
            "user\n",
            stderr);
        return 2;
    }
    im::log::Level level;
    im::log::parse_level(cfg->log_level, level);
    im::log::set_level(level);
    std::optional<std::string> token;
    if (!cfg->api_token_file.empty()) {
        // Validated already, but read again here: a file that changed between is an error too.
        auto secret = im::fs::read_secret(cfg->api_token_file);
        if (!secret) {
            std::fprintf(stderr, "instance-manager run: --api-token-file: %s\n",
                         secret.error().message.c_str());
            return 2;
        }
        token = *secret;
    }

    std::shared_ptr<boost::asio::ssl::context> api_tls;
    if (!cfg->tls_cert.empty()) {
        auto tls = im::make_server_tls(cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca);
        if (!tls) {
            std::fprintf(stderr, "instance-manager run: %s\n", tls.error().message.c_str());
            return 2;
        }
        api_tls = *tls;
    }

    try {
        boost::asio::io_context io(1);
        im::Daemon daemon(io, std::move(*cfg), std::move(token), std::move(api_tls));
        return daemon.run();
    } catch (const std::exception& e) {
        im::log::error("manager", std::string("fatal: ") + e.what());
        return 1;
    }
}
