// The write authority's pure pieces: member promises and grants, the
// primary's write right, the proposer's promotion round and its policy.
#include <catch2/catch.hpp>

#include "authority/clock_bounds.hpp"
#include "authority/member_authority.hpp"
#include "authority/promotion.hpp"
#include "authority/write_right.hpp"

using namespace im::authority;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {
Instant at(int64_t ms) { return Instant{milliseconds(ms)}; }
Membership three() { return Membership{1, {"h1", "h2", "h3"}}; }
PromiseRequest promise(uint64_t term, const std::string& proposer) {
    return PromiseRequest{term, proposer, 1};
}
GrantRequest grant(const std::string& holder, uint64_t term, milliseconds ttl, uint64_t seq = 1) {
    return GrantRequest{holder, term, ttl, 1, seq, std::nullopt};
}
MemberParams params() { return MemberParams{1, seconds(10)}; }
}  // namespace

TEST_CASE("clock bounds round towards safety", "[authority]") {
    CHECK(shrink_to_own(seconds(3), 0.01) < seconds(3));
    CHECK(shrink_to_own(seconds(3), 0.01) >= Duration(2940594));  // 3s * 0.99/1.01
    CHECK(stretch_to_own(seconds(3), 0.01) > Duration(3060606));  // 3s * 1.01/0.99
    CHECK(real_to_own(milliseconds(500), 0.01) >= Duration(505000));
    CHECK(real_to_own(milliseconds(500), 0.01) <= Duration(505001));
    CHECK(shrink_to_own(Duration(-5), 0.01) == Duration(0));
    CHECK(stretch_to_own(Duration(0), 0.01) == Duration(0));
}

TEST_CASE("a member promises a higher term, durably, and refuses a lower one", "[authority]") {
    MemberAuthority m(params());
    auto d = m.on_promise(promise(3, "c1"), at(0), 77);
    REQUIRE(d.reply.ok);
    REQUIRE(d.persist);  // persisted before the answer
    CHECK(d.persist->promised_term == 3);
    CHECK(d.persist->promised_to == "c1");
    CHECK(d.reply.received_lsn == 77);
    CHECK(d.reply.grant_remaining == Duration(0));

    auto again = m.on_promise(promise(3, "c1"), at(10), 0);  // a retry: idempotent
    CHECK(again.reply.ok);
    CHECK_FALSE(again.persist);

    auto other = m.on_promise(promise(3, "c2"), at(20), 0);  // same term, other proposer
    CHECK_FALSE(other.reply.ok);
    CHECK(other.reply.promised_term == 3);
    auto lower = m.on_promise(promise(2, "c2"), at(20), 0);
    CHECK_FALSE(lower.reply.ok);
    CHECK(lower.reply.promised_term == 3);
}

TEST_CASE("a promise reports how long the member's grants still run", "[authority]") {
    MemberAuthority m(params());
    REQUIRE(m.on_grant(grant("h1", 1, milliseconds(3000)), at(1000)).reply.ok);
    auto d = m.on_promise(promise(2, "c1"), at(2000), 0);
    REQUIRE(d.reply.ok);
    CHECK(d.reply.grant_remaining == milliseconds(2000));
    // Promised term 2: the old holder's renewal is refused, telling it why.
    auto renew = m.on_grant(grant("h1", 1, milliseconds(3000)), at(2100));
    CHECK_FALSE(renew.reply.ok);
    CHECK(renew.reply.promised_term == 2);
}

