#pragma once
// The cluster's own PostgreSQL parameters (--pg-parameters-file): one file
// of `name = value` lines, the same on every member (a ConfigMap). Parsing
// and rendering are pure; whether a name and value are valid is the
// server's own judgement (parameter_watch.cpp asks `postgres -C`), except
// for the parameters the manager sets itself, which are refused here.
#include <string>
#include <string_view>
#include <vector>

#include "result.hpp"

namespace im::parameters {

struct Parameter {
    std::string name;   // lower case, as PostgreSQL folds it
    std::string value;  // unquoted
};

// postgresql.conf's syntax: `name = value` or `name value`, '#' comments,
// values bare or in single quotes ('' or \' for a quote). Every problem of
// the file in one message, line by line; the parameters sorted by name.
// Refused: include directives, a name twice, and managed_parameter names.
Result<std::vector<Parameter>> parse_parameters(std::string_view text);

// The parameters the manager writes or relies on (instance-manager.conf,
// replication, archiving, the durability it promises): a reason, or empty
// when the name is the user's.
std::string managed_parameter(std::string_view name);

// The applied file: `name = 'value'` lines (every value quoted, which
// PostgreSQL accepts for every type).
std::string render_parameters(const std::vector<Parameter>& params);

// `-c name=value` arguments for `postgres -C`, which checks names, values
// and units as a server start would.
std::vector<std::string> check_arguments(const std::vector<Parameter>& params);

// Hot standby refuses to run with less of these than its primary has: a
// decrease must reach the primary first (controller/rollout.hpp).
bool hot_standby_sensitive(std::string_view name);

}  // namespace im::parameters
