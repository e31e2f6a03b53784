// The dma-heap allocation checks (dma_heap_buffer_alloc) and the export of a heap buffer.
#include "heap_allocation.h"

#include <fcntl.h>
#include <fmt/format.h>

#include <utility>
#include <vector>

#include "backable_memory.h"
#include "memfd_buffer.h"
#include "zbuf/base/sys.h"

namespace zbuf::heap_detail {

Result<std::uint64_t> checkAllocation(std::string_view heap, std::uint64_t len, int fdFlags,
                                      std::uint64_t heapFlags, std::uint64_t pageSize) {
  // dma_heap_buffer_alloc: len = PAGE_ALIGN(len); if (!len) return -EINVAL. A length within
  // a page of 2^64 wraps around to 0 there, so it is EINVAL too, not a failed allocation.
  const std::uint64_t machinePage = sys::pageSize();
  if (len == 0 || len > ~std::uint64_t{0} - (machinePage - 1)) {
    return Error(EINVAL, "dma_heap_alloc",
                 fmt::format("heap {}: length {} page-aligns to 0", heap, len));
  }
  if ((fdFlags & ~(O_CLOEXEC | O_ACCMODE)) != 0) {
    return Error(
        EINVAL, "dma_heap_alloc",
        fmt::format("heap {}: fd flags {:#x} outside O_CLOEXEC | O_ACCMODE", heap, fdFlags));
  }
  if (heapFlags != 0) {
    return Error(EINVAL, "dma_heap_alloc",
                 fmt::format("heap {}: heap flags {:#x} (none are defined)", heap, heapFlags));
  }
  if (len > ~std::uint64_t{0} - pageSize) {
    return Error(ENOMEM, "dma_heap_alloc", fmt::format("heap {}: {} bytes", heap, len));
  }
  const std::uint64_t size = (len + pageSize - 1) / pageSize * pageSize;
  if (pageSize == kHugePage) {
    return size;  // huge pages come from their own pool, checked by the heap
  }
  const std::uint64_t backable = backableBytes();
  if (size > backable) {
    return Error(ENOMEM, "dma_heap_alloc",
                 fmt::format("heap {}: {} bytes requested but only {} can be backed (available "
                             "memory and swap, cgroup limit); zbuf refuses rather than exhaust "
                             "memory",
                             heap, size, backable));
  }
  return size;
}

Result<ExportInfo> heapExportInfo(std::string_view heap, SharedFd memfd, std::uint64_t size,
                                  std::uint64_t pageSize, int fdFlags) {
  ZBUF_ASSIGN_OR_RETURN(auto fd, bufferFdFor(memfd, fdFlags));
  std::vector<MemfdRange> ranges;
  ranges.push_back({std::move(memfd), 0, size, pageSize});
  ZBUF_ASSIGN_OR_RETURN(auto data, buildMemfdBuffer(std::move(ranges), false));
  ExportInfo info;
  info.exporterName = std::string(heap);
  info.ops = heapExporterOps();
  info.size = size;
  info.flags = fdFlags;
  info.fd = std::move(fd);
  info.priv = std::move(data);
  return info;
}

Result<BufferPtr> exportHeapBuffer(std::string_view heap, SharedFd memfd, std::uint64_t size,
                                   std::uint64_t pageSize, int fdFlags) {
  ZBUF_ASSIGN_OR_RETURN(auto info, heapExportInfo(heap, std::move(memfd), size, pageSize, fdFlags));
  return Buffer::exportBuffer(std::move(info));
}

}  // namespace zbuf::heap_detail
