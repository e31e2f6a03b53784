// Heap: a dma-heap (the kernel's /dev/dma_heap/<name>): an allocator that exports buffers.
//
// zbuf's heaps: "system" (system_heap.h) always, "hugepage" (huge_page_heap.h) always listed;
// its allocations fail with a clear ENOMEM where no huge pages are reserved.
//
// Thread-safety: thread-safe.
#pragma once

#include <fcntl.h>

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/core/buffer.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class Heap {
 public:
  virtual ~Heap() = default;
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;
  // DMA_HEAP_IOCTL_ALLOC: `len` is rounded up to the heap's page size. EINVAL for len 0, for
  // fdFlags outside O_CLOEXEC | O_ACCMODE and for heapFlags != 0 (none are defined); ENOMEM,
  // with a message, for a size the machine cannot back (zbuf refuses instead of exhausting
  // memory as the kernel does). fdFlags' access mode becomes the buffer's file mode.
  [[nodiscard]] virtual Result<BufferPtr> allocate(std::uint64_t len,
                                                   int fdFlags = O_RDWR | O_CLOEXEC,
                                                   std::uint64_t heapFlags = 0) = 0;
};

using HeapPtr = std::shared_ptr<Heap>;

// Every heap, in a fixed order ("system" first).
[[nodiscard]] std::vector<HeapPtr> heaps();
// The heap called `name`; ENOENT if there is none (the device node would not exist).
[[nodiscard]] Result<HeapPtr> findHeap(std::string_view name);

}  // namespace zbuf
#pragma GCC visibility pop
