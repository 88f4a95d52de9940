// Synchronous durability's pure pieces (authority/durability.hpp): the
// failover rule over every small case, the record's switching order, and
// the record kept by members and confirmed to the primary.
#include <catch2/catch.hpp>

#include "authority/durability.hpp"
#include "authority/member_authority.hpp"
#include "authority/write_right.hpp"
#include "bootstrap/replication_config.hpp"

using namespace im::authority;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {
std::vector<std::string> names(unsigned n) {
    std::vector<std::string> out;
    for (unsigned i = 0; i < n; ++i) out.push_back("s" + std::to_string(i));
    return out;
}
bool in(unsigned mask, unsigned i) { return (mask >> i) & 1u; }
unsigned popcount(unsigned mask) { return static_cast<unsigned>(__builtin_popcount(mask)); }
}  // namespace

TEST_CASE("the synchronous failover never promotes a member missing an acknowledged commit, and "
          "promotes whenever R + k > N lets it",
          "[durability]") {
    // N standbys, k acknowledgements; a commit at LSN 100 acknowledged by the
    // members in `acked` (|acked| >= k): they hold 100 or a little more; the
    // others lag. The controller reads the members in `read`; `eligible`
    // may be promoted. Every combination for N up to 5.
    size_t cases = 0, promoted = 0;
    for (unsigned n = 1; n <= 5; ++n) {
        auto s = names(n);
        for (unsigned k = 1; k <= n; ++k) {
            DurabilityRecord rec{3, 1, {QuorumSet{k, s}}};
            const unsigned all = 1u << n;
            for (unsigned acked = 0; acked < all; ++acked) {
                if (popcount(acked) < k) continue;
                // LSN shapes: bit i set: member i is one step further on
                // (ahead among the holders, further behind among the others).
                const unsigned shapes = all;
                for (unsigned shape = 0; shape < shapes; ++shape)
                    for (unsigned read = 0; read < all; ++read)
                        for (unsigned eligible = 0; eligible < all; ++eligible) {
                            std::vector<Reading> readings;
                            for (unsigned i = 0; i < n; ++i) {
                                if (!in(read, i)) continue;
                                uint64_t lsn = in(acked, i) ? 100 + in(shape, i)
                                                            : 99 - in(shape, i);
                                readings.push_back(
                                    Reading{s[i], 1, lsn, in(eligible, i), static_cast<int>(i % 2)});
                            }
                            auto c = choose_candidate(rec, readings);
                            ++cases;
                            const bool quorum = popcount(read) + k > n;
                            if (!quorum) {
                                REQUIRE_FALSE(c.ok);
                                continue;
                            }
                            uint64_t top = 0;
                            bool top_eligible_exists = false;
                            for (const auto& r : readings) top = std::max(top, r.lsn);
                            for (const auto& r : readings)
                                if (r.eligible && r.lsn == top) top_eligible_exists = true;
                            REQUIRE(c.ok == top_eligible_exists);
                            if (!c.ok) continue;
                            ++promoted;
                            const unsigned idx =
                                static_cast<unsigned>(std::stoi(c.candidate.substr(1)));
                            // The safety claim: the candidate holds the commit.
                            REQUIRE(in(acked, idx));
                            REQUIRE(in(eligible, idx));
                            REQUIRE(c.min_lsn == top);
                        }
            }
        }
    }
    CHECK(cases > 2000000);  // 2,758,920: every case above was run
    CHECK(promoted > 0);
}

TEST_CASE("a record with several sets asks the failover to satisfy each", "[durability]") {
    // Switching from ANY 1 (a, b, c) to ANY 1 (a, b): a commit acknowledged by
    // c alone under the old set must still be found.
    DurabilityRecord rec{4, 2, {QuorumSet{1, {"a", "b", "c"}}, QuorumSet{1, {"a", "b"}}}};
    std::vector<Reading> ab = {{"a", 1, 90, true, 0}, {"b", 1, 95, true, 0}};
    auto c = choose_candidate(rec, ab);
    CHECK_FALSE(c.ok);
    CHECK_THAT(c.reason, Catch::Contains("2 of 3"));
    ab.push_back({"c", 1, 120, true, 0});
    c = choose_candidate(rec, ab);
    REQUIRE(c.ok);
    CHECK(c.candidate == "c");
    CHECK(c.min_lsn == 120);
}

