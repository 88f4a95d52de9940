#include "authority/promotion.hpp"

#include <algorithm>
#include <tuple>

namespace im::authority {

Promotion::Promotion(std::string proposer, uint64_t term, Membership membership,
                     std::map<std::string, int> priority, PromotionParams params, Instant now)
    : membership_(std::move(membership)),
      priority_(std::move(priority)),
      params_(params),
      started_(now) {
    request_.term = term;
    request_.proposer = std::move(proposer);
    request_.membership_version = membership_.version;
}

std::vector<std::string> Promotion::due_sends(Instant now) {
    std::vector<std::string> out;
    if (decided_ || done_) return out;
    if (sent_once_ && now - last_send_ < params_.resend_every) return out;
    for (const auto& name : membership_.names)
        if (!promises_.count(name)) out.push_back(name);
    sent_once_ = true;
    last_send_ = now;
    return out;
}

void Promotion::on_answer(const std::string& member, const PromiseAnswer& answer, Instant now) {
    if (done_ || decided_ || !membership_.contains(member)) return;
    if (!answer.ok) {
        // Another proposer holds this term or a newer one: learn it, stand by.
        if (answer.promised_term >= request_.term)
            newer_term_ = std::max(newer_term_, answer.promised_term);
        return;
    }
    if (answer.promised_term != request_.term) return;  // not an answer to this round
    // The first answer is enough (a duplicate or a retry is ignored): once
    // it promised, the member grants no older term, so the end it reported
    // cannot move later.
    if (promises_.emplace(member, Promise{answer, now}).second &&
        promises_.size() >= membership_.majority() && !majority_at_)
        majority_at_ = now;
}

bool Promotion::decide(Instant now) {
    if (decided_) return true;
    if (!majority_at_) return false;
    if (promises_.size() < membership_.size() && now - *majority_at_ < params_.collect_grace)
        return false;
    auto prio = [&](const std::string& name) {
        auto it = priority_.find(name);
        return it == priority_.end() ? 0 : it->second;
    };
    const std::string* best = nullptr;
    uint64_t best_lsn = 0;
    Instant until = now;
    bool all_quiet = true;
    for (const auto& [name, p] : promises_) {
        all_quiet = all_quiet && p.answer.quiet;
        // Every promiser's grants are waited out, candidate or not: that is
        // what stops an older primary counting any majority.
        until = std::max(until, p.received + stretch_to_own(p.answer.grant_remaining, params_.rho));
        if (prio(name) < 0) continue;
        auto key = std::make_tuple(p.answer.received_lsn, prio(name));
        if (!best || key > std::make_tuple(best_lsn, prio(*best)) ||
            (key == std::make_tuple(best_lsn, prio(*best)) && name < *best)) {
            best = &name;
            best_lsn = p.answer.received_lsn;
        }
    }
    PromotionStep s;
    if (!best) {
        s.kind = PromotionStep::Kind::failed;
        s.reason = "no promiser may be promoted (all have a negative priority)";
    } else {
        s.kind = PromotionStep::Kind::waiting;
        s.candidate = *best;
        s.candidate_lsn = best_lsn;
        s.term = request_.term;
        // The most advanced promiser's LSN: the hook for synchronous-mode
        // durability (the candidate must have at least this before serving).
        for (const auto& [name, p] : promises_) s.min_lsn = std::max(s.min_lsn, p.answer.received_lsn);
        // Every promiser quiet (no grant of theirs can be in use: a clean
        // switchover, a fresh cluster): nobody can still be committing.
        s.until = all_quiet ? until
                            : until + real_to_own(params_.fencing_bound, params_.rho) + params_.margin;
    }
    decided_ = s;
    return true;
}

PromotionStep Promotion::step(Instant now) {
    if (final_) return *final_;
    auto finish = [&](PromotionStep s) {
        final_ = s;
        done_ = true;
        return s;
    };
    if (newer_term_ != 0) {
        PromotionStep s;
        s.kind = PromotionStep::Kind::superseded;
        s.newer_term = newer_term_;
        return finish(s);
    }
    if (decide(now)) {
        if (decided_->kind == PromotionStep::Kind::failed) return finish(*decided_);
        if (now < decided_->until) return *decided_;
        PromotionStep s = *decided_;
        s.kind = PromotionStep::Kind::promote;
        return finish(s);
    }
    if (now - started_ >= params_.round_timeout) {
        PromotionStep s;
        s.kind = PromotionStep::Kind::failed;
        s.reason = "no majority promised term " + std::to_string(request_.term) + " in time";
        return finish(s);
    }
    return PromotionStep{};
}

std::vector<std::string> Promotion::promisers() const {
    std::vector<std::string> out;
    for (const auto& [name, p] : promises_) out.push_back(name);
    return out;
}

DurabilityRecord Promotion::newest_record() const {
    std::vector<DurabilityRecord> records;
    for (const auto& [name, p] : promises_) records.push_back(p.answer.durability);
    return authority::newest_record(records);
}

Instant Promotion::next_wakeup() const {
    if (decided_) return decided_->until;
    Instant t = started_ + params_.round_timeout;
    if (majority_at_) t = std::min(t, *majority_at_ + params_.collect_grace);
    if (sent_once_) t = std::min(t, last_send_ + params_.resend_every);
    return t;
}

Proposer::Proposer(std::string id, ProposerParams params, uint64_t own_term)
    : id_(std::move(id)), params_(params), own_term_(own_term), highest_seen_(own_term) {}

void Proposer::observe_term(uint64_t term, Instant now) {
    if (term > own_term_ && (!stood_by_ || term > highest_seen_)) {
        stood_by_ = true;
        stood_by_since_ = now;
    }
    highest_seen_ = std::max(highest_seen_, term);
}

void Proposer::on_superseded(uint64_t term, Instant now) {
    highest_seen_ = std::max(highest_seen_, term);
    // The same term refused: another proposer got there first. Standing by
    // (and taking over only after takeover_delay) keeps two from racing.
    if (term >= own_term_) {
        stood_by_ = true;
        stood_by_since_ = now;
    }
}

void Proposer::on_promoted(Instant now) {
    if (no_primary_since_) no_primary_since_ = now;
}

void Proposer::observe_poll(bool writable_primary_seen, Instant now) {
    if (writable_primary_seen)
        no_primary_since_.reset();
    else if (!no_primary_since_)
        no_primary_since_ = now;
}

bool Proposer::should_propose(Instant now) const {
    if (!no_primary_since_) return false;
    if (last_round_ && now - *last_round_ < params_.retry_after) return false;
    // A proposer that learned of a newer term stands by: someone else is in
    // charge, and racing it would only make both fail.
    if (stood_by_) {
        Instant since = std::max(*no_primary_since_, stood_by_since_.value_or(*no_primary_since_));
        return now - since >= params_.takeover_delay;
    }
    return now - *no_primary_since_ >= params_.failover_delay;
}

uint64_t Proposer::begin_round(Instant now) {
    own_term_ = highest_seen_ + 1;
    highest_seen_ = own_term_;
    stood_by_ = false;
    last_round_ = now;
    return own_term_;
}

}  // namespace im::authority
