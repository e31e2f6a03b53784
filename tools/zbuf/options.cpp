#include <fmt/format.h>

#include <cctype>
#include <limits>

#include "command.h"

namespace zbuf::cli {

Result<std::uint64_t> parseSize(std::string_view text, bool allowZero) {
  const std::string original(text);
  auto bad = [&](const char* why) {
    return Error(EINVAL, "size", fmt::format("'{}' is not a valid size: {}", original, why));
  };
  if (text.empty()) {
    return bad("empty");
  }
  std::uint64_t value = 0;
  std::size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
    const auto digit = static_cast<std::uint64_t>(text[i] - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
      return bad("too large");
    }
    value = value * 10 + digit;
    ++i;
  }
  if (i == 0) {
    return bad("expected a number with an optional K, M or G suffix");
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
  if (shift != 0 && value > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
    return bad("too large");
  }
  value <<= shift;
  if (value == 0 && !allowZero) {
    return bad("must be greater than 0");
  }
  return value;
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

}  // namespace zbuf::cli