TEST_CASE("the most advanced reading decides, by timeline first; priority among equals",
          "[durability]") {
    DurabilityRecord rec{4, 1, {QuorumSet{1, {"a", "b"}}}};
    // b is ahead but may not be promoted: nobody else holds as much.
    auto c = choose_candidate(rec, {{"a", 2, 90, true, 0}, {"b", 2, 95, false, 0}});
    CHECK_FALSE(c.ok);
    CHECK_THAT(c.reason, Catch::Contains("b"));
    // Equal LSNs: the higher priority wins, then the name.
    c = choose_candidate(rec, {{"a", 2, 95, true, 0}, {"b", 2, 95, true, 5}});
    CHECK(c.candidate == "b");
    c = choose_candidate(rec, {{"a", 2, 95, true, 0}, {"b", 2, 95, true, 0}});
    CHECK(c.candidate == "a");
    // A higher timeline outranks a larger LSN on an older one (the old
    // primary's standby holds its unacknowledged WAL past the fork).
    c = choose_candidate(rec, {{"a", 3, 10, true, 0}, {"b", 2, 95, true, 0}});
    CHECK(c.candidate == "a");
    c = choose_candidate(rec, {{"a", 3, 10, false, 0}, {"b", 2, 95, true, 0}});
    CHECK_FALSE(c.ok);
    // Asynchronous: the most advanced eligible member, no quorum asked.
    c = choose_candidate(DurabilityRecord{}, {{"a", 2, 10, true, 0}, {"b", 2, 95, false, 0}});
    REQUIRE(c.ok);
    CHECK(c.candidate == "a");
    CHECK_FALSE(choose_candidate(DurabilityRecord{}, {}).ok);
}

TEST_CASE("switching sets: the old stay until k of the new flushed past the switch", "[durability]") {
    QuorumSet old_set{1, {"a", "b", "c"}}, next{1, {"a", "b"}};
    CHECK(switching_sets({old_set}, next) == std::vector<QuorumSet>{old_set, next});
    CHECK(switching_sets({old_set}, old_set) == std::vector<QuorumSet>{old_set});
    // To asynchronous too: what the old set acknowledged must still be found.
    CHECK(switching_sets({old_set}, std::nullopt) == std::vector<QuorumSet>{old_set});
    CHECK(switching_sets({}, next) == std::vector<QuorumSet>{next});
    CHECK_FALSE(switch_complete(next, {old_set}, 100, {{"a", 99}, {"c", 200}}));
    CHECK(switch_complete(next, {old_set}, 100, {{"a", 99}, {"b", 100}}));
    CHECK_FALSE(switch_complete(QuorumSet{2, {"a", "b"}}, {}, 100, {{"a", 100}}));
    // To asynchronous: only once every standby of the old sets is past.
    CHECK_FALSE(switch_complete(std::nullopt, {old_set}, 100, {{"a", 100}, {"b", 100}}));
    CHECK(switch_complete(std::nullopt, {old_set}, 100, {{"a", 100}, {"b", 101}, {"c", 100}}));
}

TEST_CASE("records: newest by term then version; JSON strict on input, tolerant on answers",
          "[durability]") {
    DurabilityRecord a{3, 9, {}}, b{4, 1, {QuorumSet{1, {"x"}}}};
    CHECK(b.newer_than(a));
    CHECK(newest_record({a, b, DurabilityRecord{}}) == b);
    auto j = to_json(b);
    REQUIRE(parse_durability(j));
    CHECK(*parse_durability(j) == b);
    j["extra"] = 1;
    CHECK_FALSE(parse_durability(j));
    CHECK_FALSE(parse_durability(nlohmann::json::parse(
        R"({"term": 1, "version": 1, "sets": [{"number": 0, "standbys": ["a"]}]})")));
    CHECK_FALSE(parse_durability(nlohmann::json::parse(
        R"({"term": 1, "version": 1, "sets": [{"number": 1, "standbys": []}]})")));
    CHECK(durability_from(nlohmann::json("junk")) == DurabilityRecord{});
    CHECK(describe({}) == "asynchronous");
    CHECK(describe(b.sets) == "1 of (x)");
}

