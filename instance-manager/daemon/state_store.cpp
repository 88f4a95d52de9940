#include "daemon/state_store.hpp"

#include <nlohmann/json.hpp>

#include "fs_util.hpp"
#include "json_text.hpp"

namespace im {

Result<PersistentState> StateStore::load() const {
    if (!fs::exists(path_)) return PersistentState{};
    auto text = fs::read_file(path_);
    if (!text) return text.error();
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return make_error("corrupt state file " + path_);
    PersistentState s;
    try {
        s.term = j.value("term", uint64_t{0});
        s.last_command = j.value("last_command", std::string());
        s.fenced = j.value("fenced", false);
        s.primary_conninfo = j.value("primary_conninfo", std::string());
        s.members = j.value("members", std::vector<std::string>());
        auto sync = parse_sync_spec(j.value("synchronous", nlohmann::json()));
        if (!sync) return make_error("corrupt state file " + path_ + ": " + sync.error().message);
        s.synchronous = *sync;
        s.member_urls = j.value("member_urls", std::map<std::string, std::string>());
        s.write_term = j.value("write_term", uint64_t{0});
        s.managed_slots = j.value("managed_slots", std::vector<std::string>());
    } catch (const nlohmann::json::exception& e) {
        return make_error("corrupt state file " + path_ + ": " + e.what());
    }
    return s;
}

Status StateStore::save(const PersistentState& s) const {
    nlohmann::json j = {{"term", s.term},
                        {"last_command", s.last_command},
                        {"fenced", s.fenced},
                        {"primary_conninfo", s.primary_conninfo},
                        {"members", s.members},
                        {"synchronous", to_json(s.synchronous)},
                        {"member_urls", s.member_urls},
                        {"write_term", s.write_term},
                        {"managed_slots", s.managed_slots}};
    return fs::write_file_atomic(path_, json_text(j, 2) + "\n", 0600);
}

std::string command_key(const std::string& command, uint64_t term, const nlohmann::json& body) {
    nlohmann::json rest = body.is_object() ? body : nlohmann::json::object();
    rest.erase("term");
    return command + ":" + std::to_string(term) + ":" + json_text(rest);
}

TermVerdict judge_term(const PersistentState& s, const std::string& key, uint64_t term) {
    if (term < s.term) return TermVerdict::stale;
    if (term == s.term && s.last_command == key) return TermVerdict::repeat;
    return TermVerdict::fresh;
}

}  // namespace im
