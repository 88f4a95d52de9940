// The start gate with a stand-in daemon: the rules every start of postgres
// goes through, without postgres.
#include <catch2/catch.hpp>

#include "daemon/start_gate.hpp"

using namespace im;

namespace {
struct FakeHost : StartHost {
    StartFacts facts;
    StartVerdict verdict = StartVerdict::start;
    int asked = 0;
    int launched = 0;
    bool fence_persisted = false;
    bool launch_fails = false;
    StartFacts start_facts() const override { return facts; }
    awaitable<StartVerdict> ask_members() override {
        ++asked;
        co_return verdict;
    }
    Status persist_fence(const std::string&) override {
        fence_persisted = true;
        facts.fenced = true;
        return Ok{};
    }
    Status launch(StartCause) override {
        if (launch_fails) return make_error("spawn failed");
        ++launched;
        facts.running = true;
        return Ok{};
    }
};

Status open(StartGate& gate, StartCause cause, StartGate::Prepare prepare = nullptr) {
    asio::io_context io;
    std::optional<Status> out;
    asio::co_spawn(
        io,
        [&]() -> awaitable<void> {
            std::string reason = "test";  // a local: GCC 12 and temporaries in co_await
            out.emplace(co_await gate.open(cause, reason, prepare));
        },
        asio::detached);
    io.run();
    REQUIRE(out.has_value());
    return *out;
}
}  // namespace

TEST_CASE("start gate: a plain start launches once and moves to starting", "[start_gate]") {
    FakeHost host;
    RoleMachine role;
    REQUIRE(role.transition(Role::stopped, "crashed").ok());
    StartGate gate(host, role);
    REQUIRE(open(gate, StartCause::crash_restart).ok());
    CHECK(host.launched == 1);
    CHECK(host.asked == 0);
    CHECK(role.current() == Role::starting);
    // Running already: refused, nothing launched again.
    auto again = open(gate, StartCause::restart_command);
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().http_status == kStartRefused);
    CHECK(host.launched == 1);
}

TEST_CASE("start gate: a fenced instance starts only by unfence or as a replica", "[start_gate]") {
    for (auto cause :
         {StartCause::first_start, StartCause::crash_restart, StartCause::restart_command}) {
        FakeHost host;
        host.facts.fenced = true;
        RoleMachine role;
        StartGate gate(host, role);
        auto st = open(gate, cause);
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().http_status == kStartRefused);
        CHECK(host.launched == 0);
        CHECK(role.current() == Role::starting);  // unchanged: the initial role
    }
    for (auto cause : {StartCause::unfence, StartCause::as_replica}) {
        FakeHost host;
        host.facts.fenced = true;
        RoleMachine role;
        REQUIRE(role.transition(Role::fenced, "fenced").ok());
        StartGate gate(host, role);
        REQUIRE(open(gate, cause).ok());
        CHECK(host.launched == 1);
    }
}

TEST_CASE("start gate: never on a directory a rewind left half done", "[start_gate]") {
    for (auto cause : {StartCause::first_start, StartCause::crash_restart,
                       StartCause::restart_command, StartCause::unfence, StartCause::as_replica}) {
        FakeHost host;
        host.facts.rewind_interrupted = true;
        RoleMachine role;
        REQUIRE(role.transition(Role::fenced, "fenced").ok());
        StartGate gate(host, role);
        auto st = open(gate, cause);
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().message.find("interrupted") != std::string::npos);
        CHECK(host.launched == 0);
    }
}