TEST_CASE("grants: one holder per term, renewals without fsync, never a lower term", "[authority]") {
    MemberAuthority m(params());
    auto first = m.on_grant(grant("h1", 1, milliseconds(3000)), at(0));
    REQUIRE(first.reply.ok);
    CHECK(first.persist);  // holder and term changed
    CHECK(first.reply.granted == milliseconds(3000));
    CHECK(first.reply.term == 1);
    auto renewal = m.on_grant(grant("h1", 1, milliseconds(3000), 2), at(1000));
    CHECK(renewal.reply.ok);
    CHECK_FALSE(renewal.persist);
    CHECK(renewal.reply.seq == 2);
    CHECK_FALSE(m.on_grant(grant("h2", 1, milliseconds(3000)), at(1000)).reply.ok);
    CHECK_FALSE(m.on_grant(grant("h2", 0, milliseconds(3000)), at(1000)).reply.ok);
    // A higher term for another holder: only once the old grant is out of
    // use (its end plus F on the member's clock), whoever asks.
    CHECK_FALSE(m.on_grant(grant("h2", 2, milliseconds(3000)), at(1500)).reply.ok);
    CHECK_FALSE(m.on_grant(grant("h2", 2, milliseconds(3000)), at(4200)).reply.ok);  // F not over
    REQUIRE(m.in_use_until());
    CHECK(*m.in_use_until() == at(4000) + real_to_own(kFencingBound, kDefaultRho));
    auto newer = m.on_grant(grant("h2", 2, milliseconds(3000)), at(4300));
    REQUIRE(newer.reply.ok);
    REQUIRE(newer.persist);
    CHECK(newer.persist->promised_term == 2);
    CHECK(newer.persist->promised_to.empty());
    CHECK_FALSE(m.on_grant(grant("h1", 1, milliseconds(3000)), at(4400)).reply.ok);
    CHECK(m.grant_remaining(at(5300)) == milliseconds(2000));
    // A shorter renewal never shortens the grant.
    CHECK(m.on_grant(grant("h2", 2, milliseconds(500)), at(5300)).reply.ok);
    CHECK(m.grant_remaining(at(5300)) == milliseconds(2000));
}

TEST_CASE("a grant is clamped to the member's longest ttl", "[authority]") {
    MemberAuthority m(MemberParams{1, seconds(2)});
    auto d = m.on_grant(grant("h1", 1, milliseconds(5000)), at(0));
    CHECK(d.reply.granted == seconds(2));
}

TEST_CASE("a restarted member assumes a grant of its longest ttl just ran", "[authority]") {
    DurableGrantState s{4, "c1", 4, "h2", {}};
    auto m = MemberAuthority::restore(MemberParams{1, seconds(10)}, s, at(100));
    CHECK(m.grant_remaining(at(100)) == seconds(10));
    CHECK_FALSE(m.on_grant(grant("h3", 4, milliseconds(1000)), at(200)).reply.ok);
    CHECK(m.on_grant(grant("h2", 4, milliseconds(1000)), at(200)).reply.ok);
    auto p = m.on_promise(promise(4, "c1"), at(1100), 0);  // the retry after a crash
    REQUIRE(p.reply.ok);
    CHECK(p.reply.grant_remaining == seconds(9));
    auto fresh = MemberAuthority::restore(MemberParams{1, seconds(10)}, DurableGrantState{}, at(0));
    CHECK(fresh.grant_remaining(at(0)) == Duration(0));
}

TEST_CASE("another membership version is refused", "[authority]") {
    MemberAuthority m(params());
    PromiseRequest p = promise(5, "c1");
    p.membership_version = 2;
    auto d = m.on_promise(p, at(0), 0);
    CHECK_FALSE(d.reply.ok);
    CHECK(d.reply.promised_term == 0);
    CHECK_FALSE(d.persist);
}

