#pragma once
// Errors as values across module boundaries: a Result holds either a value or
// an Error with a human-readable message (and an optional machine code).
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace im {

struct Error {
    std::string message;
    int code = 0;  // module-specific; 0 when there is nothing more to say
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

inline Error make_error(std::string message, int code = 0) {
    return Error{std::move(message), code, {}};
}

}  // namespace im
