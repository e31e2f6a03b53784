// Flags<E>: a type-safe set of bits of the enum class E. Raw masks appear only in uapi/.
#pragma once

#include <type_traits>

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

template <typename E>
class Flags {
  static_assert(std::is_enum_v<E>, "Flags<E> needs an enum type");

 public:
  using Type = std::underlying_type_t<E>;

  constexpr Flags() noexcept = default;
  // NOLINTNEXTLINE(google-explicit-constructor): a single flag is a flag set.
  constexpr Flags(E flag) noexcept : value_(static_cast<Type>(flag)) {}

  [[nodiscard]] static constexpr Flags fromRaw(Type raw) noexcept {
    Flags f;
    f.value_ = raw;
    return f;
  }
  [[nodiscard]] constexpr Type raw() const noexcept { return value_; }
  [[nodiscard]] constexpr bool test(E flag) const noexcept {
    return (value_ & static_cast<Type>(flag)) == static_cast<Type>(flag);
  }
  [[nodiscard]] constexpr bool any() const noexcept { return value_ != 0; }
  [[nodiscard]] constexpr bool none() const noexcept { return value_ == 0; }
  constexpr explicit operator bool() const noexcept { return any(); }

  constexpr Flags& operator|=(Flags o) noexcept {
    value_ |= o.value_;
    return *this;
  }
  constexpr Flags& operator&=(Flags o) noexcept {
    value_ &= o.value_;
    return *this;
  }
  constexpr Flags& operator^=(Flags o) noexcept {
    value_ ^= o.value_;
    return *this;
  }
  friend constexpr Flags operator|(Flags a, Flags b) noexcept { return a |= b; }
  friend constexpr Flags operator&(Flags a, Flags b) noexcept { return a &= b; }
  friend constexpr Flags operator^(Flags a, Flags b) noexcept { return a ^= b; }
  constexpr Flags operator~() const noexcept { return fromRaw(static_cast<Type>(~value_)); }
  friend constexpr bool operator==(Flags a, Flags b) noexcept = default;

 private:
  Type value_ = 0;
};

// Enables `E | E -> Flags<E>` for an enum declared with ZBUF_FLAGS_OPERATORS(E).
// E is a type name, which cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ZBUF_FLAGS_OPERATORS(E)                             \
  constexpr ::zbuf::Flags<E> operator|(E a, E b) noexcept { \
    return ::zbuf::Flags<E>(a) | ::zbuf::Flags<E>(b);       \
  }
// NOLINTEND(bugprone-macro-parentheses)

}  // namespace zbuf
#pragma GCC visibility pop
