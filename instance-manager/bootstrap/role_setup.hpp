#pragma once
// The roles and database every instance gets: app (login, owns database app,
// nothing more), streaming_replica (replication plus what pg_rewind needs),
// and the superuser's password (or none). Idempotent; primary only.
#include <libpq-fe.h>

#include <optional>
#include <string>

#include "result.hpp"

namespace im {

struct RoleSecrets {
    std::string app;
    std::string replication;
    std::optional<std::string> superuser;  // nullopt: no password, no TCP login
};

// Blocking libpq: this runs in a short-lived helper process, never in the loop.
Status ensure_roles(PGconn* conn, const RoleSecrets& secrets);

}  // namespace im
