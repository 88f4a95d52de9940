#pragma once
// A deterministic simulation of one cluster under faults, in the manner of
// FoundationDB's simulator and TigerBeetle's VOPR: one seed drives everything
// (fault plan, message delays, clock rates); the REAL pure decision code
// (authority/) decides for every member, primary and proposer; the event
// queue runs in simulated real time, and the invariant "at most one member's
// postgres is writable" is checked after every event that changes state.
//
// Processes: members h1..hN (N = 3 or 5) and controllers c1 (and c2). Each
// has its own clock: local = offset + rate * real, rate within [1-rho, 1+rho].
// Links are directed; a message is lost when its link is cut at sending or at
// delivery. Crashed members lose volatile state and keep their "disk";
// paused members (SIGSTOP) keep their messages and timers until resumed,
// while their postgres and watchdog go on.
//
// Writability model (the checker's): a member is writable from when its
// manager, promoted, sees a majority for its term; it stops at the earliest
// of (the manager notices the loss + F) and (the watchdog deadline + F). A
// crash stops postgres at once (the manager is PID 1 of its container).
//
// One seed: 3 or 5 members, 1 or 2 controllers, clock rates (often at the
// edge of rho), a network (delay 0.1-65 ms, rare spikes of 0.2-3 s that
// reorder, loss up to 8%, duplication up to 5%), grant ttl 1-5 s, members'
// longest ttl up to 3 s above it, and 1-5 faults between 2.5 s and the heal
// (8-45 s): symmetric, asymmetric (the primary loses the controller(s) and
// some replicas but keeps a majority), one-way, controllers' partitions (two
// controllers each with a side), crashes (half of them quick bounces),
// pauses. Besides, per seed, a chance that a member crashes between
// persisting and replying, just after a promise, or just before one.
// At the heal every link comes back, crashed members restart, paused ones
// resume, loss and duplication stop; the seed passes when one member, and
// only one, is primary and writable within liveness_bound.
//
// Synchronous durability (--synchronous K): every member's WAL is a log of
// commit ids (its disk: a crash keeps it). A writable primary commits one at
// each renewal round; its grant requests carry its log, and a member that
// grants takes it (extending its own, or replacing it with a newer term's:
// the rewind), and answers with its log. A commit is acknowledged once K of
// the primary's set (ANY K of the other members) hold it, while the primary
// is writable. The primary's durability record goes with its grants (the
// real WriteRight and MemberAuthority); it becomes writable only once a
// majority stored it; the older sets leave it once K of its set flushed past
// where it became writable. The controller, after its round, reads every
// member's log length afresh (a former primary, its own branch no
// standby's, reports where that branch began) and promotes by
// choose_candidate (the real rule); a member never promoted (h5 in some
// seeds) is in no synchronous set, as the controller does. The checker: a member that becomes writable holds every commit
// acknowledged so far. (--sync-stale-reads: the promotion trusts the round's
// own answers, which may precede the old primary's last commits: the
// simulator must find lost commits.)
//
// Not modelled (decided): controllers never crash (their state is volatile
// and relearned from polls anyway); replication travels with the grant
// requests (a replica receives WAL only from a primary it grants to); the
// membership never changes; F (the time postgres takes to stop committing)
// is always taken at its worst, the full F.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <queue>
#include <string>
#include <vector>

#include "authority/durability.hpp"
#include "authority/member_authority.hpp"
#include "authority/promotion.hpp"
#include "authority/write_right.hpp"

