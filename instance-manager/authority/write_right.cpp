#include "authority/write_right.hpp"

#include <algorithm>
#include <vector>

namespace im::authority {

WriteRight::WriteRight(std::string self, uint64_t term, Membership membership,
                       WriteRightParams params, uint64_t first_seq)
    : self_(std::move(self)),
      term_(term),
      membership_(std::move(membership)),
      params_(params),
      seq_(first_seq) {}

GrantRequest WriteRight::begin_round(Instant now) {
    if (++seq_ == 0) ++seq_;  // 0 never names a round
    rounds_[seq_ % kRoundsKept] = {seq_, now};
    next_renewal_ = now + params_.ttl / 3;
    GrantRequest r;
    r.holder = self_;
    r.term = term_;
    r.ttl = params_.ttl;
    r.membership_version = membership_.version;
    r.seq = seq_;
    if (record_.version > 0) r.durability = record_;
    return r;
}

AnswerOutcome WriteRight::on_answer(const std::string& member, const GrantAnswer& answer) {
    if (!membership_.contains(member)) return AnswerOutcome::ignored;
    if (!answer.ok) {
        if (answer.promised_term > term_) {
            superseded_ = std::max(superseded_.value_or(0), answer.promised_term);
            return AnswerOutcome::superseded;
        }
        return AnswerOutcome::refused;
    }
    const auto& [seq, sent_at] = rounds_[answer.seq % kRoundsKept];
    if (answer.term != term_ || answer.seq == 0 || seq != answer.seq) return AnswerOutcome::ignored;
    // The member started its grant no earlier than our send: count from the
    // send, converted conservatively to our clock (clock_bounds.hpp).
    Instant until = sent_at + shrink_to_own(answer.granted, params_.rho);
    auto [it, inserted] = valid_until_.emplace(member, until);
    if (!inserted) it->second = std::max(it->second, until);  // a late answer never shortens
    auto& confirmed = confirmed_[member];
    if (answer.durability_match) {
        confirmed = std::max(confirmed, answer.durability_version);
    } else if (record_.version > 0 && answer.durability_version >= record_.version) {
        // The member holds this version (or a later one) of our term with
        // other sets: an incarnation of ours before a restart sent it. Ours
        // goes above it, the same sets, and is sent with the next round.
        record_.version = answer.durability_version + 1;
    }
    return AnswerOutcome::recorded;
}

std::optional<Instant> WriteRight::deadline() const {
    if (superseded_) return std::nullopt;
    const size_t need = membership_.majority();
    if (valid_until_.size() < need || need == 0) return std::nullopt;
    std::vector<Instant> ends;
    ends.reserve(valid_until_.size());
    for (const auto& [name, until] : valid_until_) ends.push_back(until);
    // The need-th latest: until then at least `need` grants run.
    std::nth_element(ends.begin(), ends.begin() + static_cast<std::ptrdiff_t>(need - 1), ends.end(),
                     std::greater<>());
    return ends[need - 1];
}

void WriteRight::continue_record(const DurabilityRecord& start) {
    record_.term = term_;
    record_.version = start.term == term_ ? start.version : 0;
    if (record_.version > 0) record_.sets = start.sets;  // the same record goes on
    set_record(start.sets);
}

void WriteRight::set_record(std::vector<QuorumSet> sets) {
    if (record_.version > 0 && record_.sets == sets) return;
    record_.term = term_;
    ++record_.version;
    record_.sets = std::move(sets);
}

uint64_t WriteRight::recorded_version() const {
    const size_t need = membership_.majority();
    std::vector<uint64_t> v;
    for (const auto& name : membership_.names) {
        auto it = confirmed_.find(name);
        v.push_back(it == confirmed_.end() ? 0 : it->second);
    }
    if (need == 0 || v.size() < need) return 0;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(need - 1), v.end(),
                     std::greater<>());
    return v[need - 1];
}

bool WriteRight::may_write(Instant now) const {
    auto d = deadline();
    return d && now < *d;
}

}  // namespace im::authority
