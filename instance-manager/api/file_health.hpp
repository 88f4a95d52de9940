#pragma once
// What /metrics says about the files an instance depends on: when its
// certificates expire, and whether its password and token files can be
// read. A certificate that lapses or a secret that a rotation broke
// otherwise shows only when connections start failing.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config.hpp"

namespace im {

// When the first certificate of a PEM file expires (unix seconds); nullopt
// when the file cannot be read or holds no certificate.
std::optional<double> certificate_expiry(const std::string& pem_path);
// The subject's common name of the first certificate of a PEM file; nullopt
// when it cannot be read or names none.
std::optional<std::string> certificate_common_name(const std::string& pem_path);

// The certificates in use, by label: {"postgres", path} (the one postgres
// serves, in the data directory), {"api", --tls-cert}.
std::vector<std::pair<std::string, std::string>> certificates_in_use(const Config& cfg);

// The secret files in use, by label (app-password, replication-password,
// superuser-password, api-token), each with whether it reads as a secret.
std::vector<std::pair<std::string, bool>> secret_files_ok(const Config& cfg);

}  // namespace im
