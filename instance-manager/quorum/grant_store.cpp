#include "quorum/grant_store.hpp"

#include <nlohmann/json.hpp>

#include "fs_util.hpp"
#include "json_text.hpp"

namespace im::quorum {

Result<StoredAuthority> GrantStore::load() const {
    if (!fs::exists(path_)) return StoredAuthority{};
    auto text = fs::read_file(path_);
    if (!text) return text.error();
    auto j = parse_json_object(*text);
    if (!j) return make_error("corrupt authority file " + path_ + ": " + j.error().message);
    StoredAuthority s;
    try {
        s.grants.promised_term = j->at("promised_term").get<uint64_t>();
        s.grants.promised_to = j->at("promised_to").get<std::string>();
        s.grants.granted_term = j->at("granted_term").get<uint64_t>();
        s.grants.granted_to = j->at("granted_to").get<std::string>();
        s.membership.version = j->at("membership_version").get<uint64_t>();
        s.membership.names = j->at("members").get<std::vector<std::string>>();
        if (auto it = j->find("durability"); it != j->end()) {
            auto d = authority::parse_durability(*it);
            if (!d) return make_error("corrupt authority file " + path_ + ": bad durability record");
            s.grants.durability = *d;
        }
        if (auto it = j->find("max_ttl_ms"); it != j->end())
            s.max_ttl = std::chrono::milliseconds(it->get<int64_t>());
    } catch (const nlohmann::json::exception& e) {
        return make_error("corrupt authority file " + path_ + ": " + e.what());
    }
    return s;
}

Status GrantStore::save(const StoredAuthority& s) const {
    nlohmann::json j = {{"promised_term", s.grants.promised_term},
                        {"promised_to", s.grants.promised_to},
                        {"granted_term", s.grants.granted_term},
                        {"granted_to", s.grants.granted_to},
                        {"durability", authority::to_json(s.grants.durability)},
                        {"membership_version", s.membership.version},
                        {"members", s.membership.names},
                        {"max_ttl_ms",
                         std::chrono::duration_cast<std::chrono::milliseconds>(s.max_ttl).count()}};
    return fs::write_file_atomic(path_, json_text(j, 2) + "\n", 0600);
}

}  // namespace im::quorum
