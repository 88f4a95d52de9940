#pragma once
// `run --restore-from-backup`: the cluster starts from a backup instead of
// initdb. Where this instance would initdb (an empty data directory, and it
// is the bootstrap instance or no primary answers), the data directory is
// restored from the pgBackRest repository, set to replay to the target and
// to promote there; postgres is then started as for any other start. A
// marker beside the data directory records the request and how far it got,
// so that a kill, or a target recovery cannot reach, is never taken for a
// finished restore, and a restored directory is reused (a restarted pod).
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "asio.hpp"
#include "config.hpp"
#include "process.hpp"
#include "result.hpp"

namespace im::backup {

// <pgdata>.restore.json
std::string restore_mark_path(const Config& cfg);

struct RestoreMark {
    nlohmann::json request;  // backup set and target, as restore_request()
    std::string stage;       // "copying", "recovering", "done"
};
nlohmann::json restore_request(const Config& cfg);
Result<std::optional<RestoreMark>> read_restore_mark(const Config& cfg);
Status set_restore_stage(const Config& cfg, const std::string& stage);
Status set_restore_stage(const Config& cfg, const std::string& stage,
                         const nlohmann::json& request);

// Checks the request against the repository (nothing is written when it
// cannot be met), then restores into cfg.pgdata, which must be empty or
// hold an unfinished restore (cleared first).
awaitable<Status> restore_data_dir(const Config& cfg, Reaper& reaper, bool clear_first);

// A new replica's data in the empty cfg.pgdata from the repository's newest
// backup (`pgbackrest restore --type=standby`: standby.signal, and the WAL
// since the backup from the archive). False, with nothing written, when
// the repository holds no backup of the stanza.
awaitable<Result<bool>> restore_standby(const Config& cfg, Reaper& reaper);

// Removes what pgbackrest restore wrote into postgresql.auto.conf for its
// own recovery (without_restore_settings); a no-op when it holds none.
Status scrub_restore_settings(const std::string& pgdata);

// The spool and lock directories beside the data directory.
Status ensure_work_dirs(const Config& cfg);

// `pgbackrest info --output=json` for the configured stanza.
// `stanza`: another than the configured one (the source of a restore).
awaitable<Result<std::string>> repository_info_json(const Config& cfg, Reaper& reaper,
                                                   std::string stanza = {});

}  // namespace im::backup
