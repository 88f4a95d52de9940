#pragma once
// What the manager must remember across its own restarts, kept in
// <pgdata>/instance-manager/state.json and replaced atomically (fsync'd):
// the highest accepted term, whether the instance is fenced, and the
// upstream of a replica (never its password).
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "bootstrap/replication_config.hpp"
#include "result.hpp"

namespace im {

struct PersistentState {
    uint64_t term = 0;
    std::string last_command;  // command_key() of the last accepted command
    bool fenced = false;
    std::string primary_conninfo;         // empty: not a replica (or upstream unknown)
    std::vector<std::string> members;     // cluster members (slots on a primary)
    std::optional<SyncSpec> synchronous;  // a primary's synchronous replication
    // name -> manager API URL of every member, from the controller's
    // promote: where a primary asks for its grants (quorum/write_keeper.hpp).
    std::map<std::string, std::string> member_urls;
    // The term this instance was made primary with under the write
    // authority (0: never, or a replica since). Non-zero: postgres is never
    // writable here without a majority's grants for it (the start gate).
    uint64_t write_term = 0;
    // Physical slots this manager keeps for members (created, or adopted as a
    // member's): the only ones it ever drops. A slot someone else made stays.
    std::vector<std::string> managed_slots;
};

class StateStore {
  public:
    explicit StateStore(std::string path) : path_(std::move(path)) {}
    // A missing file is a fresh state; a corrupt one is an error (never guessed).
    Result<PersistentState> load() const;
    Status save(const PersistentState& s) const;
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

// What makes a command the same as another: its name, term and the rest of
// its body ("follow:3:{...}"), so that a repeat within one term is
// recognised but a different follow or replication setting is not.
std::string command_key(const std::string& command, uint64_t term, const nlohmann::json& body);

// The term rule for commands: lower than accepted -> refused; the same
// command (same key) again -> repeat (answer without acting); otherwise new.
enum class TermVerdict { stale, repeat, fresh };
TermVerdict judge_term(const PersistentState& s, const std::string& key, uint64_t term);

}  // namespace im
