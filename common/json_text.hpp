#pragma once
// JSON text in and out of the process, with no exception on either side.
// Out: strings may carry bytes from outside (a request path, a postgres
// message) that are not valid UTF-8; dump() would throw at whatever
// completion handler answers, so they are replaced with U+FFFD instead.
// In: a body is acted on only when it is exactly one JSON object; a parser
// that stops at a NUL or keeps the last of two equal keys would act on a
// part of what was sent.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "result.hpp"

namespace im {

template <class Json>
std::string json_text(const Json& j, int indent = -1) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The whole of `text` as one JSON object: no NUL byte, valid UTF-8, nothing
// after it, no key twice in any object. The error says which rule failed.
Result<nlohmann::json> parse_json_object(std::string_view text);

}  // namespace im
