#include "environment.hpp"

#include <cstdlib>
#include <string_view>

extern char** environ;

namespace im {

namespace {
std::string_view name_of(std::string_view entry) { return entry.substr(0, entry.find('=')); }
}  // namespace

bool inherited_by_children(std::string_view name) {
    for (std::string_view keep : {"PATH", "LANG", "LANGUAGE", "TZ", "TZDIR", "TMPDIR"})
        if (name == keep) return true;
    return name.substr(0, 3) == "LC_";
}

std::vector<std::string> child_environment(const std::vector<std::string>& extra) {
    std::vector<std::string> out;
    for (char** e = environ; e && *e; ++e) {
        std::string_view entry(*e);
        auto name = name_of(entry);
        if (!inherited_by_children(name)) continue;
        bool overridden = false;
        for (auto& o : extra)
            if (name_of(o) == name) overridden = true;
        if (!overridden) out.emplace_back(entry);
    }
    out.insert(out.end(), extra.begin(), extra.end());
    return out;
}

void drop_pg_environment() {
    std::vector<std::string> names;
    for (char** e = environ; e && *e; ++e) {
        auto name = name_of(*e);
        if (name.substr(0, 2) == "PG") names.emplace_back(name);
    }
    for (auto& n : names) ::unsetenv(n.c_str());
}

}  // namespace im
