#pragma once
// One logger for the whole process: JSON lines on stdout with time, level,
// logger (the component) and msg, plus optional structured fields.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace im::log {

enum class Level { debug, info, warn, error };

void set_level(Level level);
bool parse_level(std::string_view text, Level& out);

void write(Level level, std::string_view component, std::string_view msg,
           const nlohmann::json& fields = nlohmann::json::object());

inline void debug(std::string_view c, std::string_view m,
                  const nlohmann::json& f = nlohmann::json::object()) {
    write(Level::debug, c, m, f);
}
inline void info(std::string_view c, std::string_view m,
                 const nlohmann::json& f = nlohmann::json::object()) {
    write(Level::info, c, m, f);
}
inline void warn(std::string_view c, std::string_view m,
                 const nlohmann::json& f = nlohmann::json::object()) {
    write(Level::warn, c, m, f);
}
inline void error(std::string_view c, std::string_view m,
                  const nlohmann::json& f = nlohmann::json::object()) {
    write(Level::error, c, m, f);
}

// Builds the JSON line without writing it (unit tests use this).
std::string format_line(Level level, std::string_view component, std::string_view msg,
                        const nlohmann::json& fields);

}  // namespace im::log
