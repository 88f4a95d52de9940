#pragma once
// Host names resolved off the event loop and within a deadline.
//
// getaddrinfo blocks for as long as the name server takes (seconds, times
// attempts, times servers, when one does not answer). Asio's resolver runs
// it on Asio's own internal thread, so the loop keeps answering probes; the
// wait for it here is bounded by the caller's deadline, after which the
// lookup is abandoned (its thread finishes it and the answer is dropped).
#include <chrono>
#include <string>
#include <vector>

#include "asio.hpp"
#include "conninfo.hpp"
#include "result.hpp"

namespace im {

// The addresses of `host` (a literal address is returned as it is), in
// getaddrinfo's order, without repeats.
awaitable<Result<std::vector<asio::ip::address>>> resolve_host(
    std::string host, std::chrono::steady_clock::time_point deadline);

// The names among a conninfo's hosts that libpq would resolve itself: not
// socket directories ('/' or '@'), not literal addresses, and none at all
// when hostaddr is given (libpq then resolves nothing).
std::vector<std::string> host_names_to_resolve(const ConninfoMap& conninfo);

// The conninfo with hostaddr= beside host= for every name in `addresses`:
// libpq connects to the address and still uses the name for TLS host
// verification and the password file. A name with several addresses becomes
// as many entries of the host list (libpq tries them in order, as it would
// have tried the name's addresses), its port repeated. Names not in
// `addresses` (they did not resolve) are left out; none left is an error.
Result<ConninfoMap> with_host_addresses(
    ConninfoMap conninfo, const std::map<std::string, std::vector<std::string>>& addresses);

// Both steps: a conninfo that PQconnectStart can take without a lookup.
// Unparsable conninfo is returned unchanged (libpq reports its error).
awaitable<Result<std::string>> resolve_conninfo(std::string conninfo,
                                                std::chrono::steady_clock::time_point deadline);

}  // namespace im
