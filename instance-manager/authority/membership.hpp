#pragma once
// The fixed, named set of members whose grants make up the write right, with
// a version so that two different sets are never counted together.
// (Changing the membership is a later issue: today every member and every
// proposer is configured with the same set.)
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace im::authority {

struct Membership {
    uint64_t version = 1;
    std::vector<std::string> names;

    size_t size() const { return names.size(); }
    // More than half: any two majorities share a member.
    size_t majority() const { return names.size() / 2 + 1; }
    bool contains(const std::string& name) const {
        return std::find(names.begin(), names.end(), name) != names.end();
    }
};

}  // namespace im::authority
