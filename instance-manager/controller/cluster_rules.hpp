#pragma once
// The controller's decisions as pure functions of what the members report:
// which member is the primary, who may replace it, who follows whom.
// Unit-tested without processes; controller.cpp carries them out.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace im {

// One member as the controller last saw it (from its /v1/status).
struct MemberView {
    std::string name;
    std::string url;   // the manager's API
    std::string host;  // from the URL: where its postgres listens too
    bool reachable = false;
    std::string role;
    bool ready = false;
    bool running = false;  // postgres
    bool standby = false;  // has a replica's data (also when fenced)
    uint64_t term = 0;
    uint32_t timeline = 0;
    std::string system_identifier;
    uint64_t received_lsn = 0;
    uint64_t replayed_lsn = 0;
    uint64_t current_lsn = 0;  // primary: pg_current_wal_lsn
    bool streaming = false;
    std::string upstream_host;
    std::string upstream_port;
    int pg_port = 0;
    uint64_t lag_bytes = 0;
    std::string synchronous_standby_names;       // primary
    std::vector<std::string> synchronous_peers;  // primary: replicas now in sync_state "sync"
    std::map<std::string, std::string> sync_states;  // primary: replica -> pg_stat_replication.sync_state
    // The write authority (status "authority"): the term it promised, the
    // term it is primary of (0: none, or a primary from before the cluster
    // ran under the write authority), whether it holds a majority's grants,
    // and whether it belongs to a membership yet.
    uint64_t promised_term = 0;
    uint64_t granted_term = 0;  // the term of the last grant it gave (0: it never granted)
    std::string granted_to;     // and to whom
    uint64_t write_term = 0;
    bool may_write = false;
    bool joined = false;
    // How long before answering the member's last check of postgres began
    // (-1: unknown): its positions are at least that old.
    int64_t check_age_ms = -1;
    // A stopped former primary: where its own branch began (timeline, LSN).
    std::optional<std::pair<uint32_t, uint64_t>> former_fork;
    // The rolling restart: when its postgres started (a restart changes it),
    // and the cluster-file settings waiting for a restart.
    std::string pg_start_time;
    std::vector<std::string> pending_restart;
    // Of those, settings hot standby needs at least the primary's value of,
    // lowered and raised by the pending version.
    std::vector<std::string> lowered, raised;
    // The cluster file's version it applied, once its pending settings for
    // it are known ("" before, or without a file).
    std::string parameters_version;
    nlohmann::json status;                       // as reported
};

// Fills a view from a member's status document.
MemberView member_view(const std::string& name, const std::string& url,
                       const nlohmann::json& status);

// The writable primary: reachable, role primary and ready, and holding the
// write right if it is primary of a term (a primary from before the write
// authority has none to hold); among several, the one with the highest term
// (the others are stale and get demoted).
std::optional<size_t> find_primary(const std::vector<MemberView>& members);

// The cluster's system identifier: the one most reachable members report.
std::string cluster_system_identifier(const std::vector<MemberView>& members);

// Who replaces a lost primary: a reachable, running replica of the cluster,
// ordered by received LSN, replayed LSN, priority (higher first), name.
// With `only` (the synchronous standbys), no one else.
std::optional<size_t> pick_candidate(const std::vector<MemberView>& members,
                                     const std::string& system_identifier,
                                     const std::map<std::string, int>& priority,
                                     const std::optional<std::set<std::string>>& only);

// Whether a replica streams (or tries to stream) from `primary`'s postgres.
bool follows(const MemberView& replica, const MemberView& primary);

// The conninfo others use to reach a member's postgres (no secrets).
std::string conninfo_of(const MemberView& m);

// The synchronous setting for `primary`: `method` ("any", "first") n among
// the other members of `membership` that may be promoted (priority >= 0),
// listed by priority then name; null when n is 0 or none is left. With `streaming` (preferred durability): n is capped at how many
// of them stream from the primary, null when none does.
nlohmann::json synchronous_spec(const std::vector<std::string>& membership,
                                const std::string& primary, const std::string& method, unsigned n,
                                const std::map<std::string, int>& priority,
                                const std::optional<std::set<std::string>>& streaming);

}  // namespace im
