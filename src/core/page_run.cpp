#include "zbuf/core/page_run.h"

#include <algorithm>
#include <atomic>

namespace zbuf {

std::uint64_t reservePhysical(std::uint64_t bytes, std::uint64_t align) noexcept {
  static std::atomic<std::uint64_t> next{1ULL << 32};
  if (align == 0) {
    align = 1;
  }
  std::uint64_t cur = next.load();
  for (;;) {
    const std::uint64_t base = (cur + align - 1) / align * align;
    if (next.compare_exchange_weak(cur, base + bytes)) {
      return base;
    }
  }
}

std::vector<PageRun> scatteredPageRuns(std::span<std::byte> host, std::uint64_t pageSize,
                                       std::uint64_t physBase) {
  std::vector<PageRun> runs;
  runs.reserve((host.size() + pageSize - 1) / pageSize);
  for (std::uint64_t off = 0, i = 0; off < host.size(); off += pageSize, ++i) {
    runs.push_back({host.data() + off, std::min<std::uint64_t>(pageSize, host.size() - off),
                    physBase + 2 * i * pageSize});
  }
  return runs;
}

}  // namespace zbuf