TEST_CASE("a write right needs a majority of unexpired grants for its term", "[authority]") {
    WriteRight w("h1", 2, three(), WriteRightParams{milliseconds(3000), 0.01}, 0);
    CHECK_FALSE(w.may_write(at(0)));
    auto r = w.begin_round(at(1000));
    CHECK(w.next_renewal() == at(2000));
    GrantAnswer ok{true, milliseconds(3000), 2, 2, r.seq};
    CHECK(w.on_answer("h1", ok) == AnswerOutcome::recorded);
    CHECK_FALSE(w.may_write(at(1001)));  // one of three
    CHECK(w.on_answer("h3", ok) == AnswerOutcome::recorded);
    REQUIRE(w.deadline());
    // From the SEND time, shrunk for drift.
    CHECK(*w.deadline() == at(1000) + shrink_to_own(milliseconds(3000), 0.01));
    CHECK(w.may_write(at(3900)));
    CHECK_FALSE(w.may_write(at(4000)));
    // Answers for another term or an unknown round do not count.
    CHECK(w.on_answer("h2", GrantAnswer{true, milliseconds(3000), 1, 1, r.seq}) ==
          AnswerOutcome::ignored);
    CHECK(w.on_answer("h2", GrantAnswer{true, milliseconds(3000), 2, 2, 99}) ==
          AnswerOutcome::ignored);
    CHECK(w.on_answer("h9", ok) == AnswerOutcome::ignored);
}

TEST_CASE("the deadline is the majority-th latest expiry; a late answer never shortens it",
          "[authority]") {
    WriteRight w("h1", 1, Membership{1, {"a", "b", "c", "d", "e"}}, {milliseconds(3000), 0.0}, 7);
    auto r1 = w.begin_round(at(0));
    auto r2 = w.begin_round(at(1000));
    auto r3 = w.begin_round(at(2000));
    auto ans = [](const GrantRequest& r) { return GrantAnswer{true, milliseconds(3000), 1, 1, r.seq}; };
    w.on_answer("a", ans(r3));
    w.on_answer("b", ans(r2));
    w.on_answer("c", ans(r1));
    w.on_answer("d", ans(r1));
    REQUIRE(w.deadline());
    CHECK(*w.deadline() == at(3000));  // 5000, 4000, 3000, 3000: the third latest
    w.on_answer("a", ans(r1));         // reordered: an older round's answer
    CHECK(*w.deadline() == at(3000));
}

TEST_CASE("an answer to a round before a restart never counts for a new round", "[authority]") {
    WriteRight before("h1", 1, three(), {milliseconds(3000), 0.01}, 1000);
    auto old_round = before.begin_round(at(0));
    // Restarted (same term): a fresh sequence, drawn at random by the shell.
    WriteRight after("h1", 1, three(), {milliseconds(3000), 0.01}, 987654321);
    auto r = after.begin_round(at(60000));
    REQUIRE(r.seq != old_round.seq);
    GrantAnswer stale{true, milliseconds(3000), 1, 1, old_round.seq};
    CHECK(after.on_answer("h2", stale) == AnswerOutcome::ignored);
    CHECK(after.on_answer("h1", GrantAnswer{true, milliseconds(3000), 1, 1, r.seq}) ==
          AnswerOutcome::recorded);
    CHECK_FALSE(after.may_write(at(60001)));
}

TEST_CASE("a refusal naming a newer term supersedes the write right", "[authority]") {
    WriteRight w("h1", 2, three(), {milliseconds(3000), 0.01}, 41);
    auto r = w.begin_round(at(0));
    GrantAnswer ok{true, milliseconds(3000), 2, 2, r.seq};
    w.on_answer("h1", ok);
    w.on_answer("h2", ok);
    REQUIRE(w.may_write(at(10)));
    CHECK(w.on_answer("h3", GrantAnswer{false, Duration(0), 2, 2, r.seq}) == AnswerOutcome::refused);
    CHECK(w.may_write(at(10)));
    CHECK(w.on_answer("h3", GrantAnswer{false, Duration(0), 3, 2, r.seq}) ==
          AnswerOutcome::superseded);
    CHECK(w.superseded());
    CHECK(w.newer_term() == 3u);
    CHECK_FALSE(w.may_write(at(10)));
    CHECK_FALSE(w.deadline());
}

