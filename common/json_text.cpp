#include "json_text.hpp"

#include <set>
#include <vector>

namespace im {

Result<nlohmann::json> parse_json_object(std::string_view text) {
    // nlohmann's lexer takes a NUL for the end of input (for C strings) and
    // would parse only what comes before it.
    if (text.find('\0') != std::string_view::npos) return make_error("NUL byte in JSON body");
    std::vector<std::set<std::string>> keys;  // of each object being parsed
    bool duplicate = false;
    auto watch = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using E = nlohmann::json::parse_event_t;
        if (event == E::object_start) {
            keys.emplace_back();
        } else if (event == E::object_end) {
            if (!keys.empty()) keys.pop_back();
        } else if (event == E::key && !keys.empty() && parsed.is_string()) {
            if (!keys.back().insert(parsed.get<std::string>()).second) duplicate = true;
        }
        return true;
    };
    // Strict (the default): trailing data and invalid UTF-8 are parse errors.
    auto j = nlohmann::json::parse(text.begin(), text.end(), watch, false);
    if (j.is_discarded()) return make_error("malformed JSON body");
    if (duplicate) return make_error("a key appears twice in the JSON body");
    if (!j.is_object()) return make_error("the body must be a JSON object");
    return j;
}

}  // namespace im
