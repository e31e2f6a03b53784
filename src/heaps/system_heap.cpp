// The system heap: one sealed memfd per buffer, 4 KiB pages in the page model.
#include "zbuf/heaps/system_heap.h"

#include "heap_allocation.h"
#include "memfd_buffer.h"

namespace zbuf {

std::shared_ptr<SystemHeap> SystemHeap::instance() {
  static const auto heap = std::make_shared<SystemHeap>();
  return heap;
}

Result<BufferPtr> SystemHeap::allocate(std::uint64_t len, int fdFlags, std::uint64_t heapFlags) {
  const std::uint64_t page = sys::pageSize();
  ZBUF_ASSIGN_OR_RETURN(auto size,
                        heap_detail::checkAllocation(kName, len, fdFlags, heapFlags, page));
  ZBUF_ASSIGN_OR_RETURN(auto memfd, heap_detail::createSealedMemfd("zbuf:system", size, 0));
  return heap_detail::exportHeapBuffer(kName, SharedFd::adopt(std::move(memfd)), size, page,
                                       fdFlags);
}

}  // namespace zbuf
