#include "authority/durability.hpp"

#include <algorithm>
#include <tuple>

namespace im::authority {

std::vector<QuorumSet> switching_sets(const std::vector<QuorumSet>& current,
                                      const std::optional<QuorumSet>& next) {
    std::vector<QuorumSet> out = current;
    if (!next) return out;
    if (std::find(out.begin(), out.end(), *next) == out.end()) out.push_back(*next);
    return out;
}

bool switch_complete(const std::optional<QuorumSet>& next, const std::vector<QuorumSet>& sets,
                     uint64_t since_lsn,
                     const std::vector<std::pair<std::string, uint64_t>>& flushed) {
    auto past = [&](const std::string& name) {
        for (const auto& [standby, lsn] : flushed)
            if (standby == name && lsn >= since_lsn) return true;
        return false;
    };
    if (!next) {
        for (const auto& s : sets)
            for (const auto& name : s.standbys)
                if (!past(name)) return false;
        return true;
    }
    unsigned n = 0;
    for (const auto& name : next->standbys) n += past(name) ? 1 : 0;
    return n >= next->number;
}

namespace {
const Reading* find_reading(const std::vector<Reading>& readings, const std::string& name) {
    for (const auto& r : readings)
        if (r.member == name) return &r;
    return nullptr;
}
std::string lsn_hex(uint64_t lsn) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32),
                  static_cast<unsigned>(lsn & 0xffffffffu));
    return buf;
}
}  // namespace

SyncChoice choose_candidate(const DurabilityRecord& record, const std::vector<Reading>& readings) {
    SyncChoice out;
    // The most advanced reading that counts: of the sets' members when the
    // record names sets, of everyone otherwise (an asynchronous failover
    // takes the most advanced member it can).
    const Reading* top = nullptr;
    auto consider = [&](const Reading& r) {
        if (!top || std::tie(r.timeline, r.lsn) > std::tie(top->timeline, top->lsn)) top = &r;
    };
    for (const auto& set : record.sets) {
        size_t read = 0;
        for (const auto& name : set.standbys)
            if (const Reading* r = find_reading(readings, name)) {
                ++read;
                consider(*r);
            }
        // R + W > N: some reader holds every commit acknowledged under it.
        if (read + set.number <= set.standbys.size()) {
            out.reason = "synchronous quorum not met: " + std::to_string(read) + " of " +
                         std::to_string(set.standbys.size()) + " standbys of " +
                         describe({set}) + " answered, " +
                         std::to_string(set.standbys.size() + 1 - set.number) +
                         " are needed to find every acknowledged commit";
            return out;
        }
    }
    if (record.sets.empty())
        for (const auto& r : readings)
            if (r.eligible) consider(r);
    if (!top) {
        out.reason = "no member answered";
        return out;
    }
    out.min_lsn = top->lsn;
    const Reading* best = nullptr;
    for (const auto& r : readings) {
        if (!r.eligible || r.timeline != top->timeline || r.lsn < top->lsn) continue;
        if (!best || std::tie(r.priority, r.lsn, best->member) >
                         std::tie(best->priority, best->lsn, r.member))
            best = &r;
    }
    if (!best) {
        out.reason = "the most advanced standby " + top->member + " (" + lsn_hex(top->lsn) +
                     ", timeline " + std::to_string(top->timeline) +
                     ") may not be promoted, and no eligible member holds as much";
        return out;
    }
    out.ok = true;
    out.candidate = best->member;
    return out;
}

DurabilityRecord newest_record(const std::vector<DurabilityRecord>& records) {
    DurabilityRecord out;
    for (const auto& r : records)
        if (r.newer_than(out)) out = r;
    return out;
}

nlohmann::json to_json(const DurabilityRecord& r) {
    nlohmann::json sets = nlohmann::json::array();
    for (const auto& s : r.sets) sets.push_back({{"number", s.number}, {"standbys", s.standbys}});
    return {{"term", r.term}, {"version", r.version}, {"sets", sets}};
}

std::optional<DurabilityRecord> parse_durability(const nlohmann::json& j) {
    if (!j.is_object() || j.size() != 3) return std::nullopt;
    auto term = j.find("term");
    auto version = j.find("version");
    auto sets = j.find("sets");
    if (term == j.end() || !term->is_number_unsigned() || version == j.end() ||
        !version->is_number_unsigned() || sets == j.end() || !sets->is_array())
        return std::nullopt;
    DurabilityRecord r;
    r.term = term->get<uint64_t>();
    r.version = version->get<uint64_t>();
    for (const auto& s : *sets) {
        if (!s.is_object() || s.size() != 2) return std::nullopt;
        auto n = s.find("number");
        auto names = s.find("standbys");
        if (n == s.end() || !n->is_number_unsigned() || n->get<uint64_t>() < 1 ||
            n->get<uint64_t>() > 100 || names == s.end() || !names->is_array() || names->empty())
            return std::nullopt;
        QuorumSet q;
        q.number = static_cast<unsigned>(n->get<uint64_t>());
        for (const auto& name : *names) {
            if (!name.is_string() || name.get<std::string>().empty()) return std::nullopt;
            q.standbys.push_back(name.get<std::string>());
        }
        std::sort(q.standbys.begin(), q.standbys.end());
        q.standbys.erase(std::unique(q.standbys.begin(), q.standbys.end()), q.standbys.end());
        r.sets.push_back(std::move(q));
    }
    return r;
}

DurabilityRecord durability_from(const nlohmann::json& j) {
    return parse_durability(j).value_or(DurabilityRecord{});
}

std::string describe(const std::vector<QuorumSet>& sets) {
    if (sets.empty()) return "asynchronous";
    std::string out;
    for (const auto& s : sets) {
        std::string names;
        for (const auto& n : s.standbys) names += (names.empty() ? "" : ", ") + n;
        out += (out.empty() ? "" : " and ") + std::to_string(s.number) + " of (" + names + ")";
    }
    return out;
}

}  // namespace im::authority
