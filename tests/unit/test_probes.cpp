#include <catch2/catch.hpp>

#include "probe_logic.hpp"

using namespace im::probes;

TEST_CASE("liveness does not depend on postgres", "[probes]") {
    ProbeInput in;
    in.postmaster_running = false;
    CHECK(liveness(in).ok);
    in.in_control = false;
    CHECK_FALSE(liveness(in).ok);
}

TEST_CASE("readiness needs a postgres that accepts connections", "[probes]") {
    ProbeInput in;
    CHECK_FALSE(readiness(in).ok);
    in.postmaster_running = true;
    in.starting_up = true;
    auto a = readiness(in);
    CHECK_FALSE(a.ok);
    CHECK(a.reason.find("recovering") != std::string::npos);
    in.accepting = true;
    in.starting_up = false;
    CHECK_FALSE(readiness(in).ok);  // roles not created yet
    in.setup_done = true;
    CHECK(readiness(in).ok);
    in.fenced = true;
    CHECK_FALSE(readiness(in).ok);
    in.fenced = false;
    in.stopping = true;
    CHECK_FALSE(readiness(in).ok);
}

TEST_CASE("startup passes during recovery so long replays are not killed", "[probes]") {
    ProbeInput in;
    CHECK_FALSE(startup(in).ok);
    in.postmaster_running = true;
    CHECK_FALSE(startup(in).ok);
    in.starting_up = true;
    CHECK(startup(in).ok);
    ProbeInput later;
    later.ever_ready = true;  // postgres restarting after having been up
    CHECK(startup(later).ok);
}
