#pragma once
// One-shot jobs that the manager runs as child processes of its own binary
// (`instance-manager helper ...`). They need OpenSSL (key generation, SCRAM
// hashing); initializing it in the long-running manager would keep
// megabytes of it resident for good.
#include <string>
#include <vector>

#include "process.hpp"

namespace im {

// The manager's own executable, resolved once at start-up.
const std::string& self_exe();

// SpawnOptions for `instance-manager helper <args...>`.
SpawnOptions helper_command(std::vector<std::string> args);

// Entry point of `instance-manager helper`; returns the exit code.
//   helper make-cert CERT KEY COMMON_NAME
//   helper ensure-roles CONNINFO APP_PASSWORD_FILE REPLICATION_PASSWORD_FILE
//   [SUPERUSER_PASSWORD_FILE]
int helper_main(const std::vector<std::string>& args);

}  // namespace im