TEST_CASE("a promotion waits out every promiser's grant, then the fencing bound",
          "[authority]") {
    PromotionParams pp;
    pp.rho = 0.01;
    pp.fencing_bound = milliseconds(500);
    pp.margin = milliseconds(50);
    pp.collect_grace = milliseconds(200);
    Promotion p("c1", 5, three(), {}, pp, at(0));
    CHECK(p.request().term == 5);
    CHECK(p.due_sends(at(0)).size() == 3);
    CHECK(p.due_sends(at(100)).empty());  // not yet time to resend
    p.on_answer("h2", PromiseAnswer{true, 5, milliseconds(1000), 10, false, {}}, at(20));
    CHECK(p.step(at(20)).kind == PromotionStep::Kind::asking);
    CHECK(p.due_sends(at(300)) == std::vector<std::string>{"h1", "h3"});
    p.on_answer("h3", PromiseAnswer{true, 5, milliseconds(2000), 30, false, {}}, at(40));
    // A majority: a little longer for the last answer.
    CHECK(p.step(at(100)).kind == PromotionStep::Kind::asking);
    auto s = p.step(at(240));
    REQUIRE(s.kind == PromotionStep::Kind::waiting);
    CHECK(s.candidate == "h3");  // the most advanced
    CHECK(s.min_lsn == 30);
    Instant expect = at(40) + stretch_to_own(milliseconds(2000), 0.01) +
                     real_to_own(milliseconds(500), 0.01) + milliseconds(50);
    CHECK(s.until == expect);
    CHECK(p.next_wakeup() == expect);
    p.on_answer("h1", PromiseAnswer{true, 5, milliseconds(9000), 99, false, {}}, at(250));  // too late
    CHECK(p.step(expect - Duration(1)).kind == PromotionStep::Kind::waiting);
    auto go = p.step(expect);
    CHECK(go.kind == PromotionStep::Kind::promote);
    CHECK(go.candidate == "h3");
    CHECK(go.term == 5);
    CHECK(p.done());
}

TEST_CASE("the candidate: LSN, then priority, then name; never a negative priority",
          "[authority]") {
    PromotionParams pp;
    Promotion p("c1", 2, three(), {{"h1", -1}, {"h3", 5}}, pp, at(0));
    p.on_answer("h1", PromiseAnswer{true, 2, Duration(0), 100, false, {}}, at(1));
    p.on_answer("h2", PromiseAnswer{true, 2, Duration(0), 50, false, {}}, at(1));
    p.on_answer("h3", PromiseAnswer{true, 2, Duration(0), 50, false, {}}, at(1));
    auto s = p.step(at(1));  // all answered: no grace
    REQUIRE(s.kind == PromotionStep::Kind::waiting);
    CHECK(s.candidate == "h3");
    CHECK(s.min_lsn == 100);
    CHECK(s.candidate_lsn == 50);  // what a promotion of h3 may lose in asynchronous mode: 50

    Promotion q("c1", 2, Membership{1, {"a", "b"}}, {{"a", -1}, {"b", -2}}, pp, at(0));
    q.on_answer("a", PromiseAnswer{true, 2, Duration(0), 1, false, {}}, at(1));
    q.on_answer("b", PromiseAnswer{true, 2, Duration(0), 1, false, {}}, at(1));
    CHECK(q.step(at(1)).kind == PromotionStep::Kind::failed);
}

TEST_CASE("a refused promise supersedes the round; no majority in time fails it",
          "[authority]") {
    PromotionParams pp;
    pp.round_timeout = seconds(2);
    Promotion p("c2", 3, three(), {}, pp, at(0));
    p.on_answer("h1", PromiseAnswer{true, 3, Duration(0), 0, false, {}}, at(1));
    p.on_answer("h2", PromiseAnswer{false, 3, Duration(0), 0, false, {}}, at(2));  // c1 has term 3
    auto s = p.step(at(2));
    CHECK(s.kind == PromotionStep::Kind::superseded);
    CHECK(s.newer_term == 3);

    Promotion q("c2", 3, three(), {}, pp, at(0));
    q.on_answer("h1", PromiseAnswer{true, 3, Duration(0), 0, false, {}}, at(1));
    CHECK(q.step(at(1999)).kind == PromotionStep::Kind::asking);
    CHECK(q.step(at(2000)).kind == PromotionStep::Kind::failed);
}

