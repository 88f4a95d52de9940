#pragma once
// Bringing a data directory to the point where postgres can start: initdb
// for an empty one, reuse of an existing cluster as it is, refusal of
// anything else; then passwords, TLS files and the managed configuration.
#include <optional>
#include <string>

#include "asio.hpp"
#include "config.hpp"
#include "pg_files.hpp"
#include "process.hpp"
#include "result.hpp"

namespace im {

struct Prepared {
    bool initialized = false;  // initdb ran in this start
    bool superuser_enabled = false;
    TlsFiles tls;
};

// The default password-file locations are filled into cfg here.
awaitable<Result<Prepared>> prepare_data_dir(Config& cfg, Reaper& reaper);

// Runs the ensure-roles helper against the local postgres (see role_setup.hpp).
awaitable<Status> setup_roles(Reaper& reaper, const Config& cfg, const std::string& local_conninfo);

}  // namespace im
