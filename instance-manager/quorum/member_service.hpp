#pragma once
// A member's side of the write authority, on the daemon: the pure
// MemberAuthority (authority/member_authority.hpp) behind the promise, grant
// and release endpoints, with what it must remember persisted (fsync'd)
// before each answer that depends on it. It answers in every role (a replica
// grants to its primary, a fenced member still promises) and never waits for
// a role command: a grant stuck behind a rewind would stop the primary.
//
// Membership (decided here; changing it is not built yet): a member learns
// the membership from the first promise that names it, persisted with that
// promise. From then on it answers only requests of that membership (same
// version, same names); before it, it grants nothing ("a member that is not
// yet a member neither grants nor counts"), and a member left out of a
// membership never promises in it.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "authority/member_authority.hpp"
#include "quorum/grant_store.hpp"

namespace im::quorum {

using authority::Duration;
using authority::Instant;

// The daemon's steady_clock as the authority's own clock (same epoch as
// CLOCK_MONOTONIC, which the watchdog reads).
Instant own_now();

class MemberService {
  public:
    MemberService(std::string self, GrantStore store, Duration max_ttl);
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
    StoredAuthority stored_;
    std::optional<authority::MemberAuthority> auth_;  // set once a membership is known
};

// JSON forms of the messages (the endpoints, the keeper, the controller).
nlohmann::json to_json(const authority::GrantRequest& r);
nlohmann::json to_json(const authority::GrantAnswer& a);
authority::GrantAnswer grant_answer_from(const nlohmann::json& j);
authority::PromiseAnswer promise_answer_from(const nlohmann::json& j);

}  // namespace im::quorum