namespace sim {

using namespace im::authority;
using RealTime = int64_t;  // microseconds of simulated real time
constexpr RealTime kNever = INT64_MAX / 4;
constexpr RealTime ms(int64_t v) { return v * 1000; }

// splitmix64: small, fast, and the same on every platform.
struct Rng {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    double unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
    int64_t range(int64_t lo, int64_t hi) {  // [lo, hi]
        return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
    }
    bool chance(double p) { return unit() < p; }
};

struct SimClock {
    double rate = 1.0;
    int64_t offset = 0;
    Instant local(RealTime t) const {
        return Instant{Duration{offset + static_cast<int64_t>(static_cast<double>(t) * rate)}};
    }
    // The first real instant at which the local clock reads at least `l`.
    RealTime real_at(Instant l) const {
        double v = static_cast<double>(l.time_since_epoch().count() - offset) / rate;
        auto t = static_cast<RealTime>(v);
        while (local(t) < l) ++t;
        while (t > 0 && local(t - 1) >= l) --t;
        return t;
    }
};

enum class FaultKind : uint8_t {
    symmetric,    // the processes split in two
    asymmetric,   // the primary loses a replica and the controller(s), keeps the rest
    one_way,      // one direction of some links
    controllers,  // a controller cut from some members (two controllers)
    crash,        // a member crashes and restarts later
    pause,        // a member's manager is stopped (SIGSTOP); its watchdog runs on
    count
};
const char* to_string(FaultKind k);

enum class MsgKind : uint8_t {
    promise_req, promise_ans, grant_req, grant_ans, status_req, status_ans, promote,
    // a switchover: demote (the primary stops, gives its grants back), release, demoted
    release, demoted,
    // the old rule
    lease, lease_ans, ping, ping_ans, fence, demote,
};

struct Msg {
    MsgKind kind{};
    int from = 0, to = 0;
    PromiseRequest preq;
    PromiseAnswer pans;
    GrantRequest greq;
    GrantAnswer gans;
    uint64_t term = 0;       // status: promised term; promote/lease/fence: the term
    uint64_t role_term = 0;  // status: the term it is primary of (0: replica)
    uint64_t lsn = 0;
    uint64_t round = 0;      // status/ping: which round of the asker
    bool flag = false;       // status: may write; lease_ans: ok; ping_ans: primary
    bool leased = false;     // old rule status: under a lease
    std::vector<uint64_t> log;  // synchronous: grant_req, grant_ans: the sender's WAL
    bool follows = false;       // synchronous: status: a replica (its WAL is a primary's, rewound)
    uint64_t log_term = 0;      // synchronous: status: its WAL's "timeline" (the term it came from)
    bool fork = false;          // synchronous: status: a former primary: log_term/lsn are its fork
    DurabilityRecord record;    // synchronous: promote: the newest record the round found
};

enum class EvKind : uint8_t { deliver, timer, fault_start, fault_end, heal };
enum class TimerKind : uint8_t {
    renew, check, poll, promotion, restart, resume,
    lease_check, ping_done, start_gate_done, reading_done,
};

struct Event {
    RealTime t;
    uint64_t seq;
    EvKind kind;
    TimerKind timer;
    int node;
    uint32_t epoch;
    uint32_t index;  // message pool index, or fault index
    bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

struct Fault {
    FaultKind kind;
    RealTime start, end;
    std::vector<std::pair<int, int>> cuts;  // directed links, filled at start
    int member = -1;                        // crash/pause
    bool active = false;
};

struct Params {
    bool old_rule = false;
    // Proposers that promote as soon as a majority promised, ignoring the
    // grants those members report and the fencing bound: safety must then
    // rest on the members' rule alone (member_authority.hpp).
    bool rogue_proposer = false;
    double rho = kDefaultRho;
    Duration ttl = std::chrono::milliseconds(3000);      // asked by primaries (per seed: 1-5 s)
    Duration max_ttl = std::chrono::milliseconds(3000);  // the longest a member grants (>= ttl)
    RealTime fencing_bound = PromotionParams{}.fencing_bound.count();  // F, the proposer's
    Duration poll_interval = std::chrono::milliseconds(1000);
    Duration failover_delay = std::chrono::milliseconds(3000);
    RealTime liveness_bound = ms(30000);
    unsigned sync = 0;        // synchronous durability: ANY sync of the other members (0: off)
    bool sync_stale = false;  // the mutation: promote from the round's own (stale) answers
};

struct Member {
    std::string name;
    bool up = true, paused = false;
    uint32_t epoch = 0;
    // "disk": what survives a crash
    DurableGrantState disk;
    uint64_t disk_primary_term = 0;  // promoted for this term (0: replica)
    uint64_t disk_promoted_max = 0;  // never promoted again for this term or lower
    // volatile
    std::optional<MemberAuthority> auth;
    std::optional<WriteRight> right;
    uint64_t lsn = 0;
    std::vector<Event> deferred;  // while paused
    // postgres, as the checker sees it
    RealTime writable_since = -1, writable_until = -1;
    uint64_t writable_term = 0;  // the term it writes under (kept while it stops)
    // synchronous: WAL (disk), the term of the primary it came from, and as
    // primary what each member flushed of it and where its set took effect
    std::vector<uint64_t> log;
    uint64_t log_term = 0;
    // Its WAL is its own branch (it was primary of log_term and has not taken
    // a newer primary's WAL since): a former primary, not a replica, until
    // rewound (the daemon's role is fenced or stopped, never replica).
    bool own_branch = false;
    // Where its own branch began: the "timeline" it was on and how much of it
    // it held (what a former primary reports: daemon/former_primary.cpp).
    uint64_t fork_parent = 0, fork_len = 0;
    std::map<std::string, uint64_t> flushed;
    uint64_t since = 0;
    // the old rule
    bool old_primary = false, fenced = false;
    std::optional<Instant> lease_expires;
    uint64_t ping_round = 0;
    int ping_answers = 0;
    bool ping_saw_primary = false;
    bool starting = false;  // the old start gate after a restart
};

struct ControllerView {
    bool answered = false;
    uint64_t promised = 0, role_term = 0, lsn = 0;
    bool may_write = false, leased = false;
};

struct Controller {
    std::string name;
    std::optional<Proposer> proposer;
    std::optional<Promotion> round;
    uint64_t poll_round = 0;
    std::vector<ControllerView> views, last_views;
    // the old rule
    uint64_t term = 0;
    bool term_learned = false, superseded = false;
    int primary = -1;
    std::vector<bool> leased_seen;
    std::optional<Instant> lost_since;
    std::optional<Instant> round_wake;  // quorum: the promotion timer pending
    // quorum: a switchover under way (its term; 0: none), its target, until when
    uint64_t switch_term = 0;
    int switch_target = -1;
    Instant switch_until{};
    // synchronous: the fresh reading after a round (its term; 0: none)
    uint64_t read_term = 0, read_round = 0, reads = 0;
    std::map<std::string, int> round_priority;  // the round's, for the readings' eligibility
    DurabilityRecord read_record;
    std::vector<std::optional<Reading>> readings;
};

struct Outcome {
    bool violation = false;
    bool liveness_failed = false;
    std::string what;
    std::vector<FaultKind> active;  // faults active at the violation
    uint64_t events = 0;
    RealTime sim_time = 0;
    // what happened, for the figures
    uint64_t promotions = 0, takeovers = 0, superseded_rounds = 0, step_downs = 0;
    uint64_t crashes = 0, crashes_at_persist = 0;
    uint64_t switchovers = 0, releases = 0;
    uint64_t acknowledged = 0, sync_blocked = 0;  // synchronous
};

class World {
public:
    World(uint64_t seed, Params params, bool trace);
    Outcome run();
    // With trace on: what happened, one line per decision.
    const std::vector<std::string>& trace_lines() const { return trace_lines_; }
    int members() const { return n_; }
    int controllers() const { return c_; }

private:
    // core
    void push(RealTime t, EvKind kind, int node, uint32_t index, TimerKind timer = TimerKind::renew);
    void timer(int node, Instant local_at, TimerKind kind);
    void send(Msg m);
    void deliver(const Event& e);
    void plan_faults();
    void start_fault(Fault& f);
    void end_fault(Fault& f);
    void heal();
    void crash(int member);
    void restart(int member);
    void cut(int from, int to, int delta);
    bool check();
    Instant now_of(int node) const { return clocks_[node].local(now_); }
    bool is_member(int node) const { return node < n_; }
    void log(int node, const std::string& what);
    int current_primary() const;

