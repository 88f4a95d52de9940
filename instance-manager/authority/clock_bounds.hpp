#pragma once
// Time for the write authority: each process reads only its own monotonic
// clock, and what travels between processes is always a duration, never an
// instant. The clocks' RATES may differ from real time by at most rho (every
// clock advances between (1-rho) and (1+rho) seconds per real second); their
// offsets are unrelated. The two conversions below are the only places where
// rho enters a decision, and both round towards safety.
#include <chrono>
#include <cmath>
#include <cstdint>

namespace im::authority {

// Microseconds: fine enough that the drift conversions do not round a
// millisecond-scale margin away.
using Duration = std::chrono::microseconds;

// An instant on the process's OWN monotonic clock (CLOCK_BOOTTIME in the
// daemon and the controller, a drifting simulated clock in the simulator).
// It is never sent.
struct OwnClock {
    using duration = Duration;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::time_point<OwnClock, Duration>;
    static constexpr bool is_steady = true;
};
using Instant = OwnClock::time_point;

inline constexpr double kDefaultRho = 0.01;
// F, real time: from a primary's deadline to its last possible commit (the
// watchdog's kill; measured by bench/fencing-bound.sh). Members wait it out
// before granting a new holder, proposers before promoting.
inline constexpr Duration kFencingBound = std::chrono::milliseconds(250);

// A member granted for `d` on ITS clock, starting no earlier than the moment
// we sent the request. How long after our send may we (on OUR clock) still
// count on that grant?
//   real time the grant runs >= d / (1+rho)          (its clock is at most 1+rho fast)
//   our clock, in real time r, advances >= r*(1-rho) (ours is at most 1-rho slow)
//   so our local elapsed L maps to real <= L/(1-rho); L/(1-rho) <= d/(1+rho)
//   holds for L = d*(1-rho)/(1+rho). Rounded down.
inline Duration shrink_to_own(Duration d, double rho) {
    if (d.count() <= 0) return Duration{0};
    double v = static_cast<double>(d.count()) * (1.0 - rho) / (1.0 + rho);
    return Duration{static_cast<int64_t>(std::floor(v))};
}

// A member reported that a grant still runs for `remaining` on ITS clock
// (measured when it answered, which is before we received the answer). How
// long after receiving the answer must we (on OUR clock) wait to be sure it
// has run out in real time?
//   real time it may still run <= remaining / (1-rho) (its clock may be slow)
//   our local elapsed L covers real >= L/(1+rho)       (ours may be fast)
//   so L = remaining*(1+rho)/(1-rho) is enough. Rounded up.
inline Duration stretch_to_own(Duration remaining, double rho) {
    if (remaining.count() <= 0) return Duration{0};
    double v = static_cast<double>(remaining.count()) * (1.0 + rho) / (1.0 - rho);
    return Duration{static_cast<int64_t>(std::ceil(v))};
}

// A bound given in REAL time (the fencing bound F) waited on our clock:
// our elapsed L covers real >= L/(1+rho), so L = real*(1+rho). Rounded up.
inline Duration real_to_own(Duration real, double rho) {
    if (real.count() <= 0) return Duration{0};
    return Duration{static_cast<int64_t>(std::ceil(static_cast<double>(real.count()) * (1.0 + rho)))};
}

}  // namespace im::authority
