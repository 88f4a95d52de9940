#pragma once
// Reading fields of JSON that came from elsewhere (a member's status, the
// Kubernetes API, an error answer) without exceptions: a missing field or
// one of another type reads as empty, never as a throw in a loop.
#include <nlohmann/json.hpp>
#include <string>

#include "json_text.hpp"

namespace im {

// The string at `key`, or "" when `j` is not an object, the key is missing
// or its value is not a string.
inline std::string json_string(const nlohmann::json& j, const char* key) {
    if (!j.is_object()) return std::string();
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A value as text: a string as it is, anything else as its JSON.
inline std::string json_as_text(const nlohmann::json& v) {
    return v.is_string() ? v.get<std::string>() : json_text(v);
}

}  // namespace im