TEST_CASE("two proposers of one term: at most one gets a majority", "[authority]") {
    std::vector<MemberAuthority> members(3, MemberAuthority(params()));
    // c1 reaches h1 first, c2 reaches h2 and h3 first; each then asks the rest.
    int ok1 = 0, ok2 = 0;
    ok1 += members[0].on_promise(promise(4, "c1"), at(0), 0).reply.ok;
    ok2 += members[1].on_promise(promise(4, "c2"), at(0), 0).reply.ok;
    ok2 += members[2].on_promise(promise(4, "c2"), at(0), 0).reply.ok;
    ok2 += members[0].on_promise(promise(4, "c2"), at(1), 0).reply.ok;
    ok1 += members[1].on_promise(promise(4, "c1"), at(1), 0).reply.ok;
    ok1 += members[2].on_promise(promise(4, "c1"), at(1), 0).reply.ok;
    CHECK(ok1 == 1);
    CHECK(ok2 == 2);
}

TEST_CASE("the proposer: failover delay in charge, takeover delay when stood by",
          "[authority]") {
    ProposerParams pp{seconds(3), seconds(8), seconds(1)};
    Proposer p("c1", pp, 1);
    p.observe_poll(true, at(0));
    CHECK_FALSE(p.should_propose(at(10000)));
    p.observe_poll(false, at(1000));
    CHECK_FALSE(p.should_propose(at(3999)));
    CHECK(p.should_propose(at(4000)));
    CHECK(p.begin_round(at(4000)) == 2);
    CHECK_FALSE(p.should_propose(at(4500)));  // retry_after
    CHECK(p.should_propose(at(5000)));
    p.observe_term(7, at(5000));  // someone else proposed 7: it is at work
    CHECK(p.stood_by());
    CHECK_FALSE(p.should_propose(at(12999)));
    CHECK(p.should_propose(at(13000)));  // takeover delay since then
    p.observe_term(7, at(6000));         // the same term again: no news
    CHECK(p.should_propose(at(13000)));
    CHECK(p.begin_round(at(13000)) == 8);
    CHECK_FALSE(p.stood_by());
    p.on_promoted(at(13500));  // the failover delay starts afresh
    CHECK_FALSE(p.should_propose(at(16499)));
    CHECK(p.should_propose(at(16500)));
    p.observe_poll(true, at(16500));
    CHECK_FALSE(p.should_propose(at(30000)));
}

TEST_CASE("a proposer refused for its own term stands by", "[authority]") {
    Proposer p("c2", ProposerParams{seconds(3), seconds(8), seconds(1)}, 0);
    p.observe_poll(false, at(0));
    p.observe_term(4, at(0));  // learned from the members: a new controller stands by
    CHECK(p.stood_by());
    CHECK_FALSE(p.should_propose(at(7999)));
    REQUIRE(p.should_propose(at(8000)));
    CHECK(p.begin_round(at(8000)) == 5);
    CHECK_FALSE(p.stood_by());
    p.on_superseded(5, at(8100));  // another proposer got term 5 first
    CHECK(p.stood_by());
    CHECK_FALSE(p.should_propose(at(16099)));
    CHECK(p.should_propose(at(16100)));
    CHECK(p.begin_round(at(16100)) == 6);
}

