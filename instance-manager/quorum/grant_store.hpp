#pragma once
// What a member promised and granted, and the membership it belongs to, in
// <pgdata>/instance-manager/authority.json: replaced atomically and fsync'd
// BEFORE the answer that depends on it leaves (member_authority.hpp says
// why). Kept apart from state.json: it changes on other occasions, and a
// member answers from it while a role command holds state.json.
#include <string>

#include "authority/member_authority.hpp"
#include "authority/membership.hpp"
#include "result.hpp"

namespace im::quorum {

struct StoredAuthority {
    authority::DurableGrantState grants;
    // version 0 (no names): not a member of any membership yet.
    authority::Membership membership{0, {}};
    // The longest grant this member was configured to give (a restart
    // assumes its last grant runs that long).
    authority::Duration max_ttl{0};
};

class GrantStore {
  public:
    explicit GrantStore(std::string path) : path_(std::move(path)) {}
    // A missing file is a member that never promised; a corrupt one is an
    // error (never guessed: a forgotten promise is what the rule forbids).
    Result<StoredAuthority> load() const;
    Status save(const StoredAuthority& s) const;
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

}  // namespace im::quorum
