#pragma once
// Random secrets and constant-time comparison, both from OpenSSL.
#include <string>
#include <string_view>

namespace im {

// A random URL-safe token of `bytes` random bytes (base64url, no padding).
std::string random_token(size_t bytes);

// Compares two secrets in time that does not depend on where they differ
// (OpenSSL's CRYPTO_memcmp).
bool secrets_equal(std::string_view given, std::string_view expected);

}  // namespace im
