// Option values of the zbuf command line: sizes ("64K", "1.5M"), counts and durations, parsed
// strictly (decimal only: no hex, no NaN, no infinity, no silent saturation) with short
// messages that say whether the text is not a number or the number is out of range.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <vector>

#include "command.h"

namespace zbuf::cli {

namespace {

bool isDigit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

// A plain decimal number: digits, an optional fraction, an optional exponent. Nothing else
// (strtod would also take "0x10", "nan", "inf" and leading blanks).
bool isDecimal(std::string_view s) {
  std::size_t i = 0;
  std::size_t digits = 0;
  while (i < s.size() && isDigit(s[i])) {
    ++i;
    ++digits;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && isDigit(s[i])) {
      ++i;
      ++digits;
    }
  }
  if (digits == 0) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      ++i;
    }
    const std::size_t start = i;
    while (i < s.size() && isDigit(s[i])) {
      ++i;
    }
    if (i == start) {
      return false;
    }
  }
  return i == s.size();
}

}  // namespace

Result<std::uint64_t> parseSize(std::string_view text, bool allowZero) {
  const std::string original(text);
  auto bad = [&](const char* why) {
    return Error(EINVAL, "size", fmt::format("'{}' is not a valid size: {}", original, why));
  };
  if (text.empty()) {
    return bad("empty");
  }
  // Mantissa: digits with an optional fraction ("1.5M"), kept exact as digits / 10^scale.
  unsigned __int128 mantissa = 0;
  unsigned scale = 0;
  std::size_t i = 0;
  std::size_t digits = 0;
  bool fraction = false;
  constexpr unsigned __int128 kCap = static_cast<unsigned __int128>(1) << 100;
  while (i < text.size() && (isDigit(text[i]) || (text[i] == '.' && !fraction))) {
    if (text[i] == '.') {
      fraction = true;
      ++i;
      continue;
    }
    if (mantissa > kCap) {
      return bad("too large");
    }
    mantissa = mantissa * 10 + static_cast<unsigned>(text[i] - '0');
    scale += fraction ? 1 : 0;
    ++digits;
    ++i;
  }
  if (digits == 0) {
    return bad("not a number (a decimal number with an optional K, M or G suffix)");
  }
  std::string suffix(text.substr(i));
  for (auto& c : suffix) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  unsigned shift = 0;
  if (suffix.empty() || suffix == "B") {
    shift = 0;
  } else if (suffix == "K" || suffix == "KB" || suffix == "KIB") {
    shift = 10;
  } else if (suffix == "M" || suffix == "MB" || suffix == "MIB") {
    shift = 20;
  } else if (suffix == "G" || suffix == "GB" || suffix == "GIB") {
    shift = 30;
  } else {
    return bad("unknown suffix (use K, M or G)");
  }
  if (scale > 20) {
    return bad("too many decimals");
  }
  unsigned __int128 divisor = 1;
  for (unsigned k = 0; k < scale; ++k) {
    divisor *= 10;
  }
  const unsigned __int128 scaled = mantissa << shift;
  if (scaled % divisor != 0) {
    return bad("not a whole number of bytes");
  }
  const unsigned __int128 value = scaled / divisor;
  if (value > std::numeric_limits<std::uint64_t>::max()) {
    return bad("too large");
  }
  if (value == 0 && !allowZero) {
    return bad("must be greater than 0");
  }
  return static_cast<std::uint64_t>(value);
}

Result<std::uint64_t> parseCount(std::string_view text, std::uint64_t min, std::uint64_t max) {
  const std::string original(text);
  if (text.empty() || !std::all_of(text.begin(), text.end(), isDigit)) {
    return Error(EINVAL, "count", fmt::format("'{}' is not a number (decimal digits)", original));
  }
  std::uint64_t value = 0;
  bool overflow = false;
  for (char c : text) {
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
      overflow = true;
      break;
    }
    value = value * 10 + digit;
  }
  if (overflow || value < min || value > max) {
    return Error(ERANGE, "count", fmt::format("{} is out of range ({}..{})", original, min, max));
  }
  return value;
}

Result<double> parseSeconds(std::string_view text, double max) {
  const std::string original(text);
  if (!isDecimal(text)) {
    return Error(EINVAL, "seconds",
                 fmt::format("'{}' is not a number of seconds (e.g. 5, 0.25, 1e-3)", original));
  }
  const double v = std::strtod(original.c_str(), nullptr);
  if (!std::isfinite(v) || v < 1e-9 || v > max) {
    return Error(ERANGE, "seconds",
                 fmt::format("{} is out of range (1e-9..{:g} seconds)", original, max));
  }
  return v;
}

Stats stats(std::vector<double> v) {
  if (v.empty()) {
    return {};
  }
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  const double median = n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return {median, v.front(), v.back()};
}

std::string formatBytes(std::uint64_t bytes) {
  constexpr double kKiB = 1024.0;
  const auto b = static_cast<double>(bytes);
  if (b >= kKiB * kKiB * kKiB) {
    return fmt::format("{:.2f} GiB", b / (kKiB * kKiB * kKiB));
  }
  if (b >= kKiB * kKiB) {
    return fmt::format("{:.1f} MiB", b / (kKiB * kKiB));
  }
  if (b >= kKiB) {
    return fmt::format("{:.1f} KiB", b / kKiB);
  }
  return fmt::format("{} B", bytes);
}

std::function<void(const std::string&)> sizeSetter(std::uint64_t& out, const char* what) {
  return [&out, what](const std::string& text) {
    auto r = parseSize(text);
    if (!r) {
      throw CLI::ValidationError(what, r.error().message());
    }
    out = *r;
  };
}

std::function<void(const std::string&)> countSetter(std::uint64_t& out, const char* what,
                                                    std::uint64_t min, std::uint64_t max) {
  return [&out, what, min, max](const std::string& text) {
    auto r = parseCount(text, min, max);
    if (!r) {
      throw CLI::ValidationError(what, r.error().message());
    }
    out = *r;
  };
}

std::function<void(const std::string&)> secondsSetter(double& out, const char* what, double max) {
  return [&out, what, max](const std::string& text) {
    auto r = parseSeconds(text, max);
    if (!r) {
      throw CLI::ValidationError(what, r.error().message());
    }
    out = *r;
  };
}

}  // namespace zbuf::cli
