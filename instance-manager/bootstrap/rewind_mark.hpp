#pragma once
// A mark beside the data directory (outside it: pg_rewind copies the
// source's files over everything inside) for as long as a rejoin rewrites the
// data directory: from before pg_rewind or a re-clone begins until the
// instance is a complete standby again. A kill anywhere in between leaves the
// mark, and with it a manager that comes back fenced, never starts postgres
// on a half-rewound directory, and never runs initdb over a directory a
// re-clone had cleared: it clones again from the upstream the mark names.
#include <optional>
#include <string>

#include "config.hpp"
#include "result.hpp"

namespace im {

std::string rewind_mark_path(const Config& cfg);
// Written and fsync'd (file and directory) before the data directory changes.
// `upstream` is the conninfo being rejoined (no secrets).
Status set_rewind_mark(const Config& cfg, const std::string& upstream);
// The upstream the interrupted rejoin was for; nullopt when there is no mark.
Result<std::optional<std::string>> read_rewind_mark(const Config& cfg);
Status clear_rewind_mark(const Config& cfg);

}  // namespace im
