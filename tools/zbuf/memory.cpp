// The memory check of zbuf stream: refuse, before allocating, what the machine cannot back.
#include <fmt/format.h>

#include <fstream>
#include <string>

#include "command.h"

namespace zbuf::cli {

std::optional<std::uint64_t> availableMemory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == "MemAvailable:") {
      return kib * 1024;
    }
  }
  return std::nullopt;
}

Result<void> checkMemory(std::uint64_t needBytes, std::string_view what) {
  const std::optional<std::uint64_t> available = availableMemory();
  if (!available || needBytes <= *available) {
    return {};
  }
  return Error(ENOMEM, "memory",
               fmt::format("{} need about {}, but only {} is available (MemAvailable in "
                           "/proc/meminfo); use fewer or smaller blocks",
                           what, formatBytes(needBytes), formatBytes(*available)));
}

}  // namespace zbuf::cli
