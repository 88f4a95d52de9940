#pragma once
// Standby configuration: the conninfo a replica uses to reach its primary
// (TLS required, password only through a passfile), its slot, and the
// settings written into the managed configuration file.
#include <map>
#include <string>

#include "conninfo.hpp"
#include "result.hpp"

namespace im {

// A physical slot name for an instance: lower case, [a-z0-9_], at most 63.
std::string slot_name_for(const std::string& instance_name);

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

// What status may show of an upstream: host, port, application_name.
ConninfoMap public_upstream(const std::string& conninfo);

}  // namespace im
