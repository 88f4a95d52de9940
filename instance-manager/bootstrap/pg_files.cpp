#include "bootstrap/pg_files.hpp"

#include <pwd.h>
#include <unistd.h>

#include <sstream>

#include "fs_util.hpp"

namespace im {

std::string conf_quote(const std::string& v) {
    std::string out = "'";
    for (char c : v) {
        if (c == '\'')
            out += "''";
        else if (c == '\\')
            out += "\\\\";  // postgres reads a backslash in quotes as an escape
        else
            out.push_back(c);
    }
    return out + "'";
}

std::string render_managed_conf(const Config& cfg, const TlsFiles& tls,
                                const std::string& role_settings) {
    std::ostringstream o;
    o << "# Written by instance-manager at every start; do not edit.\n"
         "# Your own settings belong in postgresql.conf or ALTER SYSTEM.\n"
         "# The cluster's parameters (--pg-parameters-file) come first: the\n"
         "# manager's own settings below always win.\n"
      << "include_if_exists = " << conf_quote(kParametersConfName) << "\n"
      << "listen_addresses = '*'\n"
      << "port = " << cfg.pg_port << "\n"
      << "unix_socket_directories = " << conf_quote(cfg.socket_dir) << "\n"
      << "cluster_name = " << conf_quote(cfg.name)
      << "\n"
      // The manager restarts postgres itself and counts it; postgres's own
      // crash restart would hide crashes from status and metrics.
      << "restart_after_crash = off\n"
      << "hot_standby = on\n"
      // pg_rewind needs hint bits WAL-logged (checksums also do it).
      << "wal_log_hints = on\n"
      << "wal_level = replica\n"
      << "max_wal_senders = 10\n"
      << "max_replication_slots = 10\n"
      // pg_rewind reads the target's own WAL back to the last common
      // checkpoint: keep enough of it around after a demotion's checkpoints.
      << "wal_keep_size = '512MB'\n"
      // A slot whose member is gone for long must not fill the disk: beyond
      // this PostgreSQL invalidates it (the member is then cloned again).
      << "max_slot_wal_keep_size = "
      << (cfg.max_slot_wal_keep_mb < 0 ? std::string("-1")
                                       : "'" + std::to_string(cfg.max_slot_wal_keep_mb) + "MB'")
      << "\n"
      << "password_encryption = 'scram-sha-256'\n"
      << "ssl = on\n"
      << "ssl_cert_file = " << conf_quote(tls.cert) << "\n"
      << "ssl_key_file = " << conf_quote(tls.key) << "\n"
      << "ssl_min_protocol_version = 'TLSv1.2'\n"
      // stderr is captured by the manager and re-emitted as JSON lines.
      << "logging_collector = off\n"
      << "log_destination = 'stderr'\n"
      << "log_line_prefix = '[%p] '\n"
      << role_settings;
    return o.str();
}

std::string render_hba(bool superuser_over_tcp, const std::string& extra_rules) {
    std::ostringstream o;
    o << "# Written by instance-manager at every start; do not edit.\n"
         "# TYPE   DATABASE     USER               ADDRESS  METHOD\n"
      // The manager itself, as the OS user that runs postgres.
      << "local    all          postgres                    peer map=" << kIdentMap << "\n"
      << "local    app          app                         scram-sha-256\n"
      // Replication and pg_rewind always over TLS.
      << "hostssl  replication  streaming_replica  all      scram-sha-256\n"
      << "hostssl  postgres     streaming_replica  all      scram-sha-256\n"
      << "host     app          app                all      scram-sha-256\n";
    if (superuser_over_tcp)
        o << "host     all          postgres           all      scram-sha-256\n";
    // The roles the manager owns go no further: no extra rule below can let
    // the replication role in without TLS, or the superuser over TCP when it
    // is not switched on.
    o << "host     all          streaming_replica  all      reject\n";
    if (!superuser_over_tcp)
        o << "host     all          postgres           all      reject\n";
    if (!extra_rules.empty())
        o << "# Extra rules (--pg-hba-file)\n" << extra_rules;
    o << "host     all          all                all      reject\n"
      << "local    all          all                         reject\n";
    return o.str();
}

std::string render_ident(const std::string& os_user) {
    return std::string("# Written by instance-manager at every start; do not edit.\n") + kIdentMap +
           " " + os_user + " postgres\n";
}

Status ensure_include(const std::string& pgdata) {
    std::string path = fs::join(pgdata, "postgresql.conf");
    auto text = fs::read_file(path, 16 << 20);
    if (!text) return text.error();
    if (text->find(kIncludeLine) != std::string::npos) return Ok{};
    std::string updated = *text;
    if (!updated.empty() && updated.back() != '\n') updated.push_back('\n');
    updated +=
        "\n# Settings managed by instance-manager (last, so they win over the lines above).\n";
    updated += kIncludeLine;
    updated += "\n";
    return fs::write_file_atomic(path, updated, 0600);
}

Status write_pg_files(const Config& cfg, const TlsFiles& tls, bool superuser_over_tcp,
                      const std::string& role_settings, const std::string& extra_hba) {
    std::string os_user = "postgres";
    if (passwd* pw = ::getpwuid(::geteuid())) os_user = pw->pw_name;
    if (auto st = fs::write_file_atomic(fs::join(cfg.pgdata, kManagedConfName),
                                        render_managed_conf(cfg, tls, role_settings));
        !st)
        return st;
    if (auto st = fs::write_file_atomic(fs::join(cfg.pgdata, "pg_hba.conf"),
                                        render_hba(superuser_over_tcp, extra_hba));
        !st)
        return st;
    if (auto st =
            fs::write_file_atomic(fs::join(cfg.pgdata, "pg_ident.conf"), render_ident(os_user));
        !st)
        return st;
    return ensure_include(cfg.pgdata);
}

}  // namespace im
