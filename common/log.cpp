#include "log.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "json_text.hpp"

namespace im::log {
namespace {

// spdlog gives us a locked, flushing stdout sink; the line itself is built
// with nlohmann so that every string is escaped correctly.
std::shared_ptr<spdlog::logger>& sink() {
    static std::shared_ptr<spdlog::logger> logger = [] {
        auto l = spdlog::stdout_logger_mt("instance-manager");
        l->set_pattern("%v");
        l->set_level(spdlog::level::trace);
        l->flush_on(spdlog::level::trace);
        return l;
    }();
    return logger;
}

Level g_level = Level::info;

const char* level_name(Level level) {
    switch (level) {
        case Level::debug:
            return "debug";
        case Level::info:
            return "info";
        case Level::warn:
            return "warn";
        case Level::error:
            return "error";
    }
    return "info";
}

std::string now_rfc3339() {
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03d}Z", tm, static_cast<int>(ms.count()));
}

}  // namespace

void set_level(Level level) { g_level = level; }

bool parse_level(std::string_view text, Level& out) {
    if (text == "debug")
        out = Level::debug;
    else if (text == "info")
        out = Level::info;
    else if (text == "warn" || text == "warning")
        out = Level::warn;
    else if (text == "error")
        out = Level::error;
    else
        return false;
    return true;
}

std::string format_line(Level level, std::string_view component, std::string_view msg,
                        const nlohmann::json& fields) {
    nlohmann::ordered_json line;
    line["time"] = now_rfc3339();
    line["level"] = level_name(level);
    line["logger"] = component;
    line["msg"] = msg;
    if (fields.is_object()) {
        for (auto it = fields.begin(); it != fields.end(); ++it) {
            if (!line.contains(it.key())) line[it.key()] = it.value();
        }
    }
    // Invalid UTF-8 (postgres can print anything) is replaced, never thrown.
    return json_text(line);
}

void write(Level level, std::string_view component, std::string_view msg,
           const nlohmann::json& fields) {
    if (static_cast<int>(level) < static_cast<int>(g_level)) return;
    sink()->info(format_line(level, component, msg, fields));
}

}  // namespace im::log
