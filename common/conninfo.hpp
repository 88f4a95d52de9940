#pragma once
// libpq connection strings, parsed and built with libpq's own rules.
#include <map>
#include <string>

#include "result.hpp"

namespace im {

using ConninfoMap = std::map<std::string, std::string>;

// Parses with PQconninfoParse; only the keys that were given are returned.
Result<ConninfoMap> parse_conninfo(const std::string& conninfo);
// key='value' pairs, quoted as libpq expects.
std::string build_conninfo(const ConninfoMap& m);
std::string conninfo_quote(const std::string& value);

// A path no file can ever have (nothing lives below a device node): libpq
// reads what stat() cannot find (ENOTDIR) as "no such file" and goes on.
inline constexpr const char* kNoSuchFile = "/dev/null/none";

// Names every client file libpq would otherwise look for in the user's home
// (~/.pgpass, ~/.postgresql/postgresql.crt, .key, root.crt, root.crl): the
// ones not given in `m` become kNoSuchFile. A manager started as another
// user's HOME, or with a stale client certificate there, connects the same.
void pin_client_files(ConninfoMap& m);

}  // namespace im
