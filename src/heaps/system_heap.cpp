// The system heap: one sealed memfd per buffer, 4 KiB pages in the page model.
#include "zbuf/heaps/system_heap.h"

#include "heap_allocation.h"
#include "memfd_buffer.h"

namespace zbuf {
namespace {

Result<ExportInfo> systemExportInfo(std::uint64_t len, int fdFlags, std::uint64_t heapFlags) {
  const std::uint64_t page = sys::pageSize();
  ZBUF_ASSIGN_OR_RETURN(
      auto size, heap_detail::checkAllocation(SystemHeap::kName, len, fdFlags, heapFlags, page));
  ZBUF_ASSIGN_OR_RETURN(auto memfd, heap_detail::createSealedMemfd("zbuf:system", size, 0));
  return heap_detail::heapExportInfo(SystemHeap::kName, SharedFd::adopt(std::move(memfd)), size,
                                     page, fdFlags);
}

}  // namespace

std::shared_ptr<SystemHeap> SystemHeap::instance() {
  static const auto heap = std::make_shared<SystemHeap>();
  return heap;
}

Result<BufferPtr> SystemHeap::allocate(std::uint64_t len, int fdFlags, std::uint64_t heapFlags) {
  ZBUF_ASSIGN_OR_RETURN(auto info, systemExportInfo(len, fdFlags, heapFlags));
  return Buffer::exportBuffer(std::move(info));
}

Result<ExportInfo> SystemHeap::exportInfo(std::uint64_t len, int fdFlags) {
  return systemExportInfo(len, fdFlags, 0);
}

}  // namespace zbuf
