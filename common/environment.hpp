#pragma once
// What the caller's environment may steer. libpq reads PG* variables
// (PGPASSWORD beats a passfile, PGSSLMODE, PGHOST...) and postgres, initdb,
// pg_basebackup and pg_rewind are libpq clients or read PGDATA: none of that
// may come from whoever started the manager, only from its configuration.
#include <string>
#include <string_view>
#include <vector>

namespace im {

// Variables a child inherits from the manager: the locale (initdb and
// postgres take their defaults from it), the time zone, where programs are
// found, and where temporary files go. Everything else, PG* first of all, is
// dropped.
bool inherited_by_children(std::string_view name);

// The environment of a child: the inherited variables of `environ` plus
// `extra` (KEY=VALUE, overriding).
std::vector<std::string> child_environment(const std::vector<std::string>& extra);

// Removes every PG* variable from this process's environment, so that the
// manager's own libpq connections see only the conninfo they are given.
// Call once at start-up, after the configuration is read (PGDATA is a flag's
// variable) and before any libpq use.
void drop_pg_environment();

}  // namespace im
