#pragma once
// A member's side of the write authority, on the daemon: the pure
// MemberAuthority (authority/member_authority.hpp) behind the promise, grant
// and release endpoints, with what it must remember persisted (fsync'd)
// before each answer that depends on it. It answers in every role (a replica
// grants to its primary, a fenced member still promises) and never waits for
// a role command: a grant stuck behind a rewind would stop the primary.
//
// Membership (decided here; changing it is not built yet): with --membership
// a member belongs to that set only and refuses any other; without it, it
// learns the membership from the first promise that names it (two proposers
// configured with different sets could then split the members: set it on
// every member in production, as the manifests do). Either way the
// membership is persisted with the first promise, and from then on the
// member answers only requests of that membership (same version, same
// names); before it, it grants nothing ("a member that is not yet a member
// neither grants nor counts"), and a member left out of a membership never
// promises in it.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "authority/member_authority.hpp"
#include "quorum/grant_store.hpp"

namespace im::quorum {

using authority::Duration;
using authority::Instant;

// The authority's own clock on the daemon: CLOCK_BOOTTIME (the watchdog
// reads the same clock, so an instant needs no conversion between them).
Instant own_now();

class MemberService {
  public:
    // `configured`: the membership set on this member (sorted names; empty:
    // learned from the first promise).
    MemberService(std::string self, GrantStore store, Duration max_ttl,
                  std::vector<std::string> configured = {});
    // Reads the stored state: after a restart, a grant of max_ttl to the
    // last holder is assumed to run from `now`.
    Status load(Instant now);

    // The endpoints' bodies, already checked against their field lists.
    // Refusals are answers (200, ok false, with a reason); an error is only
    // a failure to persist (500: nothing is answered as promised or granted).
    Result<nlohmann::json> promise(const nlohmann::json& body, uint64_t received_lsn, Instant now);
    Result<nlohmann::json> grant(const nlohmann::json& body, Instant now);
    nlohmann::json release(const nlohmann::json& body);

    // The same for the primary's own member, without HTTP.
    Result<authority::GrantAnswer> grant(const authority::GrantRequest& req, Instant now);
    bool release(const std::string& holder, uint64_t term);

    const authority::Membership& membership() const { return stored_.membership; }
    const authority::DurableGrantState& durable() const { return stored_.grants; }
    Duration grant_remaining(Instant now) const;
    // For /v1/status and /metrics.
    nlohmann::json status(Instant now) const;

  private:
    Status persist(const authority::DurableGrantState& grants,
                   const authority::Membership& membership);
    authority::MemberParams params(uint64_t version) const;

    std::string self_;
    GrantStore store_;
    Duration max_ttl_;
    std::vector<std::string> configured_;
    StoredAuthority stored_;
    std::optional<authority::MemberAuthority> auth_;  // set once a membership is known
};

// JSON forms of the messages (the endpoints, the keeper, the controller).
nlohmann::json to_json(const authority::GrantRequest& r);
nlohmann::json to_json(const authority::GrantAnswer& a);
authority::GrantAnswer grant_answer_from(const nlohmann::json& j);
authority::PromiseAnswer promise_answer_from(const nlohmann::json& j);

}  // namespace im::quorum
