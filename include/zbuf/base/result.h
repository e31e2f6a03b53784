// Result<T>: a value or an Error carrying an errno and the failing operation.
//
// The subset of std::expected that zbuf needs, so it can be swapped for the standard type
// once the project moves to C++23. Errors use the kernel's vocabulary: a positive errno
// value (EINVAL, EBUSY, ...) plus the name of the operation that failed and, where useful, a
// message naming the object and the rule that was broken.
//
// The swap to std::expected<T, Error> is mechanical: the members std::expected has are named
// as it names them (has_value(), explicit operator bool, value(), operator*, operator->,
// error(), value_or()), and ZBUF_TRY / ZBUF_ASSIGN_OR_RETURN below use only those. What
// remains different, and what the swap has to rewrite:
//  - An Error converts to a failed Result implicitly (`return Error(EINVAL, "op");`);
//    std::expected needs `std::unexpected(Error(...))`, so those returns get a wrapper.
//  - ok() (= has_value()), code() (the errno, 0 when ok) and valueOr() (= value_or()) are
//    zbuf's own; code() and ok() stay as free helpers or are spelled out.
//  - value() of a failed Result throws std::bad_variant_access, not
//    std::bad_expected_access<Error>; operator* / operator-> of a failed Result throw too
//    (std::expected leaves them undefined).
//  - The converting constructor takes only an rvalue Result<U>; there are no monadic members
//    (and_then, transform, or_else) and no emplace/swap.
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

  [[nodiscard]] bool has_value() const noexcept { return data_.index() == 0; }
  // zbuf's name for has_value().
  [[nodiscard]] bool ok() const noexcept { return has_value(); }
  explicit operator bool() const noexcept { return has_value(); }

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

  // The value, or `fallback` converted to T; the rvalue form moves the value out.
  template <typename U>
  [[nodiscard]] T value_or(U&& fallback) const& {
    return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
  }
  template <typename U>
  [[nodiscard]] T value_or(U&& fallback) && {
    return has_value() ? std::move(*this).value() : static_cast<T>(std::forward<U>(fallback));
  }
  // zbuf's name for value_or().
  template <typename U>
  [[nodiscard]] T valueOr(U&& fallback) const& {
    return value_or(std::forward<U>(fallback));
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

  [[nodiscard]] bool has_value() const noexcept { return error_.index() == 0; }
  // zbuf's name for has_value().
  [[nodiscard]] bool ok() const noexcept { return has_value(); }
  explicit operator bool() const noexcept { return has_value(); }
  [[nodiscard]] const Error& error() const& { return std::get<1>(error_); }
  [[nodiscard]] Error&& error() && { return std::get<1>(std::move(error_)); }
  [[nodiscard]] int code() const noexcept { return ok() ? 0 : error().code(); }

 private:
  std::variant<std::monostate, Error> error_;
};

// Propagates an error from an expression returning Result<...>: returns its Error from the
// enclosing function (which returns a Result or an Error) and otherwise discards the value.
// The expression is bound by reference, not copied: a temporary (or std::move(r)) gives up
// its Error, an lvalue Result keeps its Error and value (the Error is copied) and can be used
// afterwards. Commas in the expression need no extra parentheses.
#define ZBUF_TRY(...)                                                        \
  do {                                                                       \
    auto&& zbufTryResult_ = (__VA_ARGS__);                                   \
    if (!zbufTryResult_.has_value()) {                                       \
      return std::forward<decltype(zbufTryResult_)>(zbufTryResult_).error(); \
    }                                                                        \
  } while (false)

// Evaluates an expression returning Result<T>; on error returns its Error from the enclosing
// function, else assigns the value to `lhs`, which is a declaration (`auto fd`,
// `const Buffer& b`) or an existing variable. The value is moved out of a temporary (or
// std::move(r)) and copied out of an lvalue Result, which keeps it. It expands to several
// statements in the enclosing scope, so it cannot be the unbraced body of an if or a loop;
// its temporary is named after the line, so use it at most once per line. `lhs` must not
// contain an unparenthesised comma (a structured binding, a two-argument template).
#define ZBUF_ASSIGN_OR_RETURN(lhs, ...) \
  ZBUF_ASSIGN_OR_RETURN_IMPL_(ZBUF_RESULT_CONCAT_(zbufAssignResult_, __LINE__), lhs, __VA_ARGS__)

#define ZBUF_RESULT_CONCAT_INNER_(a, b) a##b
#define ZBUF_RESULT_CONCAT_(a, b) ZBUF_RESULT_CONCAT_INNER_(a, b)
// `lhs` is deliberately not parenthesised: it may be a declaration.
#define ZBUF_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, ...)   \
  auto&& tmp = (__VA_ARGS__);                        \
  if (!tmp.has_value()) {                            \
    return std::forward<decltype(tmp)>(tmp).error(); \
  }                                                  \
  lhs = std::forward<decltype(tmp)>(tmp).value()

}  // namespace zbuf
#pragma GCC visibility pop
