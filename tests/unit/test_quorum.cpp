// The write authority's daemon side without postgres: the member's store
// and endpoints (membership learned from the first promise, persisted before
// the answer), and the keeper of a one-member membership.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "asio.hpp"
#include "fs_util.hpp"
#include "quorum/grant_store.hpp"
#include "quorum/member_service.hpp"
#include "quorum/write_keeper.hpp"
#include "temp_dir.hpp"

using namespace im;
using namespace im::quorum;
using std::chrono::milliseconds;

namespace {
using im::test::TempDir;
nlohmann::json promise(uint64_t term, const std::string& proposer,
                       std::vector<std::string> names = {"a", "b", "c"}, std::string to = "a") {
    return {{"term", term}, {"proposer", proposer}, {"to", to}, {"membership_version", 1},
            {"members", names}};
}
nlohmann::json grant(const std::string& holder, uint64_t term, uint64_t seq = 1,
                     std::string to = "a") {
    return {{"holder", holder}, {"to", to}, {"term", term}, {"ttl_ms", 1000},
            {"membership_version", 1}, {"seq", seq}};
}
authority::Instant at(int64_t ms) { return authority::Instant{milliseconds(ms)}; }
}  // namespace

TEST_CASE("grant store: missing is fresh, corrupt is an error, saved reads back", "[quorum]") {
    TempDir d;
    GrantStore store(d.path + "/authority.json");
    auto fresh = store.load();
    REQUIRE(fresh.ok());
    CHECK(fresh->membership.version == 0);
    StoredAuthority s;
    s.grants = {4, "c1", 3, "a", {}};
    s.membership = {1, {"a", "b", "c"}};
    REQUIRE(store.save(s).ok());
    auto back = store.load();
    REQUIRE(back.ok());
    CHECK(back->grants == s.grants);
    CHECK(back->membership.names == s.membership.names);
    std::ofstream(d.path + "/authority.json") << "{\"promised_term\": \"x\"}";
    CHECK_FALSE(store.load().ok());  // never guessed
}

TEST_CASE("member service: a membership from the first promise, persisted first", "[quorum]") {
    TempDir d;
    const std::string file = d.path + "/authority.json";
    MemberService m("a", GrantStore(file), milliseconds(1000));
    REQUIRE(m.load(at(0)).ok());
    // Not a member yet: no grant.
    auto early = m.grant(grant("b", 1), at(0));
    REQUIRE(early.ok());
    CHECK((*early)["ok"] == false);
    // A membership without us: no promise, nothing learned.
    auto foreign = m.promise(promise(1, "c1", {"x", "y"}), 0, at(0));
    REQUIRE(foreign.ok());
    CHECK((*foreign)["ok"] == false);
    CHECK(m.membership().version == 0);
    // Meant for another member: refused, nothing learned.
    CHECK((*m.promise(promise(2, "c1", {"a", "b", "c"}, "b"), 0, at(5)))["ok"] == false);
    CHECK(m.membership().version == 0);
    auto p = m.promise(promise(2, "c1"), 77, at(10));
    REQUIRE(p.ok());
    CHECK((*p)["ok"] == true);
    CHECK((*p)["quiet"] == true);
    CHECK((*p)["received_lsn"] == 77);
    // On disk before the answer: a restart remembers the promise.
    MemberService again("a", GrantStore(file), milliseconds(1000));
    REQUIRE(again.load(at(20)).ok());
    CHECK(again.durable().promised_term == 2);
    CHECK(again.membership().names == std::vector<std::string>{"a", "b", "c"});
    // Another membership is refused once one is known.
    auto other = again.promise(promise(3, "c1", {"a", "b"}), 0, at(30));
    REQUIRE(other.ok());
    CHECK((*other)["ok"] == false);
    // Grants: a holder outside the membership is refused; a member is granted.
    CHECK((*again.grant(grant("z", 2), at(40)))["ok"] == false);
    auto g = again.grant(grant("b", 2, 5), at(40));
    REQUIRE(g.ok());
    CHECK((*g)["ok"] == true);
    CHECK((*g)["seq"] == 5);
    CHECK((*g)["member"] == "a");
    CHECK((*again.grant(grant("b", 2, 6, "c"), at(41)))["ok"] == false);  // meant for c
    CHECK(again.durable().granted_to == "b");
    // A second holder in the same term is refused; the grant is released by its holder only.
    CHECK((*again.grant(grant("c", 2), at(50)))["ok"] == false);
    CHECK(again.release(nlohmann::json{{"holder", "c"}, {"term", 2}})["released"] == false);
    CHECK(again.release(nlohmann::json{{"holder", "b"}, {"term", 2}})["released"] == true);
    auto st = again.status(at(60));
    CHECK(st["granted_to"] == "b");
    CHECK(st["membership"]["members"].size() == 3);
}

TEST_CASE("write keeper: a one-member membership gathers its own grant", "[quorum]") {
    TempDir d;
    asio::io_context io;
    MemberService self("a", GrantStore(d.path + "/authority.json"), milliseconds(1000));
    REQUIRE(self.load(authority::Instant{}).ok());
    nlohmann::json p = {{"term", 1}, {"proposer", "c1"}, {"to", "a"}, {"membership_version", 1},
                        {"members", {"a"}}};
    REQUIRE((*self.promise(p, 0, own_now()))["ok"] == true);
    WriteKeeper keeper(io.get_executor(), "a", self,
                       authority::WriteRightParams{milliseconds(1000), authority::kDefaultRho}, "t");
    int moved = 0;
    keeper.on_deadline([&] { ++moved; });
    keeper.hold(1, self.membership(), {});
    std::optional<GatherVerdict> verdict;
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
            verdict = co_await keeper.gather(milliseconds(500));
            keeper.drop();
        },
        asio::detached);
    io.run_for(std::chrono::seconds(2));
    REQUIRE(verdict);
    CHECK(*verdict == GatherVerdict::granted);
    CHECK(moved >= 1);
    CHECK_FALSE(keeper.holding());
    CHECK(self.durable().granted_to == "a");
}

TEST_CASE("member service: a configured membership, and the longest ttl kept", "[quorum]") {
    TempDir d;
    const std::string file = d.path + "/authority.json";
    MemberService m("a", GrantStore(file), milliseconds(5000), {"a", "b", "c"});
    REQUIRE(m.load(at(0)).ok());
    // Another set (a proposer configured otherwise): refused, nothing learned.
    CHECK((*m.promise(promise(1, "c1", {"a", "b"}), 0, at(0)))["ok"] == false);
    CHECK(m.membership().version == 0);
    REQUIRE((*m.promise(promise(1, "c1"), 0, at(0)))["ok"] == true);
    REQUIRE((*m.grant(grant("b", 1), at(10)))["ok"] == true);
    // Restarted with a shorter --grant-ttl: the grant given before is still
    // assumed to run the longer time.
    MemberService shorter("a", GrantStore(file), milliseconds(1000), {"a", "b", "c"});
    REQUIRE(shorter.load(at(100)).ok());
    CHECK(shorter.grant_remaining(at(100)) == milliseconds(5000));
    // Restarted with another --membership: refused at start, not guessed.
    MemberService other("a", GrantStore(file), milliseconds(1000), {"a", "b"});
    CHECK_FALSE(other.load(at(200)).ok());
}
