// The heap convenience calls: open the device node and make the fd-level ioctl, so they answer
// exactly as /dev/dma_heap/<name> does (heap_file.cpp).
#include "zbuf/uapi/heap.h"

#include <fmt/format.h>

#include "zbuf/uapi/calls.h"

namespace zbuf::uapi {

Result<UniqueFd> openHeap(std::string_view name) {
  return Context::current().open(fmt::format("/dev/dma_heap/{}", name), O_RDONLY | O_CLOEXEC);
}

Result<void> heapAlloc(int heapFd, DmaHeapAllocationData* data) {
  ZBUF_TRY(Context::current().ioctl(heapFd, kDmaHeapIoctlAlloc, data));
  return {};
}

Result<UniqueFd> allocate(std::string_view heap, std::uint64_t len, std::uint32_t fdFlags) {
  ZBUF_ASSIGN_OR_RETURN(auto heapFd, openHeap(heap));
  DmaHeapAllocationData data{};
  data.len = len;
  data.fdFlags = fdFlags;
  ZBUF_TRY(heapAlloc(heapFd.get(), &data));
  return UniqueFd::adopt(static_cast<int>(data.fd));
}

}  // namespace zbuf::uapi
