// Convenience calls for heap allocation through the device nodes /dev/dma_heap/<name> of the
// calling thread's context (reference sections 6 and 12); each opens the node or makes the
// fd-level ioctl (heap_file.cpp has the files). udmabuf's are in uapi/udmabuf.h.
//
//   auto heap = zbuf::uapi::openHeap("system");          // open("/dev/dma_heap/system")
//   dma_heap_allocation_data data{.len = 1 << 20, .fd_flags = O_RDWR | O_CLOEXEC};
//   zbuf::uapi::ioctl(heap->get(), DMA_HEAP_IOCTL_ALLOC, &data);   // data.fd: the buffer
//
// Each open() makes a new device file; the buffers live while an fd or a mapping refers to
// them (uapi/file_table.h).
//
// Errors:
//   openHeap: no heap of that name ENOENT (the device node would not exist).
//   DMA_HEAP_IOCTL_ALLOC: fd not 0 on input, len 0, fd_flags beyond O_CLOEXEC | O_ACCMODE,
//     heap_flags non-zero: EINVAL; more than the machine can back: ENOMEM (zbuf refuses where
//     the kernel would exhaust memory). Any other request on a heap fd (ioctl nr >= 1) EINVAL.
//
// Thread-safety: thread-safe.
#pragma once

#include <fcntl.h>

#include <cstdint>
#include <string_view>

#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/uapi/abi.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

// open("/dev/dma_heap/<name>", O_RDONLY | O_CLOEXEC).
[[nodiscard]] Result<UniqueFd> openHeap(std::string_view name);

// DMA_HEAP_IOCTL_ALLOC on a heap fd; data->fd receives the buffer fd. ENOTTY if `heapFd` is
// not a heap device.
[[nodiscard]] Result<void> heapAlloc(int heapFd, DmaHeapAllocationData* data);

// Convenience: a buffer of `len` bytes from heap `name`.
[[nodiscard]] Result<UniqueFd> allocate(std::string_view heap, std::uint64_t len,
                                        std::uint32_t fdFlags = O_RDWR | O_CLOEXEC);

}  // namespace zbuf::uapi
#pragma GCC visibility pop
