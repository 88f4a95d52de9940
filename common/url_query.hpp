#pragma once
// Query strings of request targets: what the manager's API reads
// ("/readyz?lag=16MB"), what the controller sends to the Kubernetes API
// (a label selector), and what the tests' stand-in API server reads back.
#include <optional>
#include <string>

namespace im {

// Every byte but the unreserved ones (RFC 3986) as %XX.
std::string percent_encode(const std::string& text);
// %XX back to bytes, and '+' to a space (form encoding); a malformed escape
// stays as it is.
std::string percent_decode(const std::string& text);

// The decoded value of one query parameter; "" for a key without '='.
std::optional<std::string> query_param(const std::string& target, const std::string& key);

}  // namespace im
