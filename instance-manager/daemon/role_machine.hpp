#pragma once
// The instance's role is an explicit state machine: every change goes
// through transition(), which refuses moves that make no sense and logs
// from -> to with the reason.
#include <string>
#include <string_view>
#include <vector>

#include "result.hpp"

namespace im {

enum class Role {
    starting,
    primary,
    replica,
    stopping,
    stopped,
    promoting,
    demoting,
    fencing,
    fenced
};

std::string_view to_string(Role r);

struct RoleChange {
    Role from;
    Role to;
    std::string reason;
};

class RoleMachine {
  public:
    Role current() const { return role_; }
    static bool allowed(Role from, Role to);
    // Moves to `to` and logs it; a move to the same role is a no-op success.
    Status transition(Role to, std::string reason);
    const std::vector<RoleChange>& history() const { return history_; }

  private:
    Role role_ = Role::starting;
    std::vector<RoleChange> history_;  // the last few changes, for status
};

}  // namespace im
