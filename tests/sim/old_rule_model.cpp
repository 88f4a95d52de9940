// The former rule in the simulator (the lease, removed: see git history),
// reduced to its decisions: the controller renews a lease on the primary; a
// primary whose lease lapsed asks its peers and serves on while a majority
// ANSWERS and none says it is primary; no promises, no grants, no watchdog.
// It is here to show that the simulator finds the two-writable-primaries
// defect of issue 11 (asymmetric partitions, two controllers).
#include <algorithm>

#include "sim_world.hpp"

namespace sim {

namespace {
constexpr RealTime kLeaseTtlMs = 1500;
Duration dur_ms(int64_t v) { return std::chrono::milliseconds(v); }
// As lease.cpp: the peers' answers are awaited ttl/4, within [100, 500] ms.
Duration probe_timeout() { return dur_ms(std::clamp<int64_t>(kLeaseTtlMs / 4, 100, 500)); }
}  // namespace

void World::o_init() {
    for (int i = 0; i < n_; ++i) {
        Member& m = members_[i];
        m.disk.promised_term = 1;  // the old rule's "term"
        if (i == 0) {
            m.disk_primary_term = 1;
            m.old_primary = true;
            m.writable_since = 0;
            m.writable_until = kNever;
            m.writable_term = 1;
            m.lease_expires = now_of(i) + dur_ms(kLeaseTtlMs);
            timer(i, *m.lease_expires, TimerKind::lease_check);
        }
    }
    for (int c = 0; c < c_; ++c) {
        Controller& ctl = controllers_[c];
        if (c == 0) {
            ctl.term = 1;
            ctl.term_learned = true;
            ctl.primary = 0;
            ctl.leased_seen[0] = true;
        }
        timer(n_ + c, now_of(n_ + c) + dur_ms(rng_.range(0, 500)), TimerKind::poll);
    }
}

void World::o_started(int i) {
    Member& m = members_[i];
    m.fenced = false;
    m.old_primary = m.disk_primary_term > 0;
    if (m.old_primary) {
        // The start gate (primary_may_start): ask the peers first.
        m.starting = true;
        o_ping_round(i);
    }
}

void World::o_ping_round(int i) {
    Member& m = members_[i];
    ++m.ping_round;
    m.ping_answers = 0;
    m.ping_saw_primary = false;
    for (int j = 0; j < n_; ++j) {
        if (j == i) continue;
        Msg msg;
        msg.kind = MsgKind::ping;
        msg.from = i;
        msg.to = j;
        msg.round = m.ping_round;
        send(msg);
    }
    timer(i, now_of(i) + probe_timeout(), TimerKind::ping_done);
}

void World::o_message(const Msg& msg) {
    if (is_member(msg.to)) {
        const int i = msg.to;
        Member& m = members_[i];
        const Instant now = now_of(i);
        Msg reply;
        reply.from = i;
        reply.to = msg.from;
        reply.round = msg.round;
        switch (msg.kind) {
            case MsgKind::lease:
                reply.kind = MsgKind::lease_ans;
                reply.flag = m.old_primary && !m.fenced && !m.starting &&
                             msg.term >= m.disk.promised_term;
                reply.term = m.disk.promised_term;
                if (reply.flag) {
                    m.lease_expires = now + dur_ms(kLeaseTtlMs);
                    timer(i, *m.lease_expires, TimerKind::lease_check);
                }
                send(reply);
                return;
            case MsgKind::ping:
            case MsgKind::status_req:
                reply.kind = msg.kind == MsgKind::ping ? MsgKind::ping_ans : MsgKind::status_ans;
                reply.flag = m.old_primary && !m.fenced && !m.starting;
                reply.term = m.disk.promised_term;
                reply.role_term = m.old_primary ? m.disk.promised_term : 0;
                reply.leased = m.lease_expires.has_value();
                reply.lsn = m.lsn;
                send(reply);
                return;
            case MsgKind::ping_ans:
                if (msg.round != m.ping_round) return;
                ++m.ping_answers;
                if (msg.flag || msg.term > m.disk.promised_term) m.ping_saw_primary = true;
                return;
            case MsgKind::promote:
                if (msg.term <= m.disk.promised_term && m.old_primary) return;
                m.disk.promised_term = std::max(m.disk.promised_term, msg.term);
                m.disk_primary_term = msg.term;
                m.old_primary = true;
                m.fenced = m.starting = false;
                m.lease_expires.reset();
                if (!writable(i)) m.writable_since = now_;
                m.writable_until = kNever;
                m.writable_term = msg.term;
                log(i, "promoted with term " + std::to_string(msg.term) + " (writable)");
                return;
            case MsgKind::fence:
            case MsgKind::demote:
                m.disk.promised_term = std::max(m.disk.promised_term, msg.term);
                if (m.old_primary) stop_writes(i, now_ + p_.fencing_bound);
                if (msg.kind == MsgKind::demote) m.old_primary = false, m.disk_primary_term = 0;
                else m.fenced = true;
                m.lease_expires.reset();
                return;
            default: return;
        }
    }
    const int c = msg.to - n_;
    Controller& ctl = controllers_[c];
    switch (msg.kind) {
        case MsgKind::status_ans:
            if (msg.round == ctl.poll_round) {
                auto& v = ctl.views[msg.from];
                v.answered = true;
                v.promised = msg.term;
                v.role_term = msg.role_term;
                v.may_write = msg.flag;
                v.leased = msg.leased;
                v.lsn = msg.lsn;
            }
            return;
        case MsgKind::lease_ans:
            if (!msg.flag && msg.term > ctl.term && !ctl.superseded) {
                ctl.superseded = true;
                log(n_ + c, "the primary refused our lease: stands by");
            }
            return;
        default: return;
    }
}

void World::o_timer(int node, TimerKind kind) {
    if (!is_member(node)) {
        if (kind == TimerKind::poll) o_poll(node - n_);
        return;
    }
    Member& m = members_[node];
    const Instant now = now_of(node);
    if (kind == TimerKind::lease_check) {
        if (!m.old_primary || m.fenced || m.starting || !m.lease_expires || now < *m.lease_expires)
            return;
        o_ping_round(node);
        return;
    }
    if (kind == TimerKind::start_gate_done) {
        if (m.starting) o_ping_round(node);
        return;
    }
    if (kind != TimerKind::ping_done) return;
    const bool majority = static_cast<size_t>(m.ping_answers + 1) >= membership_.majority();
    if (m.starting) {
        if (m.ping_saw_primary) {
            m.starting = false;
            m.fenced = true;
            log(node, "start gate: another primary or a newer term: stays fenced");
        } else if (majority) {
            m.starting = false;
            m.writable_since = now_;
            m.writable_until = kNever;
            m.writable_term = m.disk.promised_term;
            m.lease_expires = now + dur_ms(kLeaseTtlMs);
            timer(node, *m.lease_expires, TimerKind::lease_check);
            log(node, "start gate: a majority answers: serves");
        } else {
            timer(node, now + dur_ms(1000), TimerKind::start_gate_done);  // asks again
        }
        return;
    }
    if (!m.old_primary || m.fenced || (m.lease_expires && now < *m.lease_expires)) return;
    if (majority && !m.ping_saw_primary) {
        log(node, "the lease lapsed but a majority answers: serving on");
        timer(node, now + dur_ms(250), TimerKind::lease_check);
        return;
    }
    log(node, "the lease lapsed and no majority answers (or another primary): fencing");
    m.fenced = true;
    m.lease_expires.reset();
    stop_writes(node, now_ + p_.fencing_bound);
}

void World::o_poll(int c) {
    Controller& ctl = controllers_[c];
    const int node = n_ + c;
    const Instant now = now_of(node);
    uint64_t highest = 0;
    bool any = false;
    for (const auto& v : ctl.views)
        if (v.answered) any = true, highest = std::max(highest, v.promised);
    auto send_to = [&](int j, MsgKind kind, uint64_t term) {
        Msg msg;
        msg.kind = kind;
        msg.from = node;
        msg.to = j;
        msg.term = term;
        send(msg);
    };
    if (any) {
        if (!ctl.term_learned) {
            ctl.term = highest + 1;  // the take-over
            ctl.term_learned = true;
        } else if (highest > ctl.term && !ctl.superseded) {
            ctl.superseded = true;
            log(node, "a member accepted a newer term: stands by");
        }
    }
    if (any && ctl.term_learned && !ctl.superseded) {
        int p = -1;
        for (int j = 0; j < n_; ++j) {
            const auto& v = ctl.views[j];
            if (v.answered && v.role_term > 0 && v.may_write &&
                (p < 0 || v.role_term > ctl.views[p].role_term))
                p = j;
        }
        if (p < 0) {
            if (!ctl.lost_since) ctl.lost_since = now;
            // As the controller's default: the lease ttl + 750 ms.
            if (now - *ctl.lost_since >= dur_ms(kLeaseTtlMs + 750)) {
                int cand = -1;
                for (int j = 0; j < n_; ++j)
                    if (ctl.views[j].answered && ctl.views[j].role_term == 0 &&
                        (cand < 0 || ctl.views[j].lsn > ctl.views[cand].lsn))
                        cand = j;
                bool leased = ctl.primary < 0 || ctl.leased_seen[ctl.primary];
                if (cand >= 0 && leased) {
                    uint64_t next = ctl.term + 1;
                    if (ctl.primary >= 0 && ctl.views[ctl.primary].answered)
                        send_to(ctl.primary, MsgKind::fence, next);
                    ctl.term = next;
                    log(node, "failover: promotes " + members_[cand].name + " with term " +
                                  std::to_string(next));
                    send_to(cand, MsgKind::promote, next);
                    ++out_.promotions;
                    ctl.primary = cand;
                    ctl.leased_seen[cand] = true;  // it leases it at once
                    ctl.lost_since.reset();
                }
            }
        } else {
            if (ctl.views[p].leased) ctl.leased_seen[p] = true;
            if (ctl.primary != p) {
                ctl.primary = p;
                ctl.leased_seen[p] = true;
                log(node, "adopts " + members_[p].name);
            }
            ctl.lost_since.reset();
            for (int j = 0; j < n_; ++j)
                if (j != p && ctl.views[j].answered && ctl.views[j].role_term > 0)
                    send_to(j, MsgKind::demote, ctl.term);
        }
    }
    // The lease loop: renewed on the primary it sees.
    if (!ctl.superseded && ctl.primary >= 0 && ctl.views[ctl.primary].answered &&
        ctl.views[ctl.primary].role_term > 0) {
        Msg msg;
        msg.kind = MsgKind::lease;
        msg.from = node;
        msg.to = ctl.primary;
        msg.term = ctl.term;
        send(msg);
    }
    ++ctl.poll_round;
    for (auto& v : ctl.views) v = ControllerView{};
    for (int j = 0; j < n_; ++j) {
        Msg msg;
        msg.kind = MsgKind::status_req;
        msg.from = node;
        msg.to = j;
        msg.round = ctl.poll_round;
        send(msg);
    }
    timer(node, now + dur_ms(500), TimerKind::poll);
}

}  // namespace sim
