// The write authority by quorum in the simulator: thin shells around the
// real MemberAuthority, WriteRight, Promotion and Proposer, doing for them
// what the daemon and the controller will do (persist, send, set timers).
#include <algorithm>

#include "sim_world.hpp"

namespace sim {

namespace {
MemberParams member_params(const Params& p) { return MemberParams{1, p.max_ttl}; }
WriteRightParams right_params(const Params& p) { return WriteRightParams{p.ttl, p.rho}; }
std::string us(Duration d) { return std::to_string(d.count() / 1000) + " ms"; }
}  // namespace

void World::q_init() {
    // Bootstrapped: h1 is primary of term 1, which c1 proposed and every
    // member promised; c2 (if any) is a newer controller that learns the
    // term from its polls and stands by.
    for (int i = 0; i < n_; ++i) {
        Member& m = members_[i];
        m.disk = DurableGrantState{1, "c1", 1, "h1", {}};
        if (i == 0) m.disk_primary_term = m.disk_promoted_max = 1;
        q_started(i);
    }
    // Some seeds switch over now and then (demote, release, promise, promote).
    switch_rate_ = rng_.chance(0.4) ? rng_.unit() * 0.15 : 0;
    for (int c = 0; c < c_; ++c) {
        Controller& ctl = controllers_[c];
        ProposerParams pp;
        pp.failover_delay = p_.failover_delay;
        // Different takeover delays, so that two stood-by proposers do not
        // keep colliding on the same term.
        pp.takeover_delay = std::chrono::milliseconds(rng_.range(6000, 10000));
        pp.retry_after = std::chrono::milliseconds(1000);
        ctl.proposer.emplace(ctl.name, pp, c == 0 ? 1 : 0);
        timer(n_ + c, now_of(n_ + c) + std::chrono::milliseconds(rng_.range(0, 1000)),
              TimerKind::poll);
    }
}

void World::q_started(int i) {
    Member& m = members_[i];
    m.auth = MemberAuthority::restore(member_params(p_), m.disk, now_of(i));
    m.right.reset();
    m.flushed.clear();
    m.lsn = p_.sync ? m.log.size() : m.lsn;
    if (m.disk_primary_term > 0) {
        // A primary comes back under the same term and must gather a
        // majority again before it writes.
        m.right.emplace(m.name, m.disk_primary_term, membership_, right_params(p_), rng_.next());
        q_hold(i, DurabilityRecord{});
        q_renew(i);
    }
}

QuorumSet World::q_set(int i) const {
    QuorumSet q{0, {}};
    for (int j = 0; j < n_; ++j)
        // As the controller's synchronous_spec: a member never promoted
        // (h5 in some seeds) is no synchronous standby.
        if (j != i && !(n_ == 5 && seed_ % 5 == 0 && members_[j].name == "h5"))
            q.standbys.push_back(members_[j].name);
    q.number = std::min<unsigned>(p_.sync, static_cast<unsigned>(q.standbys.size()));
    std::sort(q.standbys.begin(), q.standbys.end());
    return q;
}

void World::q_hold(int i, const DurabilityRecord& inherited) {
    if (!p_.sync) return;
    Member& m = members_[i];
    // As the daemon's take_write_right: the newest record known (its own
    // member's, or the promotion's), the inherited sets, and its own set.
    auto start = newest_record({m.disk.durability, inherited});
    for (const auto& s : inherited.sets) start.sets = switching_sets(start.sets, s);
    m.right->continue_record(start);
    m.right->set_record(switching_sets(m.right->record().sets, q_set(i)));
    m.flushed.clear();
}

void World::q_take_log(int i, uint64_t term, const std::vector<uint64_t>& log) {
    Member& m = members_[i];
    if (term > m.log_term) {
        // A newer primary's history: its own extra WAL is rewound away.
        m.log = log;
        m.log_term = term;
        m.own_branch = false;
    } else if (term == m.log_term && log.size() > m.log.size()) {
        m.log = log;  // more of the same primary's WAL (an older message is no news)
    }
    m.lsn = m.log.size();
}

void World::q_acknowledge(int i) {
    Member& m = members_[i];
    if (!p_.sync || !m.right || !writable(i)) return;  // a stopped postgres acknowledges nothing
    const QuorumSet set = q_set(i);
    std::vector<uint64_t> have;
    std::vector<std::pair<std::string, uint64_t>> flushed;
    for (const auto& name : set.standbys) {
        auto it = m.flushed.find(name);
        have.push_back(it == m.flushed.end() ? 0 : it->second);
        flushed.emplace_back(name, have.back());
    }
    std::sort(have.begin(), have.end(), std::greater<>());
    const uint64_t upto = have.size() >= set.number ? have[set.number - 1] : 0;
    for (uint64_t p = 0; p < upto && p < m.log.size(); ++p)
        if (acked_.insert(m.log[p]).second) ++out_.acknowledged;
    // The older sets leave the record once the set flushed past where it
    // took effect (daemon/synchronous.cpp).
    const auto& rec = m.right->record();
    if (m.right->recorded_version() >= rec.version &&
        !(rec.sets.size() == 1 && rec.sets.front() == set) &&
        switch_complete(set, rec.sets, m.since, flushed)) {
        m.right->set_record({set});
        log(i, "synchronous switch complete: record v" + std::to_string(m.right->record().version) +
                   " " + describe(m.right->record().sets));
    }
}

void World::send_to_others(int i, Msg msg) {
    msg.from = i;
    for (int j = 0; j < n_; ++j) {
        if (j == i) continue;
        msg.to = j;
        send(msg);
    }
}

void World::q_renew(int i) {
    Member& m = members_[i];
    if (!m.right) return;
    const Instant now = now_of(i);
    if (writable(i)) {  // it commits
        if (p_.sync) m.log.push_back(next_commit_++);
        ++m.lsn;
    }
    GrantRequest req = m.right->begin_round(now);
    Msg msg;
    msg.kind = MsgKind::grant_req;
    msg.greq = req;
    msg.lsn = m.lsn;
    if (p_.sync) msg.log = m.log;
    send_to_others(i, msg);
    timer(i, m.right->next_renewal(), TimerKind::renew);
    // Its own member grants like any other (no network in between).
    auto d = m.auth->on_grant(req, now);
    if (d.persist) {
        m.disk = *d.persist;
        if (after_persist(i)) return;
    }
    m.right->on_answer(m.name, d.reply);
    q_right_changed(i);
}

void World::q_right_changed(int i) {
    Member& m = members_[i];
    if (!m.right) return;
    if (m.right->superseded()) {
        log(i, "superseded by term " + std::to_string(*m.right->newer_term()) + ": steps down");
        ++out_.step_downs;
        m.right.reset();
        m.disk_primary_term = 0;
        stop_writes(i, now_ + p_.fencing_bound);  // the manager fences at once
        return;
    }
    const Instant now = now_of(i);
    if (!m.right->may_write(now)) return;
    // Synchronous: postgres is started (or promoted) only once a majority
    // stored the record naming its set (the gather waits for it).
    if (p_.sync && !writable(i) && m.right->recorded_version() < m.right->record().version) return;
    // The watchdog is fed the deadline; postgres stops by deadline + F.
    RealTime until = clocks_[i].real_at(*m.right->deadline()) + p_.fencing_bound;
    if (!writable(i)) {
        if (p_.sync) {
            // The checker: it holds every commit acknowledged so far.
            std::set<uint64_t> has(m.log.begin(), m.log.end());
            for (uint64_t id : acked_)
                if (!has.count(id)) {
                    out_.violation = true;
                    out_.what = "acknowledged commit " + std::to_string(id) + " lost: " + m.name +
                                " becomes writable (term " + std::to_string(m.right->term()) +
                                ") without it";
                    for (const auto& f : faults_)
                        if (f.active || (f.end <= now_ && f.end + ms(10000) > now_))
                            out_.active.push_back(f.kind);
                    return;
                }
            m.since = m.log.size();
            // From here its WAL is its own (the daemon: pg_promote, a new
            // timeline): a former primary until a newer one rewinds it.
            if (!m.own_branch || m.log_term != m.right->term()) {
                m.fork_parent = m.log_term;
                m.fork_len = m.log.size();
            }
            m.log_term = m.right->term();
            m.own_branch = true;
        }
        m.writable_since = now_;
        m.writable_until = until;
        m.writable_term = m.right->term();
        log(i, "writable (term " + std::to_string(m.right->term()) + ")");
    } else {
        m.writable_until = std::max(m.writable_until, until);
        m.writable_term = m.right->term();
    }
}

void World::q_message(const Msg& msg) {
    if (is_member(msg.to)) {
        const int i = msg.to;
        Member& m = members_[i];
        const Instant now = now_of(i);
        Msg reply;
        reply.from = i;
        reply.to = msg.from;
        switch (msg.kind) {
            case MsgKind::grant_req: {
                auto d = m.auth->on_grant(msg.greq, now);
                if (d.persist) {
                    m.disk = *d.persist;
                    if (after_persist(i)) return;
                }
                if (d.reply.ok) {
                    if (p_.sync)
                        q_take_log(i, msg.greq.term, msg.log);
                    else
                        m.lsn = std::max(m.lsn, msg.lsn);
                }
                reply.kind = MsgKind::grant_ans;
                reply.gans = d.reply;
                if (p_.sync) reply.log = m.log;
                send(reply);
                if (d.persist) after_reply(i);
                return;
            }
            case MsgKind::promise_req: {
                // A bounce just before: the proposer's retry then finds a
                // member that lost its volatile grant expiry.
                if (crash_after_persist_ > 0 && rng_.chance(crash_after_persist_)) {
                    crash(i);
                    push(now_ + rng_.range(ms(5), ms(300)), EvKind::timer, i, 0, TimerKind::restart);
                    return;
                }
                auto d = m.auth->on_promise(msg.preq, now, m.lsn);
                if (d.persist) {
                    m.disk = *d.persist;
                    log(i, "promised term " + std::to_string(msg.preq.term) + " to " +
                               msg.preq.proposer + " (grants run " +
                               us(d.reply.grant_remaining) + " more)");
                    if (after_persist(i)) return;
                }
                reply.kind = MsgKind::promise_ans;
                reply.pans = d.reply;
                send(reply);
                if (d.reply.ok) after_reply(i);  // did the promise reach the disk?
                return;
            }
            case MsgKind::status_req:
                reply.kind = MsgKind::status_ans;
                reply.term = m.auth->durable().promised_term;
                reply.role_term = m.right ? m.right->term() : 0;
                reply.flag = m.right && m.right->may_write(now);
                reply.lsn = m.lsn;
                reply.round = msg.round;
                reply.follows = !m.right && !m.own_branch;
                reply.log_term = m.log_term;
                if (!m.right && m.own_branch) {
                    // A former primary: what it holds of the history it
                    // branched from (its own branch was no standby's).
                    reply.fork = true;
                    reply.log_term = m.fork_parent;
                    reply.lsn = m.fork_len;
                }
                send(reply);
                return;
            case MsgKind::promote:
                if (msg.term <= m.disk_promoted_max) return;  // a late or repeated promote
                m.disk_primary_term = m.disk_promoted_max = msg.term;
                log(i, "promoted with term " + std::to_string(msg.term));
                m.right.emplace(m.name, msg.term, membership_, right_params(p_), rng_.next());
                q_hold(i, msg.record);
                q_renew(i);
                return;
            case MsgKind::grant_ans:
                if (!m.right) return;
                m.right->on_answer(name_of(msg.from), msg.gans);
                if (p_.sync && msg.gans.ok && msg.gans.term == m.right->term()) {
                    // What the member flushed of our WAL: the common prefix.
                    uint64_t same = 0;
                    while (same < msg.log.size() && same < m.log.size() &&
                           msg.log[same] == m.log[same])
                        ++same;
                    auto& f = m.flushed[name_of(msg.from)];
                    f = std::max(f, same);
                }
                q_right_changed(i);
                q_acknowledge(i);
                return;
            case MsgKind::demote: {
                // The daemon's demote: persist that this term is never asked
                // again, stop postgres, give the grants back, answer.
                if (!m.right || m.right->term() >= msg.term) return;
                const uint64_t held = m.right->term();
                m.disk_primary_term = 0;
                if (after_persist(i)) return;
                stop_writes(i, now_);
                m.right.reset();
                log(i, "demoted for a switchover: releases its grants of term " +
                           std::to_string(held));
                m.auth->on_release(m.name, held);
                Msg rel;
                rel.kind = MsgKind::release;
                rel.term = held;
                send_to_others(i, rel);
                reply.kind = MsgKind::demoted;
                reply.term = msg.term;
                send(reply);
                return;
            }
            case MsgKind::release:
                if (m.auth->on_release(name_of(msg.from), msg.term)) ++out_.releases;
                return;
            default: return;
        }
    }
    const int c = msg.to - n_;
    Controller& ctl = controllers_[c];
    switch (msg.kind) {
        case MsgKind::status_ans:
            if (ctl.read_term != 0 && msg.round == ctl.read_round) {
                // A reading after the round's wait: a running replica's WAL.
                if (msg.role_term == 0 && (msg.follows || msg.fork)) {
                    auto it = ctl.round_priority.find(name_of(msg.from));
                    const int prio = it == ctl.round_priority.end() ? 0 : it->second;
                    ctl.readings[msg.from] = Reading{name_of(msg.from),
                                                     static_cast<uint32_t>(msg.log_term), msg.lsn,
                                                     msg.follows && prio >= 0, prio};
                }
                return;
            }
            if (msg.round == ctl.poll_round) {
                auto& v = ctl.views[msg.from];
                v.answered = true;
                v.promised = msg.term;
                v.role_term = msg.role_term;
                v.may_write = msg.flag;
                v.lsn = msg.lsn;
            }
            return;
        case MsgKind::demoted: {
            if (ctl.switch_term != msg.term || ctl.round) return;
            std::map<std::string, int> priority;
            for (int j = 0; j < n_; ++j) priority[name_of(j)] = j == ctl.switch_target ? 0 : -1;
            PromotionParams pp;
            ctl.round_priority = priority;
            ctl.round.emplace(ctl.name, msg.term, membership_, priority, pp, now_of(msg.to));
            log(msg.to, "switchover: asks for promises of term " + std::to_string(msg.term));
            ctl.switch_term = 0;
            q_promotion_step(c);
            return;
        }
        case MsgKind::promise_ans:
            if (!ctl.round) return;
            if (p_.rogue_proposer) {
                PromiseAnswer a = msg.pans;
                a.grant_remaining = Duration{0};  // it does not listen
                ctl.round->on_answer(name_of(msg.from), a, now_of(msg.to));
            } else {
                ctl.round->on_answer(name_of(msg.from), msg.pans, now_of(msg.to));
            }
            q_promotion_step(c);
            return;
        default: return;
    }
}

void World::q_timer(int node, TimerKind kind) {
    if (is_member(node)) {
        if (kind == TimerKind::renew && members_[node].right &&
            now_of(node) >= members_[node].right->next_renewal())
            q_renew(node);
        return;
    }
    const int c = node - n_;
    if (kind == TimerKind::poll) q_poll(c);
    if (kind == TimerKind::promotion) {
        controllers_[c].round_wake.reset();
        q_promotion_step(c);
    }
    if (kind == TimerKind::reading_done) q_reading_done(c);
}

void World::q_poll(int c) {
    Controller& ctl = controllers_[c];
    const int node = n_ + c;
    const Instant now = now_of(node);
    bool seen = false;
    for (const auto& v : ctl.views) {
        if (!v.answered) continue;
        ctl.proposer->observe_term(v.promised, now);
        ctl.proposer->observe_term(v.role_term, now);
        seen = seen || v.may_write;
    }
    ctl.proposer->observe_poll(seen, now);
    if (ctl.switch_term != 0 && now >= ctl.switch_until) ctl.switch_term = 0;  // no answer: give up
    int writer = -1;
    for (int j = 0; j < n_; ++j)
        if (ctl.views[j].answered && ctl.views[j].may_write) writer = j;
    if (!ctl.round && ctl.switch_term == 0 && writer >= 0 && !ctl.proposer->stood_by() &&
        switch_rate_ > 0 && rng_.chance(switch_rate_)) {
        int target = static_cast<int>(rng_.range(0, n_ - 1));
        if (target != writer && ctl.views[target].answered) {
            uint64_t term = ctl.proposer->begin_round(now);
            ctl.switch_term = term;
            ctl.switch_target = target;
            ctl.switch_until = now + std::chrono::seconds(5);
            ++out_.switchovers;
            log(node, "switchover " + name_of(writer) + " -> " + name_of(target) + " (term " +
                          std::to_string(term) + ")");
            Msg msg;
            msg.kind = MsgKind::demote;
            msg.from = node;
            msg.to = writer;
            msg.term = term;
            send(msg);
        }
    }
    if (!ctl.round && ctl.switch_term == 0 && ctl.proposer->should_propose(now)) {
        if (ctl.proposer->stood_by()) ++out_.takeovers;
        uint64_t term = ctl.proposer->begin_round(now);
        std::map<std::string, int> priority;
        // A member that is never promoted, in some seeds.
        if (n_ == 5 && seed_ % 5 == 0) priority["h5"] = -1;
        PromotionParams pp;
        if (p_.rogue_proposer) {
            pp.fencing_bound = Duration{0};
            pp.margin = Duration{0};
            pp.collect_grace = Duration{0};
        }
        ctl.round_priority = priority;
        ctl.round.emplace(ctl.name, term, membership_, priority, pp, now);
        log(node, "no writable primary: asks for promises of term " + std::to_string(term));
        q_promotion_step(c);
    }
    ++ctl.poll_round;
    for (auto& v : ctl.views) v = ControllerView{};
    q_ask_status(c, ctl.poll_round);
    timer(node, now + p_.poll_interval, TimerKind::poll);
}

void World::q_ask_status(int c, uint64_t round) {
    for (int j = 0; j < n_; ++j) {
        Msg msg;
        msg.kind = MsgKind::status_req;
        msg.from = n_ + c;
        msg.to = j;
        msg.round = round;
        send(msg);
    }
}

int World::member_index(const std::string& name) const {
    return static_cast<int>(std::find(membership_.names.begin(), membership_.names.end(), name) -
                            membership_.names.begin());
}

void World::q_promotion_step(int c) {
    Controller& ctl = controllers_[c];
    if (!ctl.round) return;
    const int node = n_ + c;
    const Instant now = now_of(node);
    for (const auto& name : ctl.round->due_sends(now)) {
        Msg msg;
        msg.kind = MsgKind::promise_req;
        msg.from = node;
        msg.to = member_index(name);
        msg.preq = ctl.round->request();
        send(msg);
    }
    PromotionStep s = ctl.round->step(now);
    switch (s.kind) {
        case PromotionStep::Kind::asking:
        case PromotionStep::Kind::waiting: q_schedule_round(c); return;
        case PromotionStep::Kind::promote: {
            const DurabilityRecord rec = p_.sync ? ctl.round->newest_record() : DurabilityRecord{};
            if (!rec.sets.empty() && !p_.sync_stale) {
                // Read every member again (the round's answers may predate
                // the old primary's last commits), then the real rule.
                ctl.read_term = s.term;
                ctl.read_record = rec;
                ctl.read_round = (uint64_t{1} << 40) + ++ctl.reads;
                ctl.readings.assign(static_cast<size_t>(n_), std::nullopt);
                q_ask_status(c, ctl.read_round);
                timer(node, now + std::chrono::milliseconds(300), TimerKind::reading_done);
                break;
            }
            log(node, "promotes " + s.candidate + " with term " + std::to_string(s.term));
            q_send_promote(c, s.candidate, s.term, s.min_lsn, rec);
            break;
        }
        case PromotionStep::Kind::superseded:
            log(node, "term " + std::to_string(ctl.round->term()) + " refused: term " +
                          std::to_string(s.newer_term) + " exists, stands by");
            ctl.proposer->on_superseded(s.newer_term, now);
            ++out_.superseded_rounds;
            break;
        case PromotionStep::Kind::failed: log(node, "promotion failed: " + s.reason); break;
    }
    ctl.round.reset();
}

void World::q_reading_done(int c) {
    Controller& ctl = controllers_[c];
    if (ctl.read_term == 0) return;
    const int node = n_ + c;
    std::vector<Reading> readings;
    for (const auto& r : ctl.readings)
        if (r) readings.push_back(*r);
    const uint64_t term = ctl.read_term;
    ctl.read_term = 0;
    auto choice = choose_candidate(ctl.read_record, readings);
    if (!choice.ok) {
        ++out_.sync_blocked;
        log(node, "no failover (term " + std::to_string(term) + "): " + choice.reason);
        return;
    }
    log(node, "promotes " + choice.candidate + " with term " + std::to_string(term) +
                  " (synchronous: holds " + std::to_string(choice.min_lsn) + ")");
    q_send_promote(c, choice.candidate, term, choice.min_lsn, ctl.read_record);
}

void World::q_send_promote(int c, const std::string& candidate, uint64_t term, uint64_t min_lsn,
                           const DurabilityRecord& record) {
    const int node = n_ + c;
    ++out_.promotions;
    controllers_[c].proposer->on_promoted(now_of(node));
    Msg msg;
    msg.kind = MsgKind::promote;
    msg.from = node;
    msg.to = member_index(candidate);
    msg.term = term;
    msg.lsn = min_lsn;
    msg.record = record;
    send(msg);
}

void World::q_schedule_round(int c) {
    Controller& ctl = controllers_[c];
    Instant wake = ctl.round->next_wakeup();
    if (ctl.round_wake && *ctl.round_wake <= wake) return;
    ctl.round_wake = wake;
    timer(n_ + c, wake, TimerKind::promotion);
}

bool World::q_settled() {
    int primaries = 0, who = -1;
    for (int i = 0; i < n_; ++i) {
        const Member& m = members_[i];
        if (!m.up || m.paused) return false;
        if (m.right) ++primaries, who = i;
    }
    return primaries == 1 && writable(who) && members_[who].right->may_write(now_of(who));
}

}  // namespace sim
