// Result<T>: a value or an Error carrying an errno and the failing operation.
//
// The subset of std::expected that zbuf needs, so it can be swapped for the standard type
// once the project moves to C++23. Errors use the kernel's vocabulary: a positive errno
// value (EINVAL, EBUSY, ...) plus the name of the operation that failed and, where useful, a
// message naming the object and the rule that was broken.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class [[nodiscard]] Error {
 public:
  // `op` must be a string with static storage duration (a literal).
  constexpr Error(int code, const char* op) noexcept : code_(code), op_(op) {}
  Error(int code, const char* op, std::string message)
      : code_(code), op_(op), message_(std::move(message)) {}

  // The errno value, positive (EINVAL, not -EINVAL).
  [[nodiscard]] int code() const noexcept { return code_; }
  // The kernel-style negative errno.
  [[nodiscard]] int negative() const noexcept { return -code_; }
  [[nodiscard]] const char* op() const noexcept { return op_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  // "op: message (EINVAL: Invalid argument)".
  [[nodiscard]] std::string describe() const;

  friend bool operator==(const Error& a, const Error& b) noexcept { return a.code_ == b.code_; }

 private:
  int code_;
  const char* op_;
  std::string message_;
};

// Name of an errno value ("EINVAL"), or "E?" for unknown values.
[[nodiscard]] const char* errnoName(int code) noexcept;

template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  // NOLINTNEXTLINE(google-explicit-constructor): implicit like std::expected's value ctor.
  Result(T value) : data_(std::in_place_index<0>, std::move(value)) {}
  // NOLINTNEXTLINE(google-explicit-constructor): lets `return Error(...)` read naturally.
  Result(Error error) : data_(std::in_place_index<1>, std::move(error)) {}
  // Converts a Result of a convertible type (Result<shared_ptr<Derived>> ->
  // Result<shared_ptr<Base>>), as std::expected's converting constructor does.
  template <typename U>
  requires(!std::is_same_v<U, T> && std::is_convertible_v<U&&, T>)
      // NOLINTNEXTLINE(google-explicit-constructor): implicit like std::expected's.
      Result(Result<U>&& other)
      : data_(other.ok()
                  ? std::variant<T, Error>(std::in_place_index<0>, std::move(other).value())
                  : std::variant<T, Error>(std::in_place_index<1>, std::move(other).error())) {}

  [[nodiscard]] bool ok() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  [[nodiscard]] T& value() & { return std::get<0>(data_); }
  [[nodiscard]] const T& value() const& { return std::get<0>(data_); }
  [[nodiscard]] T&& value() && { return std::get<0>(std::move(data_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  [[nodiscard]] const Error& error() const& { return std::get<1>(data_); }
  [[nodiscard]] Error&& error() && { return std::get<1>(std::move(data_)); }
  // errno of the error, or 0 when ok.
  [[nodiscard]] int code() const noexcept { return ok() ? 0 : error().code(); }

  template <typename U>
  [[nodiscard]] T valueOr(U&& fallback) const& {
    return ok() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, Error> data_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  // NOLINTNEXTLINE(google-explicit-constructor): lets `return Error(...)` read naturally.
  Result(Error error) : error_(std::in_place_index<1>, std::move(error)) {}

  [[nodiscard]] bool ok() const noexcept { return error_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  [[nodiscard]] const Error& error() const& { return std::get<1>(error_); }
  [[nodiscard]] Error&& error() && { return std::get<1>(std::move(error_)); }
  [[nodiscard]] int code() const noexcept { return ok() ? 0 : error().code(); }

 private:
  std::variant<std::monostate, Error> error_;
};

// Propagates an error from an expression returning Result<...>.
#define ZBUF_TRY(expr)                          \
  do {                                          \
    auto zbufTryResult_ = (expr);               \
    if (!zbufTryResult_.ok()) {                 \
      return std::move(zbufTryResult_).error(); \
    }                                           \
  } while (false)

}  // namespace zbuf
#pragma GCC visibility pop
