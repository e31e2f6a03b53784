// Private to the heaps: how much memory an allocation may still take (the memory limit the
// heaps check before they allocate, so that zbuf refuses rather than exhausts memory).
#pragma once

#include <cstdint>
#include <string>

#include "zbuf/base/result.h"

namespace zbuf::heap_detail {

// Bytes of memory the process could still back: MemAvailable plus free swap, capped by the
// cgroup's memory.max - memory.current where there is such a limit.
[[nodiscard]] std::uint64_t backableBytes();

// Reads a small text file (procfs, sysfs) into a string.
[[nodiscard]] Result<std::string> readSmallFile(const char* path);

}  // namespace zbuf::heap_detail