TEST_CASE("start gate: a primary of a term holds a majority's grants first", "[start_gate]") {
    SECTION("a majority grants") {
        FakeHost host;
        host.facts.under_authority = true;
        RoleMachine role;
        StartGate gate(host, role);
        REQUIRE(open(gate, StartCause::first_start).ok());
        CHECK(host.asked == 1);
        CHECK(host.launched == 1);
    }
    SECTION("a newer term was promised: the fence is persisted, nothing starts") {
        FakeHost host;
        host.facts.under_authority = true;
        host.verdict = StartVerdict::stand_down;
        RoleMachine role;
        REQUIRE(role.transition(Role::stopped, "crashed").ok());
        StartGate gate(host, role);
        auto st = open(gate, StartCause::crash_restart);
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().http_status == kStartRefused);
        CHECK(host.fence_persisted);
        CHECK(host.launched == 0);
        CHECK(role.current() == Role::fenced);
    }
    SECTION("too few members grant: try again later") {
        FakeHost host;
        host.facts.under_authority = true;
        host.verdict = StartVerdict::wait;
        RoleMachine role;
        StartGate gate(host, role);
        auto st = open(gate, StartCause::first_start);
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().http_status == kStartWait);
        CHECK(host.launched == 0);
        CHECK_FALSE(host.fence_persisted);
    }
    SECTION("a replica, or a start as one, asks nobody") {
        FakeHost host;
        host.facts.under_authority = true;
        host.facts.replica = true;
        RoleMachine role;
        StartGate gate(host, role);
        REQUIRE(open(gate, StartCause::first_start).ok());
        CHECK(host.asked == 0);
        FakeHost demoted;
        demoted.facts.under_authority = true;
        RoleMachine r2;
        REQUIRE(r2.transition(Role::primary, "ready").ok());
        REQUIRE(r2.transition(Role::demoting, "demote").ok());
        StartGate g2(demoted, r2);
        REQUIRE(open(g2, StartCause::as_replica).ok());
        CHECK(demoted.asked == 0);
    }
}

TEST_CASE("start gate: rules are checked again after the preparation", "[start_gate]") {
    FakeHost host;
    RoleMachine role;
    StartGate gate(host, role);
    // A shutdown began while the files were written: nothing is launched.
    auto st = open(gate, StartCause::first_start, [&]() -> awaitable<Status> {
        host.facts.shutting_down = true;
        co_return Ok{};
    });
    REQUIRE_FALSE(st.ok());
    CHECK(host.launched == 0);
    // A failed preparation is the answer, and nothing is launched.
    FakeHost h2;
    RoleMachine r2;
    StartGate g2(h2, r2);
    auto failed = open(g2, StartCause::first_start,
                       []() -> awaitable<Status> { co_return make_error("disk full", 500); });
    REQUIRE_FALSE(failed.ok());
    CHECK(failed.error().message == "disk full");
    CHECK(h2.launched == 0);
}

TEST_CASE("start gate: a role that cannot start refuses and changes nothing", "[start_gate]") {
    FakeHost host;
    RoleMachine role;
    REQUIRE(role.transition(Role::primary, "ready").ok());
    REQUIRE(role.transition(Role::stopping, "shutdown").ok());
    host.facts.running = false;
    StartGate gate(host, role);
    auto st = open(gate, StartCause::restart_command);
    REQUIRE_FALSE(st.ok());
    CHECK(role.current() == Role::stopping);
    CHECK(host.launched == 0);
}

TEST_CASE("start gate: a failed spawn leaves the role stopped", "[start_gate]") {
    FakeHost host;
    host.launch_fails = true;
    RoleMachine role;
    REQUIRE(role.transition(Role::stopped, "crashed").ok());
    StartGate gate(host, role);
    auto st = open(gate, StartCause::crash_restart);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().http_status == kStartFailed);
    CHECK(role.current() == Role::stopped);
}

TEST_CASE("start gate: a member without a term starts only as a replica", "[start_gate]") {
    StartFacts f;
    f.member = true;
    CHECK(start_refusal(f, StartCause::first_start));
    CHECK(start_refusal(f, StartCause::unfence));
    CHECK_FALSE(start_refusal(f, StartCause::as_replica));
    f.replica = true;
    CHECK_FALSE(start_refusal(f, StartCause::crash_restart));
    f.replica = false;
    f.under_authority = true;  // a primary of a term: the grants decide
    CHECK_FALSE(start_refusal(f, StartCause::crash_restart));
    CHECK(start_needs_majority(f, StartCause::crash_restart));
}
