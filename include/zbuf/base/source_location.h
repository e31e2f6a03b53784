// SourceLocation: the call site of a function, captured by a default argument.
//
// std::source_location needs compiler support that clang 14 (the clang-tidy of Debian 12)
// lacks; the __builtin_FILE/LINE/FUNCTION intrinsics work in both GCC and clang.
#pragma once

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

struct SourceLocation {
  const char* file = "";
  unsigned line = 0;
  const char* function = "";

  [[nodiscard]] static constexpr SourceLocation current(
      const char* file = __builtin_FILE(), unsigned line = __builtin_LINE(),
      const char* function = __builtin_FUNCTION()) noexcept {
    return SourceLocation{file, line, function};
  }
};

}  // namespace zbuf
#pragma GCC visibility pop
