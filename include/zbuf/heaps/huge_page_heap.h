// The huge-page heap: buffers of 2 MiB huge pages (a memfd with MFD_HUGETLB), size rounded up
// to 2 MiB. Each huge page is physically contiguous and modelled as its own frame, so a
// mapping has size/2 MiB segments (each further split by the device's maximum segment size).
// Where the machine has no free huge pages, allocation fails with ENOMEM and a message that
// says how to reserve them (`echo N > /proc/sys/vm/nr_hugepages`). Exporter name "hugepage".
#pragma once

#include "zbuf/heaps/heap.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class HugePageHeap final : public Heap {
 public:
  static constexpr std::string_view kName = "hugepage";
  static constexpr std::uint64_t kPageSize = 2ULL << 20;
  [[nodiscard]] static std::shared_ptr<HugePageHeap> instance();

  // Free 2 MiB huge pages on the machine (HugePages_Free in /proc/meminfo).
  [[nodiscard]] static std::uint64_t freeHugePages();

  // For machines without huge pages (benchmarks, tests of the page model): ordinary memory
  // whose page list describes 2 MiB physically contiguous pages, through the same exporter
  // code as allocate(). Same checks as allocate() except the huge-page pool. Exporter name
  // "hugepage-modelled", so listings never pass it off as real huge pages.
  [[nodiscard]] Result<BufferPtr> allocateModelled(std::uint64_t len,
                                                   int fdFlags = O_RDWR | O_CLOEXEC);

  [[nodiscard]] std::string_view name() const noexcept override { return kName; }
  [[nodiscard]] Result<BufferPtr> allocate(std::uint64_t len, int fdFlags = O_RDWR | O_CLOEXEC,
                                           std::uint64_t heapFlags = 0) override;
};

}  // namespace zbuf
#pragma GCC visibility pop
