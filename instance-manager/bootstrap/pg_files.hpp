#pragma once
// The PostgreSQL files the manager owns: its settings file (included from
// postgresql.conf, which is otherwise never rewritten), pg_hba.conf and
// pg_ident.conf. Rendering is pure; writing is atomic.
#include <string>

#include "config.hpp"
#include "result.hpp"

namespace im {

inline constexpr const char* kManagedConfName = "instance-manager.conf";
inline constexpr const char* kIncludeLine = "include_if_exists = 'instance-manager.conf'";
// The cluster's parameters as last accepted (parameters/parameter_watch.hpp).
inline constexpr const char* kParametersConfName = "instance-manager-parameters.conf";
inline constexpr const char* kIdentMap = "instance-manager";

struct TlsFiles {
    std::string cert;
    std::string key;
};

// A value quoted for postgresql.conf ('' doubles a quote).
std::string conf_quote(const std::string& v);

std::string render_managed_conf(const Config& cfg, const TlsFiles& tls,
                                const std::string& role_settings = "");
// `extra_rules`: the --pg-hba-file lines, after the manager's own rules and
// before its final rejects.
std::string render_hba(bool superuser_over_tcp, const std::string& extra_rules = "");
std::string render_ident(const std::string& os_user);

// Appends the include line to postgresql.conf once (and only that line).
Status ensure_include(const std::string& pgdata);

// Writes the managed conf (with role settings: standby, synchronous),
// pg_hba.conf and pg_ident.conf.
Status write_pg_files(const Config& cfg, const TlsFiles& tls, bool superuser_over_tcp,
                      const std::string& role_settings, const std::string& extra_hba);

}  // namespace im
