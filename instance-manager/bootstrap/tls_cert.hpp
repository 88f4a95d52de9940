#pragma once
// A self-signed certificate (server and client use) for PostgreSQL, made
// with OpenSSL's library at bootstrap and reused afterwards.
#include <string>

#include "result.hpp"

namespace im {

// Creates key (0600) and certificate for `common_name` unless both exist.
// Returns true when new files were written.
Result<bool> ensure_self_signed_cert(const std::string& cert_path, const std::string& key_path,
                                     const std::string& common_name);

}  // namespace im