    bool writable(int i) const {
        const Member& m = members_[i];
        return m.writable_since >= 0 && m.writable_since <= now_ && now_ < m.writable_until;
    }
    void stop_writes(int i, RealTime at);  // postgres stops by `at` at the latest
    bool after_persist(int i);             // maybe crash between persist and reply
    void after_reply(int i);               // maybe crash right after a persisted reply
    const std::string& name_of(int node) const;

    // the write authority by quorum (quorum_model.cpp)
    void q_init();
    void q_message(const Msg& m);
    void q_timer(int node, TimerKind kind);
    void q_started(int i);
    void q_renew(int i);
    void send_to_others(int member, Msg msg);  // the same message to every other member
    void q_right_changed(int i);
    // synchronous durability
    void q_hold(int i, const DurabilityRecord& inherited);
    QuorumSet q_set(int i) const;
    void q_acknowledge(int i);
    void q_take_log(int i, uint64_t term, const std::vector<uint64_t>& log);
    void q_reading_done(int c);
    void q_ask_status(int c, uint64_t round);  // every member, for `round`
    int member_index(const std::string& name) const;
    void q_send_promote(int c, const std::string& candidate, uint64_t term, uint64_t min_lsn,
                        const DurabilityRecord& record);
    void q_poll(int c);
    void q_promotion_step(int c);
    void q_schedule_round(int c);
    bool q_settled();
    // today's rule (old_rule_model.cpp)
    void o_init();
    void o_message(const Msg& m);
    void o_timer(int node, TimerKind kind);
    void o_started(int i);
    void o_ping_round(int i);
    void o_poll(int c);

    uint64_t seed_;
    Params p_;
    bool trace_;
    Rng rng_;
    int n_ = 3, c_ = 1;
    RealTime now_ = 0;
    uint64_t seq_ = 0;
    std::priority_queue<Event, std::vector<Event>, std::greater<>> queue_;
    std::vector<Msg> pool_;
    std::vector<uint32_t> free_;
    std::vector<SimClock> clocks_;
    std::vector<int> cut_count_;  // [from * nodes + to]
    std::vector<Member> members_;
    std::vector<Controller> controllers_;
    std::vector<Fault> faults_;
    Membership membership_;
    // network
    double loss_ = 0, dup_ = 0, spike_ = 0, crash_after_persist_ = 0;
    double switch_rate_ = 0;  // quorum: chance per poll that the controller switches over
    RealTime delay_lo_ = 0, delay_hi_ = 0;
    bool healed_ = false;
    RealTime heal_at_ = 0;
    Outcome out_;
    std::vector<std::string> trace_lines_;
    std::set<uint64_t> acked_;  // synchronous: every commit acknowledged so far
    uint64_t next_commit_ = 1;
};

}  // namespace sim
