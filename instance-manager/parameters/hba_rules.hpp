#pragma once
// Extra client-authentication rules (--pg-hba-file): pg_hba.conf lines the
// manager places after its own (which keep their precedence for
// replication, the manager and the roles it owns) and before its final
// rejects. Checked here line by line; the server's own reading
// (pg_hba_file_rules) follows before a reload (parameter_watch.cpp).
#include <string>
#include <string_view>
#include <vector>

#include "result.hpp"

namespace im::parameters {

// The rules, one normalized line each (fields separated by one space), or
// every problem of the file in one message, line by line.
Result<std::vector<std::string>> parse_hba_rules(std::string_view text);

// The lines as they go into pg_hba.conf.
std::string render_hba_rules(const std::vector<std::string>& rules);

}  // namespace im::parameters