TEST_CASE("members keep the holder's record with its grant; the primary counts confirmations",
          "[durability]") {
    MemberParams params{1, seconds(10)};
    MemberAuthority m(params);
    Instant t{milliseconds(1000)};
    GrantRequest req{"h1", 2, seconds(1), 1, 1, DurabilityRecord{2, 1, {QuorumSet{1, {"h2"}}}}};
    auto d = m.on_grant(req, t);
    REQUIRE(d.reply.ok);
    REQUIRE(d.persist);  // fsync'd before the answer confirms it
    CHECK(d.persist->durability.version == 1);
    CHECK(d.reply.durability_version == 1);
    // A renewal with the same record needs no fsync; a record of another
    // term than the request's is not kept.
    d = m.on_grant(req, t + milliseconds(10));
    CHECK_FALSE(d.persist);
    req.durability = DurabilityRecord{1, 7, {}};
    d = m.on_grant(req, t + milliseconds(20));
    CHECK(d.reply.durability_version == 1);
    CHECK(m.durable().durability.term == 2);
    // Promises report it.
    auto p = m.on_promise(PromiseRequest{3, "c", 1}, t + milliseconds(30), 0);
    CHECK(p.reply.durability.version == 1);
    // A refused grant stores nothing.
    req.term = 2;
    req.durability = DurabilityRecord{2, 2, {}};
    d = m.on_grant(req, t + milliseconds(40));
    CHECK_FALSE(d.reply.ok);
    CHECK(m.durable().durability.version == 1);

    WriteRight w("h1", 5, Membership{1, {"h1", "h2", "h3"}}, WriteRightParams{seconds(1)}, 10);
    w.continue_record(DurabilityRecord{4, 3, {QuorumSet{1, {"h2", "h3"}}}});
    CHECK(w.record().term == 5);
    CHECK(w.record().version == 1);  // a new term starts its own versions
    auto r = w.begin_round(t);
    REQUIRE(r.durability);
    CHECK(r.durability->sets.size() == 1);
    GrantAnswer ok{true, seconds(1), 5, 5, r.seq, 1, true};
    w.on_answer("h1", ok);
    CHECK(w.recorded_version() == 0);
    w.on_answer("h2", ok);
    CHECK(w.recorded_version() == 1);
    w.set_record({});
    CHECK(w.record().version == 2);
    w.set_record({});
    CHECK(w.record().version == 2);  // unchanged sets: the same record
    CHECK(w.recorded_version() == 1);
    // The same term after a restart goes on from the stored version.
    WriteRight again("h1", 5, Membership{1, {"h1", "h2", "h3"}}, WriteRightParams{seconds(1)}, 99);
    again.continue_record(w.record());
    CHECK(again.record().version == 2);
    // A member holding that version with other sets (sent before a restart
    // that rebuilt the number) confirms nothing, and ours goes above it.
    auto r2 = again.begin_round(t);
    again.on_answer("h2", GrantAnswer{true, seconds(1), 5, 5, r2.seq, 2, false});
    again.on_answer("h3", GrantAnswer{true, seconds(1), 5, 5, r2.seq, 4, false});
    CHECK(again.recorded_version() == 0);
    CHECK(again.record().version == 5);
    auto r3 = again.begin_round(t + milliseconds(400));
    REQUIRE(r3.durability);
    CHECK(r3.durability->version == 5);
    // And members tell a match from a mere version.
    MemberAuthority fresh(params);
    GrantRequest q{"h1", 5, seconds(1), 1, 1, DurabilityRecord{5, 3, {}}};
    CHECK(fresh.on_grant(q, t).reply.durability_match);
    q.durability = DurabilityRecord{5, 3, {QuorumSet{1, {"h2"}}}};  // same version, other sets
    auto mismatch = fresh.on_grant(q, t + milliseconds(1)).reply;
    CHECK_FALSE(mismatch.durability_match);
    CHECK(mismatch.durability_version == 3);
}

TEST_CASE("a former primary's fork comes from its newest timeline history", "[durability]") {
    // Timeline 3's history: it branched from 2 at 0/5000100 (2 from 1 before).
    const std::string history =
        "1\t0/3000060\tno recovery target specified\n"
        "\n"
        "2\t0/5000100\tno recovery target specified\n";
    auto fork = im::last_fork(history);
    REQUIRE(fork);
    CHECK(fork->first == 2u);
    CHECK(fork->second == 0x5000100u);
    CHECK_FALSE(im::last_fork("# only a comment\n"));
    CHECK_FALSE(im::last_fork(""));
}
