// The simulator's core: event queue, clocks, network, fault plan, checker.
// The member and controller behaviour is in quorum_model.cpp (the new rule)
// and old_rule_model.cpp (today's rule).
#include "sim_world.hpp"

#include <algorithm>
#include <cstdio>
#include <string>

namespace sim {

const char* to_string(FaultKind k) {
    switch (k) {
        case FaultKind::symmetric: return "symmetric partition";
        case FaultKind::asymmetric: return "asymmetric partition";
        case FaultKind::one_way: return "one-way partition";
        case FaultKind::controllers: return "controller partition";
        case FaultKind::crash: return "crash";
        case FaultKind::pause: return "pause";
        case FaultKind::count: break;
    }
    return "?";
}

World::World(uint64_t seed, Params params, bool trace)
    : seed_(seed), p_(params), trace_(trace), rng_{seed * 0x2545f4914f6cdd1dULL + 1} {
    n_ = rng_.chance(0.5) ? 3 : 5;
    c_ = rng_.chance(0.5) ? 1 : 2;
    const int nodes = n_ + c_;
    for (int i = 0; i < nodes; ++i) {
        SimClock c;
        // Often at the very edge of the bound: that is where drift bites.
        double u = rng_.unit();
        double dir = u < 0.3 ? -1.0 : u < 0.6 ? 1.0 : rng_.unit() * 2 - 1;
        c.rate = 1.0 + p_.rho * dir;
        c.offset = static_cast<int64_t>(rng_.next() % 1000000000000ULL);
        clocks_.push_back(c);
    }
    cut_count_.assign(static_cast<size_t>(nodes * nodes), 0);
    membership_.version = 1;
    for (int i = 0; i < n_; ++i) {
        Member m;
        m.name = "h" + std::to_string(i + 1);
        membership_.names.push_back(m.name);
        members_.push_back(std::move(m));
    }
    for (int i = 0; i < c_; ++i) {
        Controller c;
        c.name = "c" + std::to_string(i + 1);
        c.views.resize(static_cast<size_t>(n_));
        c.leased_seen.assign(static_cast<size_t>(n_), false);
        controllers_.push_back(std::move(c));
    }
    loss_ = rng_.chance(0.3) ? 0 : rng_.unit() * 0.08;
    dup_ = rng_.chance(0.5) ? 0 : rng_.unit() * 0.05;
    spike_ = rng_.chance(0.5) ? 0 : rng_.unit() * 0.03;
    crash_after_persist_ = rng_.chance(0.5) ? 0 : rng_.unit() * 0.05;
    // Grants longer than the failover delay, or shorter; members that would
    // grant longer than primaries ask (then a restart assumes the longer).
    p_.ttl = std::chrono::milliseconds(rng_.range(1000, 5000));
    p_.max_ttl = rng_.chance(0.5) ? p_.ttl : p_.ttl + std::chrono::milliseconds(rng_.range(1, 3000));
    delay_lo_ = rng_.range(100, 5000);
    delay_hi_ = delay_lo_ + rng_.range(1000, 60000);
    plan_faults();
    if (p_.old_rule)
        o_init();
    else
        q_init();
}

const std::string& World::name_of(int node) const {
    return is_member(node) ? members_[node].name : controllers_[node - n_].name;
}

void World::log(int node, const std::string& what) {
    if (!trace_) return;
    char head[48];
    std::snprintf(head, sizeof head, "%9.3f %-3s ", static_cast<double>(now_) / 1e6,
                  node < 0 ? "--" : name_of(node).c_str());
    trace_lines_.push_back(head + what);
}

void World::push(RealTime t, EvKind kind, int node, uint32_t index, TimerKind timer) {
    uint32_t epoch = is_member(node) && node >= 0 ? members_[node].epoch : 0;
    queue_.push(Event{t, seq_++, kind, timer, node, epoch, index});
}

void World::timer(int node, Instant local_at, TimerKind kind) {
    RealTime t = std::max(now_, clocks_[node].real_at(local_at));
    push(t, EvKind::timer, node, 0, kind);
}

void World::cut(int from, int to, int delta) {
    cut_count_[static_cast<size_t>(from * (n_ + c_) + to)] += delta;
}

void World::send(Msg m) {
    const int nodes = n_ + c_;
    if (cut_count_[static_cast<size_t>(m.from * nodes + m.to)] > 0) return;
    int copies = rng_.chance(dup_) ? 2 : 1;
    for (int k = 0; k < copies; ++k) {
        if (rng_.chance(loss_)) continue;
        RealTime delay = rng_.range(delay_lo_, delay_hi_);
        // A rare long delay: with the others, this reorders messages.
        if (rng_.chance(spike_)) delay += rng_.range(ms(200), ms(3000));
        uint32_t idx;
        if (!free_.empty()) {
            idx = free_.back();
            free_.pop_back();
            pool_[idx] = m;
        } else {
            idx = static_cast<uint32_t>(pool_.size());
            pool_.push_back(m);
        }
        push(now_ + delay, EvKind::deliver, m.to, idx);
    }
}

void World::deliver(const Event& e) {
    const Msg& m = pool_[e.index];
    bool keep = false;
    const int nodes = n_ + c_;
    if (cut_count_[static_cast<size_t>(m.from * nodes + m.to)] > 0) {
        // cut while in flight
    } else if (is_member(m.to) && !members_[m.to].up) {
        // nobody listens
    } else if (is_member(m.to) && members_[m.to].paused) {
        members_[m.to].deferred.push_back(e);  // the kernel keeps it for the stopped process
        keep = true;
    } else {
        Msg copy = m;  // handlers may send, and sending may grow the pool
        free_.push_back(e.index);
        if (p_.old_rule)
            o_message(copy);
        else
            q_message(copy);
        return;
    }
    if (!keep) free_.push_back(e.index);
}

void World::plan_faults() {
    heal_at_ = rng_.range(ms(8000), ms(45000));
    int k = static_cast<int>(rng_.range(1, 5));
    for (int i = 0; i < k; ++i) {
        Fault f;
        f.kind = static_cast<FaultKind>(rng_.next() % static_cast<uint64_t>(FaultKind::count));
        f.start = rng_.range(ms(2500), heal_at_ - ms(1000));
        // Crashes are often a quick bounce: that is when a member's forgetting
        // (or remembering) what it promised or granted matters most.
        RealTime len = f.kind == FaultKind::crash && rng_.chance(0.5) ? rng_.range(ms(20), ms(1000))
                                                                     : rng_.range(ms(300), ms(20000));
        f.end = std::min(heal_at_, f.start + len);
        faults_.push_back(f);
    }
    for (uint32_t i = 0; i < faults_.size(); ++i) {
        push(faults_[i].start, EvKind::fault_start, -1, i);
        push(faults_[i].end, EvKind::fault_end, -1, i);
    }
    push(heal_at_, EvKind::heal, -1, 0);
}

int World::current_primary() const {
    int best = -1;
    uint64_t term = 0;
    for (int i = 0; i < n_; ++i) {
        const Member& m = members_[i];
        bool primary = p_.old_rule ? (m.old_primary && !m.fenced) : m.right.has_value();
        uint64_t t = p_.old_rule ? m.disk.promised_term : m.disk_primary_term;
        if (primary && m.up && (best < 0 || t > term)) best = i, term = t;
    }
    return best;
}

void World::start_fault(Fault& f) {
    const int nodes = n_ + c_;
    auto both = [&](int a, int b) {
        f.cuts.push_back({a, b});
        f.cuts.push_back({b, a});
    };
    auto random_member = [&] {
        int p = current_primary();
        return p >= 0 && rng_.chance(0.5) ? p : static_cast<int>(rng_.range(0, n_ - 1));
    };
    switch (f.kind) {
        case FaultKind::symmetric: {
            std::vector<bool> side(static_cast<size_t>(nodes));
            do {
                for (auto&& s : side) s = rng_.chance(0.5);
            } while (std::count(side.begin(), side.end(), true) == 0 ||
                     std::count(side.begin(), side.end(), false) == 0);
            for (int a = 0; a < nodes; ++a)
                for (int b = a + 1; b < nodes; ++b)
                    if (side[a] != side[b]) both(a, b);
            break;
        }
        case FaultKind::asymmetric: {
            // The primary loses the controller(s) and some replicas but still
            // reaches a majority with the others (issue 11's h1, h2, h3).
            int p = current_primary();
            if (p < 0) p = static_cast<int>(rng_.range(0, n_ - 1));
            std::vector<int> others;
            for (int i = 0; i < n_; ++i)
                if (i != p) others.push_back(i);
            int lose = static_cast<int>(rng_.range(1, n_ - static_cast<int>(membership_.majority())));
            for (int k = 0; k < lose; ++k) {
                size_t j = static_cast<size_t>(rng_.range(0, static_cast<int64_t>(others.size()) - 1));
                both(p, others[j]);
                others.erase(others.begin() + static_cast<std::ptrdiff_t>(j));
            }
            for (int c = 0; c < c_; ++c)
                if (c == 0 || rng_.chance(0.5)) both(p, n_ + c);
            break;
        }
        case FaultKind::one_way: {
            int k = static_cast<int>(rng_.range(1, 3));
            for (int i = 0; i < k; ++i) {
                int a = static_cast<int>(rng_.range(0, nodes - 1));
                int b = static_cast<int>(rng_.range(0, nodes - 2));
                if (b >= a) ++b;
                f.cuts.push_back({a, b});
            }
            break;
        }
        case FaultKind::controllers: {
            if (c_ == 2) {
                // Two controllers, each with its own side of the members.
                std::vector<bool> side(static_cast<size_t>(n_));
                for (auto&& s : side) s = rng_.chance(0.5);
                int p = current_primary();
                if (p >= 0) side[p] = true;  // c1's side keeps the primary
                for (int i = 0; i < n_; ++i) both(i, n_ + (side[i] ? 1 : 0));
                for (int a = 0; a < n_; ++a)
                    for (int b = a + 1; b < n_; ++b)
                        if (side[a] != side[b] && rng_.chance(0.8)) both(a, b);
            } else {
                for (int i = 0; i < n_; ++i)
                    if (rng_.chance(0.5)) both(i, n_);
            }
            break;
        }
        case FaultKind::crash:
            f.member = random_member();
            if (members_[f.member].up) crash(f.member);
            break;
        case FaultKind::pause:
            f.member = random_member();
            if (members_[f.member].up) {
                members_[f.member].paused = true;
                log(f.member, "paused (SIGSTOP)");
            }
            break;
        case FaultKind::count: break;
    }
    for (auto [a, b] : f.cuts) cut(a, b, +1);
    f.active = true;
    if (trace_) {
        std::string s = std::string("fault: ") + to_string(f.kind);
        for (auto [a, b] : f.cuts) s += " " + name_of(a) + ">" + name_of(b);
        if (f.member >= 0) s += " " + name_of(f.member);
        log(-1, s);
    }
}

void World::end_fault(Fault& f) {
    if (!f.active) return;
    f.active = false;
    for (auto [a, b] : f.cuts) cut(a, b, -1);
    f.cuts.clear();
    if (f.kind == FaultKind::crash && !members_[f.member].up) restart(f.member);
    if (f.kind == FaultKind::pause && members_[f.member].paused) {
        Member& m = members_[f.member];
        m.paused = false;
        log(f.member, "resumed");
        // What the stopped process missed is handled now, in order.
        auto deferred = std::move(m.deferred);
        m.deferred.clear();
        for (auto e : deferred) {
            e.t = now_;
            e.seq = seq_++;
            queue_.push(e);
        }
    }
    log(-1, std::string("fault over: ") + to_string(f.kind));
}

void World::heal() {
    for (auto& f : faults_) end_fault(f);
    for (int i = 0; i < n_; ++i) {
        if (!members_[i].up) restart(i);
        if (members_[i].paused) {
            Fault f{FaultKind::pause, now_, now_, {}, i, true};
            end_fault(f);
        }
    }
    loss_ = dup_ = spike_ = crash_after_persist_ = 0;
    healed_ = true;
    log(-1, "all faults healed");
}

void World::stop_writes(int i, RealTime at) {
    Member& m = members_[i];
    if (m.writable_since >= 0 && m.writable_until > at) m.writable_until = std::max(at, now_);
}

void World::crash(int i) {
    Member& m = members_[i];
    stop_writes(i, now_);  // postgres goes with its PID 1
    m.up = false;
    m.paused = false;
    ++m.epoch;
    m.auth.reset();
    m.right.reset();
    m.lease_expires.reset();
    m.starting = false;
    for (const auto& e : m.deferred)
        if (e.kind == EvKind::deliver) free_.push_back(e.index);
    m.deferred.clear();
    ++out_.crashes;
    log(i, "crashed");
}

void World::restart(int i) {
    Member& m = members_[i];
    m.up = true;
    ++m.epoch;
    log(i, "restarted");
    if (p_.old_rule)
        o_started(i);
    else
        q_started(i);
}

bool World::after_persist(int i) {
    if (crash_after_persist_ <= 0 || !rng_.chance(crash_after_persist_)) return false;
    crash(i);
    ++out_.crashes_at_persist;
    log(i, "(crashed after persisting, before replying)");
    push(now_ + rng_.range(ms(20), ms(3000)), EvKind::timer, i, 0, TimerKind::restart);
    return true;
}

void World::after_reply(int i) {
    if (crash_after_persist_ <= 0 || !rng_.chance(crash_after_persist_)) return;
    crash(i);
    log(i, "(crashed just after replying)");
    push(now_ + rng_.range(ms(20), ms(3000)), EvKind::timer, i, 0, TimerKind::restart);
}

bool World::check() {
    if (out_.violation) return false;  // found by the model (an acknowledged commit lost)
    int count = 0;
    for (int i = 0; i < n_; ++i) count += writable(i) ? 1 : 0;
    if (count <= 1) return true;
    out_.violation = true;
    out_.what = "two writable primaries:";
    for (int i = 0; i < n_; ++i)
        if (writable(i))
            out_.what += " " + members_[i].name + " (term " +
                         std::to_string(members_[i].writable_term) + ")";
    for (const auto& f : faults_)
        if (f.active || (f.end <= now_ && f.end + ms(10000) > now_)) out_.active.push_back(f.kind);
    if (c_ == 2) out_.what += " [two controllers]";
    return false;
}

Outcome World::run() {
    RealTime end = heal_at_ + (p_.old_rule ? ms(10000) : p_.liveness_bound);
    std::optional<RealTime> settled;
    while (!queue_.empty()) {
        Event e = queue_.top();
        queue_.pop();
        if (e.t > end) break;
        now_ = e.t;
        ++out_.events;
        switch (e.kind) {
            case EvKind::deliver: deliver(e); break;
            case EvKind::fault_start:
                if (!healed_) start_fault(faults_[e.index]);
                break;
            case EvKind::fault_end: end_fault(faults_[e.index]); break;
            case EvKind::heal: heal(); break;
            case EvKind::timer: {
                if (e.timer == TimerKind::restart) {
                    if (is_member(e.node) && !members_[e.node].up) restart(e.node);
                    break;
                }
                if (is_member(e.node)) {
                    Member& m = members_[e.node];
                    if (!m.up || e.epoch != m.epoch) break;
                    if (m.paused) {
                        m.deferred.push_back(e);
                        break;
                    }
                }
                if (p_.old_rule)
                    o_timer(e.node, e.timer);
                else
                    q_timer(e.node, e.timer);
                break;
            }
        }
        if (!check()) break;
        if (healed_ && !p_.old_rule && !settled && q_settled()) {
            // Live. A few more seconds, checked for safety only: a round
            // begun before the heal may still be under way.
            settled = now_;
            end = now_ + ms(5000);
        }
    }
    out_.sim_time = now_;
    if (!out_.violation && !p_.old_rule && !settled) {
        out_.liveness_failed = true;
        out_.what = "no single writable primary " +
                    std::to_string(p_.liveness_bound / 1000000) + " s after the faults healed";

    }
    return out_;
}

}  // namespace sim
