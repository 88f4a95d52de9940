#include <catch2/catch.hpp>

#include "daemon/role_machine.hpp"

using namespace im;

TEST_CASE("role machine follows legal moves and refuses others", "[role]") {
    RoleMachine m;
    CHECK(m.current() == Role::starting);
    REQUIRE(m.transition(Role::primary, "ready").ok());
    // A primary never turns into a replica without demoting.
    auto bad = m.transition(Role::replica, "surprise");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.find("primary -> replica") != std::string::npos);
    CHECK(m.current() == Role::primary);
    REQUIRE(m.transition(Role::stopping, "shutdown").ok());
    CHECK_FALSE(m.transition(Role::primary, "no").ok());
    REQUIRE(m.transition(Role::stopped, "done").ok());
    REQUIRE(m.history().size() == 3);
    CHECK(m.history().back().reason == "done");
    // Same role: no change recorded.
    REQUIRE(m.transition(Role::stopped, "again").ok());
    CHECK(m.history().size() == 3);
}

TEST_CASE("fenced instances only leave through starting, stopping or demoting", "[role]") {
    CHECK(RoleMachine::allowed(Role::fenced, Role::starting));
    CHECK(RoleMachine::allowed(Role::fenced, Role::stopping));
    CHECK(RoleMachine::allowed(Role::fenced, Role::demoting));
    CHECK_FALSE(RoleMachine::allowed(Role::fenced, Role::primary));
    CHECK_FALSE(RoleMachine::allowed(Role::fenced, Role::replica));
    CHECK(RoleMachine::allowed(Role::replica, Role::promoting));
    CHECK_FALSE(RoleMachine::allowed(Role::stopped, Role::primary));
}

TEST_CASE("a fence and a shutdown are possible from every state", "[role]") {
    for (Role r : {Role::starting, Role::primary, Role::replica, Role::stopped, Role::promoting,
                   Role::demoting, Role::stopping}) {
        CHECK(RoleMachine::allowed(r, Role::fencing));
    }
    for (Role r : {Role::starting, Role::primary, Role::replica, Role::stopped, Role::promoting,
                   Role::demoting, Role::fencing, Role::fenced}) {
        CHECK(RoleMachine::allowed(r, Role::stopping));
    }
    // A shutdown held up by sessions is fenced, then ends.
    RoleMachine m;
    REQUIRE(m.transition(Role::primary, "ready").ok());
    REQUIRE(m.transition(Role::stopping, "shutdown").ok());
    REQUIRE(m.transition(Role::fencing, "fence during shutdown").ok());
    REQUIRE(m.transition(Role::fenced, "fenced").ok());
    REQUIRE(m.transition(Role::stopped, "shutdown complete").ok());
}

TEST_CASE("an illegal move changes nothing", "[role]") {
    RoleMachine m;
    REQUIRE(m.transition(Role::replica, "ready").ok());
    auto before = m.history().size();
    CHECK_FALSE(m.transition(Role::demoting, "a replica is not demoted").ok());
    CHECK(m.current() == Role::replica);
    CHECK(m.history().size() == before);
    CHECK_FALSE(RoleMachine::allowed(Role::fenced, Role::primary));
    CHECK_FALSE(RoleMachine::allowed(Role::stopped, Role::replica));
}
