#pragma once
// Errors as values across module boundaries: a Result holds either a value or
// an Error with a human-readable message. Each machine-readable part has one
// meaning wherever it is read: http_status is always an HTTP status, sys_errno
// always an errno.
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace im {

struct Error {
    std::string message;
    // The HTTP status that says what kind of failure this is: the one our API
    // answers with, or the one a peer's API answered. 409: the state does not
    // allow it; 503: not now, try again; 502: something we depend on failed.
    // 0 when it is no HTTP matter (an API answers 500 for it).
    int http_status = 0;
    int sys_errno = 0;  // the errno of the system call that failed; 0 when none did
    std::map<std::string, std::string> fields;  // facts that go with the error (an LSN, ...)
};

template <class T>
class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() { return std::get<0>(v_); }
    const T& value() const { return std::get<0>(v_); }
    T& operator*() { return value(); }
    const T& operator*() const { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;

inline Error make_error(std::string message, int http_status = 0) {
    return Error{std::move(message), http_status, 0, {}};
}

// The status an API answers for `e`: its own when it has one, else `otherwise`
// (500 for our own failures, 502 for a peer's).
inline int http_status_or(const Error& e, int otherwise) {
    return e.http_status >= 400 && e.http_status < 600 ? e.http_status : otherwise;
}

// A failed system call: the message says what was tried, sys_errno why it failed.
inline Error system_error(std::string message, int sys_errno) {
    return Error{std::move(message), 0, sys_errno, {}};
}

}  // namespace im
