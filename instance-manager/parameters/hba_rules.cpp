#include "parameters/hba_rules.hpp"
#include "parameters/file_lines.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace im::parameters {

namespace {
// Fields as pg_hba.conf splits them: blanks between, a double-quoted field
// may hold blanks, '#' starts a comment outside quotes.
Result<std::vector<std::string>> split_fields(std::string_view line) {
    std::vector<std::string> out;
    std::string cur;
    bool quoted = false, any = false;
    for (char c : line) {
        if (quoted) {
            cur.push_back(c);
            if (c == '"') quoted = false;
            continue;
        }
        if (c == '#') break;
        if (std::isspace(static_cast<unsigned char>(c))) {
            if (any) out.push_back(cur);
            cur.clear();
            any = false;
            continue;
        }
        if (c == '"') quoted = true;
        cur.push_back(c);
        any = true;
    }
    if (quoted) return make_error("unterminated double quote");
    if (any) out.push_back(cur);
    return out;
}

bool ip_address(const std::string& s, bool* v6) {
    unsigned char buf[16];
    if (::inet_pton(AF_INET, s.c_str(), buf) == 1) {
        *v6 = false;
        return true;
    }
    if (::inet_pton(AF_INET6, s.c_str(), buf) == 1) {
        *v6 = true;
        return true;
    }
    return false;
}

bool host_name(const std::string& s) {
    if (s.empty() || s.size() > 253) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
    });
}

// ADDRESS, or ADDRESS MASK (two fields): how many fields it took, 0 when bad.
size_t address_fields(const std::vector<std::string>& f, size_t at, std::string& why) {
    if (at >= f.size()) {
        why = "no address";
        return 0;
    }
    const std::string& a = f[at];
    if (a == "all" || a == "samehost" || a == "samenet") return 1;
    if (auto slash = a.find('/'); slash != std::string::npos) {
        bool v6 = false;
        std::string ip = a.substr(0, slash), bits = a.substr(slash + 1);
        if (!ip_address(ip, &v6) || bits.empty() || bits.size() > 3 ||
            !std::all_of(bits.begin(), bits.end(), ::isdigit) ||
            std::stoi(bits) > (v6 ? 128 : 32)) {
            why = "bad address " + a;
            return 0;
        }
        return 1;
    }
    bool v6 = false;
    if (ip_address(a, &v6)) {
        bool mask_v6 = false;
        if (at + 1 < f.size() && ip_address(f[at + 1], &mask_v6) && mask_v6 == v6) return 2;
        why = "address " + a + " needs a CIDR length or a mask";
        return 0;
    }
    if (host_name(a)) return 1;
    why = "bad address " + a;
    return 0;
}
}  // namespace

Result<std::vector<std::string>> parse_hba_rules(std::string_view text) {
    static const std::set<std::string> kTypes = {"local",      "host",        "hostssl",
                                                 "hostnossl",  "hostgssenc",  "hostnogssenc"};
    static const std::set<std::string> kMethods = {
        "trust", "reject", "scram-sha-256", "md5", "password", "gss", "sspi",
        "ident", "peer",   "ldap",          "radius", "cert",  "pam", "bsd"};
    std::vector<std::string> out;
    LineErrors errors;
    auto fail = [&](size_t line, const std::string& why) { errors.add(line, why); };
    const auto lines = split_lines(text);
    for (size_t number = 1; number <= lines.size(); ++number) {
        std::string_view line = lines[number - 1];
        if (!line.empty() && line.back() == '\\') {
            fail(number, "continuation lines are not supported; one rule per line");
            continue;
        }
        auto fields = split_fields(line);
        if (!fields) {
            fail(number, fields.error().message);
            continue;
        }
        const auto& f = *fields;
        if (f.empty()) continue;
        if (f[0].rfind("include", 0) == 0) {
            fail(number, "include directives are not followed; list the rules here");
            continue;
        }
        if (!kTypes.count(f[0])) {
            fail(number, "unknown connection type " + f[0]);
            continue;
        }
        if (f.size() < 4) {
            fail(number, "expected TYPE DATABASE USER [ADDRESS] METHOD [OPTIONS]");
            continue;
        }
        size_t method_at = 3;
        if (f[0] != "local") {
            std::string why;
            size_t n = address_fields(f, 3, why);
            if (n == 0) {
                fail(number, why);
                continue;
            }
            method_at = 3 + n;
        }
        if (method_at >= f.size()) {
            fail(number, "no authentication method");
            continue;
        }
        const std::string& method = f[method_at];
        if (!kMethods.count(method)) {
            fail(number, "unknown authentication method " + method);
            continue;
        }
        if (method == "peer" && f[0] != "local") {
            fail(number, "peer authentication is for local connections only");
            continue;
        }
        bool options_ok = true;
        for (size_t i = method_at + 1; i < f.size(); ++i)
            if (f[i].find('=') == std::string::npos || f[i].front() == '=') {
                fail(number, "option " + f[i] + " is not NAME=VALUE");
                options_ok = false;
                break;
            }
        if (!options_ok) continue;
        std::string rule;
        for (const auto& field : f) rule += (rule.empty() ? "" : " ") + field;
        out.push_back(std::move(rule));
    }
    if (!errors.empty()) return make_error(errors.text());
    return out;
}

std::string render_hba_rules(const std::vector<std::string>& rules) {
    std::string out;
    for (const auto& r : rules) out += r + "\n";
    return out;
}

}  // namespace im::parameters
