#pragma once
// Bringing a data directory to the point where postgres can start: initdb
// for an empty one, reuse of an existing cluster as it is, refusal of
// anything else. Then, once postgres runs as a primary, the roles and the
// app database (idempotent, on every start).
#include <optional>
#include <string>

#include "asio.hpp"
#include "config.hpp"
#include "pg_files.hpp"
#include "pg_session.hpp"
#include "process.hpp"
#include "result.hpp"

namespace im {

struct Secrets {
    std::string app;
    std::string replication;
    std::optional<std::string> superuser;
};

struct Prepared {
    bool initialized = false;  // initdb ran in this start
    Secrets secrets;
    TlsFiles tls;
};

// The default password-file locations are filled into cfg here.
awaitable<Result<Prepared>> prepare_data_dir(Config& cfg, Reaper& reaper);

// Creates or updates the app and streaming_replica roles, the app database
// and the superuser password. Safe to run again; primary only.
awaitable<Status> ensure_roles(PgSession& session, const Secrets& secrets);

}  // namespace im
