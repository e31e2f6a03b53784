// The huge-page heap: a hugetlb memfd per buffer, 2 MiB pages in the page model. The pages
// are reserved when the memory is first mapped (at allocation), so a machine without free
// huge pages fails there, with a message, instead of with SIGBUS on first touch.
#include "zbuf/heaps/huge_page_heap.h"

#include <fmt/format.h>
#include <linux/memfd.h>
#include <sys/mman.h>

#include <charconv>

#include "backable_memory.h"
#include "heap_allocation.h"
#include "memfd_buffer.h"

namespace zbuf {

std::shared_ptr<HugePageHeap> HugePageHeap::instance() {
  static const auto heap = std::make_shared<HugePageHeap>();
  return heap;
}

std::uint64_t HugePageHeap::freeHugePages() {
  auto meminfo = heap_detail::readSmallFile("/proc/meminfo");
  if (!meminfo.ok()) {
    return 0;
  }
  const std::string_view key = "HugePages_Free:";
  auto pos = meminfo->find(key);
  if (pos == std::string::npos) {
    return 0;
  }
  pos += key.size();
  while (pos < meminfo->size() && (*meminfo)[pos] == ' ') {
    ++pos;
  }
  std::uint64_t n = 0;
  std::from_chars(meminfo->data() + pos, meminfo->data() + meminfo->size(), n);
  return n;
}

Result<BufferPtr> HugePageHeap::allocate(std::uint64_t len, int fdFlags, std::uint64_t heapFlags) {
  ZBUF_ASSIGN_OR_RETURN(auto size,
                        heap_detail::checkAllocation(kName, len, fdFlags, heapFlags, kPageSize));
  const std::uint64_t pages = size / kPageSize;
  const std::uint64_t free = freeHugePages();
  if (pages > free) {
    return Error(ENOMEM, "dma_heap_alloc",
                 fmt::format("heap {}: {} bytes need {} free 2 MiB huge pages, the machine has "
                             "{}; reserve them as root with `echo N > /proc/sys/vm/nr_hugepages`",
                             kName, size, pages, free));
  }
  ZBUF_ASSIGN_OR_RETURN(auto memfd, heap_detail::createSealedMemfd("zbuf:hugepage", size,
                                                                   MFD_HUGETLB | MFD_HUGE_2MB));
  return heap_detail::exportHeapBuffer(kName, SharedFd::adopt(std::move(memfd)), size, kPageSize,
                                       fdFlags);
}

// Not static: an allocation of this heap, called through the instance like allocate().
// NOLINTNEXTLINE(readability-convert-member-functions-to-static): see above
Result<BufferPtr> HugePageHeap::allocateModelled(std::uint64_t len, int fdFlags) {
  ZBUF_ASSIGN_OR_RETURN(auto size, heap_detail::checkAllocation(kName, len, fdFlags, 0, kPageSize));
  if (size > heap_detail::backableBytes()) {
    return Error(ENOMEM, "dma_heap_alloc",
                 fmt::format("heap {} (modelled): {} bytes cannot be backed", kName, size));
  }
  ZBUF_ASSIGN_OR_RETURN(auto memfd,
                        heap_detail::createSealedMemfd("zbuf:hugepage-modelled", size, 0));
  return heap_detail::exportHeapBuffer("hugepage-modelled", SharedFd::adopt(std::move(memfd)), size,
                                       kPageSize, fdFlags);
}

}  // namespace zbuf