TEST_CASE("a promise retried after a restart reports the assumed grant", "[authority]") {
    // Crashed between persisting the promise and replying: the retry is
    // idempotent and must still report a grant that may run (max_ttl).
    MemberAuthority m(MemberParams{1, seconds(5)});
    REQUIRE(m.on_grant(grant("h1", 1, milliseconds(3000)), at(0)).reply.ok);
    auto first = m.on_promise(promise(2, "c1"), at(500), 0);
    REQUIRE(first.persist);
    auto back = MemberAuthority::restore(MemberParams{1, seconds(5)}, *first.persist, at(800));
    auto retry = back.on_promise(promise(2, "c1"), at(900), 0);
    REQUIRE(retry.reply.ok);
    CHECK_FALSE(retry.persist);
    CHECK(retry.reply.grant_remaining == milliseconds(4900));
    CHECK_FALSE(back.on_grant(grant("h1", 1, milliseconds(3000)), at(950)).reply.ok);
}

TEST_CASE("a holder releases its own grant, never another's", "[authority]") {
    MemberAuthority m(params());
    REQUIRE(m.on_grant(grant("h1", 1, milliseconds(3000)), at(0)).reply.ok);
    CHECK_FALSE(m.on_release("h2", 1));  // not its grant
    CHECK_FALSE(m.on_release("h1", 2));  // not its term
    CHECK(m.grant_remaining(at(1000)) == milliseconds(2000));
    CHECK(m.on_release("h1", 1));
    CHECK(m.grant_remaining(at(1000)) == Duration(0));
    // A promise after the release has nothing to wait out.
    auto p = m.on_promise(promise(2, "c1"), at(1000), 0);
    REQUIRE(p.reply.ok);
    CHECK(p.reply.grant_remaining == Duration(0));

    // A released grant is out of use: a new holder need not wait for it.
    MemberAuthority n(params());
    REQUIRE(n.on_grant(grant("h1", 1, milliseconds(3000)), at(0)).reply.ok);
    CHECK_FALSE(n.on_grant(grant("h2", 2, milliseconds(1000)), at(500)).reply.ok);
    REQUIRE(n.on_release("h1", 1));
    CHECK(n.on_grant(grant("h2", 2, milliseconds(1000)), at(500)).reply.ok);
    CHECK_FALSE(n.on_release("h1", 1));  // no longer the member's grant to give back
}

TEST_CASE("a quiet promise: nothing granted, or released with no grant ending lately",
          "[authority]") {
    MemberAuthority fresh(params());
    CHECK(fresh.on_promise(promise(1, "c1"), at(0), 0).reply.quiet);

    MemberAuthority m(params());
    REQUIRE(m.on_grant(grant("h1", 1, milliseconds(1000)), at(0)).reply.ok);
    CHECK_FALSE(m.on_promise(promise(2, "c1"), at(100), 0).reply.quiet);  // a grant runs
    MemberAuthority r(params());
    REQUIRE(r.on_grant(grant("h1", 1, milliseconds(1000)), at(0)).reply.ok);
    REQUIRE(r.on_release("h1", 1));
    CHECK(r.on_promise(promise(2, "c1"), at(100), 0).reply.quiet);
    // Expired without a release: its holder may have stopped only F later.
    MemberAuthority e(params());
    REQUIRE(e.on_grant(grant("h1", 1, milliseconds(1000)), at(0)).reply.ok);
    CHECK_FALSE(e.on_promise(promise(2, "c1"), at(1100), 0).reply.quiet);
    // Expired and F over: quiet.
    CHECK(e.on_promise(promise(3, "c1"), at(1300), 0).reply.quiet);
}

TEST_CASE("a promotion with every promiser quiet does not wait the fencing bound",
          "[authority]") {
    Promotion round("c1", 2, three(), {}, PromotionParams{}, at(0));
    (void)round.due_sends(at(0));
    for (const char* m : {"h1", "h2", "h3"}) {
        PromiseAnswer a;
        a.ok = true;
        a.promised_term = 2;
        a.quiet = true;
        round.on_answer(m, a, at(10));
    }
    CHECK(round.step(at(10)).kind == PromotionStep::Kind::promote);
}
