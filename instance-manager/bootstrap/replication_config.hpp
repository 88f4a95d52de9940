#pragma once
// Standby configuration: the conninfo a replica uses to reach its primary
// (TLS required, password only through a passfile), its slot, and the
// settings written into the managed configuration file.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "conninfo.hpp"
#include "result.hpp"

namespace im {

// A physical slot name for an instance: lower case, [a-z0-9_], at most 63.
std::string slot_name_for(const std::string& instance_name);
// Two members whose slot names are the same ("a-b" and "a_b"), as a message
// naming them; nothing when every member has a slot of its own. Such a pair
// would share one slot on the primary, each holding back or stealing the
// other's WAL position, so it is refused wherever members are given.
std::optional<std::string> slot_name_collision(const std::vector<std::string>& names);

struct ReplicationAuth {
    std::string passfile;  // holds streaming_replica's password
    std::string ca_file;   // empty: sslmode=require; else verify-full against it
};

// The upstream conninfo a replica (and pg_basebackup, pg_rewind) uses:
// the controller's host/port plus user, passfile, TLS mode and
// application_name. A password in the given conninfo is refused: secrets
// never travel inline.
Result<std::string> replication_conninfo(const std::string& upstream,
                                         const std::string& application_name,
                                         const ReplicationAuth& auth);

// Lines for the managed configuration of a replica.
std::string render_standby_settings(const std::string& conninfo, const std::string& slot);

// A passfile line for streaming_replica on any host (':' and '\' escaped).
std::string render_passfile(const std::string& password);

// Synchronous replication on a primary: a commit waits until `number` of
// `standbys` (instance names, i.e. application names) confirmed its WAL;
// method "any" is a quorum, "first" a priority list.
struct SyncSpec {
    std::string method = "any";
    unsigned number = 1;
    std::vector<std::string> standbys;
};
// Parses {"method", "number", "standbys"}; null means synchronous replication off.
Result<std::optional<SyncSpec>> parse_sync_spec(const nlohmann::json& j);
nlohmann::json to_json(const std::optional<SyncSpec>& spec);
// The synchronous_standby_names value: ANY 1 ("a", "b").
std::string synchronous_standby_names(const SyncSpec& spec);

// Where timeline `tli` ends in a timeline history file's text (the
// upstream's TIMELINE_HISTORY), or nullopt when `tli` is not among its parents.
std::optional<uint64_t> timeline_switchpoint(const std::string& history, uint32_t tli);
// The last line of a timeline history file: the timeline this one branched
// from and where (nullopt when there is none).
std::optional<std::pair<uint32_t, uint64_t>> last_fork(const std::string& history);

// The segment part (last 16 hex digits) of the WAL file name holding the
// byte just before `lsn`, for segments of `segment_size` bytes.
std::string wal_segment_suffix(uint64_t lsn, uint64_t segment_size);

// What status may show of an upstream: host, port, application_name.
ConninfoMap public_upstream(const std::string& conninfo);

}  // namespace im
