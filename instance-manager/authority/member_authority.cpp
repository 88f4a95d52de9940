#include "authority/member_authority.hpp"

#include <algorithm>

namespace im::authority {

MemberAuthority::MemberAuthority(MemberParams params) : params_(params) {}

MemberAuthority MemberAuthority::restore(MemberParams params, DurableGrantState durable,
                                         Instant now) {
    MemberAuthority m(params);
    m.durable_ = std::move(durable);
    // It may have granted (or renewed) just before it stopped, and nobody can
    // say for how long: assume the longest it ever grants, from now.
    if (!m.durable_.granted_to.empty()) m.grant_expires_ = now + params.max_ttl;
    return m;
}

Duration MemberAuthority::grant_remaining(Instant now) const {
    if (!grant_expires_ || released_ || *grant_expires_ <= now) return Duration{0};
    return *grant_expires_ - now;
}

std::optional<Instant> MemberAuthority::in_use_until() const {
    if (!grant_expires_ || released_) return std::nullopt;
    return *grant_expires_ + real_to_own(params_.fencing_bound, params_.rho);
}

bool MemberAuthority::on_release(const std::string& holder, uint64_t term) {
    if (holder.empty() || holder != durable_.granted_to || term != durable_.granted_term)
        return false;
    released_ = true;
    return true;
}

Decision<PromiseAnswer> MemberAuthority::on_promise(const PromiseRequest& req, Instant now,
                                                    uint64_t received_lsn) {
    Decision<PromiseAnswer> d;
    d.reply.received_lsn = received_lsn;
    if (req.membership_version != params_.membership_version) {
        d.reply.ok = false;  // promised_term 0: not a newer term, another configuration
        return d;
    }
    const bool fresh = req.term > durable_.promised_term;
    const bool again = req.term == durable_.promised_term && !req.proposer.empty() &&
                       req.proposer == durable_.promised_to;
    if (!fresh && !again) {
        d.reply.ok = false;
        d.reply.promised_term = durable_.promised_term;
        return d;
    }
    if (fresh) {
        durable_.promised_term = req.term;
        durable_.promised_to = req.proposer;
        // Before the answer: a member that promised and forgot it after a
        // crash could renew an old grant behind the new proposer's back.
        d.persist = durable_;
    }
    d.reply.ok = true;
    d.reply.promised_term = durable_.promised_term;
    // Measured at the answer (an idempotent retry reports it afresh).
    d.reply.grant_remaining = grant_remaining(now);
    d.reply.quiet = !in_use_until() || *in_use_until() <= now;
    d.reply.durability = durable_.durability;
    return d;
}

Decision<GrantAnswer> MemberAuthority::on_grant(const GrantRequest& req, Instant now) {
    Decision<GrantAnswer> d;
    d.reply.seq = req.seq;
    d.reply.term = req.term;
    auto refuse = [&] {
        d.reply.ok = false;
        d.reply.promised_term = durable_.promised_term;
        return d;
    };
    if (req.membership_version != params_.membership_version || req.holder.empty() ||
        req.ttl.count() <= 0)
        return refuse();
    // Never below a promise: that is what the proposer's wait relies on.
    if (req.term < durable_.promised_term) return refuse();
    // One holder per term (and granted_term <= promised_term <= req.term).
    if (req.term == durable_.granted_term && !durable_.granted_to.empty() &&
        durable_.granted_to != req.holder)
        return refuse();
    // A new holder (or term) only once the current grant is out of use: the
    // rule that keeps two primaries from ever writing at once.
    const bool new_holder = req.term != durable_.granted_term || req.holder != durable_.granted_to;
    if (new_holder)
        if (auto busy = in_use_until(); busy && now < *busy) return refuse();
    DurableGrantState next = durable_;
    if (req.term > next.promised_term) {
        next.promised_term = req.term;
        next.promised_to.clear();
    }
    if (new_holder) grant_expires_.reset();
    next.granted_term = req.term;
    next.granted_to = req.holder;
    // Kept only from the holder it grants to, in its term: the failover
    // reads it from the promises (durability.hpp).
    if (req.durability && req.durability->term == req.term &&
        req.durability->newer_than(next.durability))
        next.durability = *req.durability;
    // Only a change of holder, term or record needs the fsync: a restart
    // assumes a running grant to granted_to anyway, so renewals need not be
    // durable; a record must be, before the answer that confirms it.
    if (!(next == durable_)) {
        durable_ = next;
        d.persist = durable_;
    }
    Duration granted = std::min(req.ttl, params_.max_ttl);
    Instant until = now + granted;
    released_ = false;
    grant_expires_ = grant_expires_ ? std::max(*grant_expires_, until) : until;
    d.reply.ok = true;
    d.reply.granted = granted;
    d.reply.promised_term = durable_.promised_term;
    d.reply.durability_version =
        durable_.durability.term == req.term ? durable_.durability.version : 0;
    d.reply.durability_match = req.durability && durable_.durability == *req.durability;
    return d;
}

}  // namespace im::authority
