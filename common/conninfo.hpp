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

}  // namespace im
