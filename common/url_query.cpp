#include "url_query.hpp"

#include <curl/curl.h>

namespace im {

// libcurl does the escaping both ways (a NULL handle is allowed since 7.82).
std::string percent_encode(const std::string& text) {
    char* out = curl_easy_escape(nullptr, text.data(), static_cast<int>(text.size()));
    if (out == nullptr) return {};
    std::string encoded(out);
    curl_free(out);
    return encoded;
}

std::string percent_decode(const std::string& text) {
    // Form encoding's '+' is a space; a literal plus arrives as %2B, so the
    // swap comes before the unescaping.
    std::string plus = text;
    for (char& c : plus)
        if (c == '+') c = ' ';
    int length = 0;
    char* out = curl_easy_unescape(nullptr, plus.data(), static_cast<int>(plus.size()), &length);
    if (out == nullptr) return plus;
    std::string decoded(out, static_cast<size_t>(length));
    curl_free(out);
    return decoded;
}

std::optional<std::string> query_param(const std::string& target, const std::string& key) {
    auto q = target.find('?');
    if (q == std::string::npos) return std::nullopt;
    std::string rest = target.substr(q + 1);
    size_t pos = 0;
    while (pos <= rest.size()) {
        size_t amp = rest.find('&', pos);
        std::string pair =
            rest.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
        auto eq = pair.find('=');
        if (percent_decode(pair.substr(0, eq)) == key)
            return eq == std::string::npos ? "" : percent_decode(pair.substr(eq + 1));
        if (amp == std::string::npos) break;
        pos = amp + 1;
    }
    return std::nullopt;
}

}  // namespace im
