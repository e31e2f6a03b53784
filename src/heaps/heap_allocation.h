// Private to the heaps: what a dma-heap allocation does around the heap's own memory: the
// kernel's checks of the request, then the export of a memfd as a heap buffer.
#pragma once

#include <cstdint>
#include <string_view>

#include "zbuf/base/result.h"
#include "zbuf/base/shared_fd.h"
#include "zbuf/core/buffer.h"

namespace zbuf::heap_detail {

// The dma-heap allocation checks: EINVAL for a len that page-aligns to 0 (0, or within a page
// of 2^64, where the kernel's PAGE_ALIGN wraps), unknown fd flags or heap flags; ENOMEM above
// what can be backed. Returns len rounded up to `pageSize`.
[[nodiscard]] Result<std::uint64_t> checkAllocation(std::string_view heap, std::uint64_t len,
                                                    int fdFlags, std::uint64_t heapFlags,
                                                    std::uint64_t pageSize);

// What exportHeapBuffer exports, not yet exported.
[[nodiscard]] Result<ExportInfo> heapExportInfo(std::string_view heap, SharedFd memfd,
                                                std::uint64_t size, std::uint64_t pageSize,
                                                int fdFlags);
// Exports a heap buffer over one memfd.
[[nodiscard]] Result<BufferPtr> exportHeapBuffer(std::string_view heap, SharedFd memfd,
                                                 std::uint64_t size, std::uint64_t pageSize,
                                                 int fdFlags);

}  // namespace zbuf::heap_detail
