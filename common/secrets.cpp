#include "secrets.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/random.h>

#include <cerrno>
#include <stdexcept>
#include <vector>

namespace im {

std::string random_token(size_t bytes) {
    std::vector<unsigned char> raw(bytes);
    // The kernel's CSPRNG directly: initializing OpenSSL's DRBG in the
    // long-running manager would cost it megabytes of resident memory.
    size_t got = 0;
    while (got < raw.size()) {
        ssize_t n = ::getrandom(raw.data() + got, raw.size() - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error("getrandom failed");
        }
        got += static_cast<size_t>(n);
    }
    std::string b64(4 * ((bytes + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), raw.data(),
                            static_cast<int>(raw.size()));
    b64.resize(static_cast<size_t>(n));
    for (char& c : b64) {
        if (c == '+')
            c = '-';
        else if (c == '/')
            c = '_';
    }
    while (!b64.empty() && b64.back() == '=') b64.pop_back();
    return b64;
}

bool secrets_equal(std::string_view given, std::string_view expected) {
    if (expected.empty()) return false;
    // Only the length can be learned from timing; the content cannot.
    if (given.size() != expected.size()) {
        volatile int sink = CRYPTO_memcmp(expected.data(), expected.data(), expected.size());
        (void)sink;
        return false;
    }
    return CRYPTO_memcmp(given.data(), expected.data(), expected.size()) == 0;
}

}  // namespace im
