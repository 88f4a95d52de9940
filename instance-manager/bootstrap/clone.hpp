#pragma once
// Making a replica from its primary: the replication slot on the primary,
// then pg_basebackup into the empty data directory, with progress.
#include <functional>
#include <string>

#include "asio.hpp"
#include "config.hpp"
#include "process.hpp"
#include "result.hpp"

namespace im {

// The http_status of a clone whose primary did not answer at all (503: not
// now; nothing was written, worth trying again later). No other step of a
// clone answers 503.
inline constexpr int kPrimaryUnreachable = 503;

// Creates the physical slot on the upstream over a replication connection
// (reserving WAL from now on); an existing slot is fine.
awaitable<Status> ensure_upstream_slot(const std::string& replication_conninfo,
                                       const std::string& slot);

// Runs pg_basebackup (WAL streamed, fast checkpoint, using the slot) into
// cfg.pgdata; on_progress gets 0..100.
awaitable<Status> run_basebackup(Reaper& reaper, const Config& cfg,
                                 const std::string& replication_conninfo, const std::string& slot,
                                 std::function<void(int)> on_progress);

// A new replica of `upstream` in the empty cfg.pgdata: slot, base backup,
// standby.signal; the primary's own manager state that came along is removed.
awaitable<Status> clone_replica(const Config& cfg, Reaper& reaper, const std::string& upstream,
                                const std::string& replication_password,
                                std::function<void(int)> on_progress);

// Beside the data directory (which must stay empty for pg_basebackup) while
// a clone runs, removed once the copy is complete and marked a standby.
std::string clone_marker_path(const std::string& pgdata);

// The source's own manager state that a copy of its data directory brings
// along (its term, fence and roles, its TLS files): this instance starts its
// own. The password files stay (the same roles, the same passwords).
void drop_copied_state(const Config& cfg);

// A clone that a kill interrupted leaves an unusable copy, maybe without
// standby.signal yet (started, it would be a second primary). When the
// marker says so, the copy's contents are removed so that it is cloned
// again; the marker stays until that clone is complete.
Status clear_interrupted_clone(const Config& cfg);

// "  12345/67890 kB (18%), 0/1 tablespace" -> 18; -1 when the line has none.
int parse_basebackup_progress(std::string_view line);

}  // namespace im
