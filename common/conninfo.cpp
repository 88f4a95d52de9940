#include "conninfo.hpp"

#include <libpq-fe.h>

namespace im {

std::string conninfo_quote(const std::string& value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\'' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('\'');
    return out;
}

Result<ConninfoMap> parse_conninfo(const std::string& conninfo) {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
    if (!opts) {
        std::string msg = err ? err : "out of memory";
        if (err) PQfreemem(err);
        while (!msg.empty() && msg.back() == '\n') msg.pop_back();
        return make_error("bad conninfo: " + msg);
    }
    ConninfoMap out;
    for (PQconninfoOption* o = opts; o->keyword; ++o)
        if (o->val && *o->val) out[o->keyword] = o->val;
    PQconninfoFree(opts);
    return out;
}

std::string build_conninfo(const ConninfoMap& m) {
    std::string out;
    for (const auto& [k, v] : m) {
        if (!out.empty()) out += ' ';
        out += k + "=" + conninfo_quote(v);
    }
    return out;
}

void pin_client_files(ConninfoMap& m) {
    for (const char* key : {"passfile", "sslcert", "sslkey", "sslrootcert", "sslcrl"})
        if (!m.count(key)) m[key] = kNoSuchFile;
}

}  // namespace im
