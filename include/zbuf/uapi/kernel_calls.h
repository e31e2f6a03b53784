// KernelCalls: the fd-level calls with the real kernel behind every one of them: open(2) of
// /dev/dma_heap/<name>, /dev/udmabuf, /dev/iio:deviceN, a FunctionFS mount's files, and every
// ioctl, read, write, poll, mmap, lseek and fstat the real system call. The third implementation
// of FdCalls (beside the embedded Context and the ipc client), so code written against FdCalls
// runs unchanged on the real kernel; backend.h chooses between them at run time.
//
//   uapi::KernelCalls k;
//   UniqueFd heap = k.open("/dev/dma_heap/system", O_RDONLY).value();   // a real heap
//   dma_heap_allocation_data data{.len = 4096, .fd_flags = O_RDWR | O_CLOEXEC};
//   k.ioctl(heap.get(), DMA_HEAP_IOCTL_ALLOC, &data);                   // a real dma-buf
//
// Errors: the kernel's own errno for each call (ENOENT for a path the kernel has no node at).
// fdinfo is /proc/self/fdinfo/<fd> as the kernel writes it, fdPath readlink(/proc/self/fd/<fd>).
// open adds O_CLOEXEC, as Context::open does.
//
// Thread-safety: thread-safe (no state).
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "zbuf/base/result.h"
#include "zbuf/base/sys.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/uapi/fd_calls.h"
#include "zbuf/uapi/file.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

class KernelCalls final : public FdCalls {
 public:
  [[nodiscard]] Result<UniqueFd> open(std::string_view path, int flags) override;
  [[nodiscard]] Result<long> ioctl(int fd, unsigned long request, void* arg) override;
  [[nodiscard]] Result<std::size_t> read(int fd, std::span<std::byte> out) override;
  [[nodiscard]] Result<std::size_t> write(int fd, std::span<const std::byte> in) override;
  [[nodiscard]] Result<int> poll(std::span<struct pollfd> fds, int timeoutMs) override;
  [[nodiscard]] Result<sys::Mapping> mmap(int fd, std::size_t length, int prot, int flags,
                                          std::uint64_t offset) override;
  [[nodiscard]] Result<std::int64_t> lseek(int fd, std::int64_t offset, int whence) override;
  [[nodiscard]] Result<FileStat> fstat(int fd) override;
  [[nodiscard]] Result<std::string> fdinfo(int fd) override;
  [[nodiscard]] Result<std::string> fdPath(int fd) override;
  Result<void> close(int fd) override;
  using FdCalls::close;  // close(UniqueFd)
};

}  // namespace zbuf::uapi
#pragma GCC visibility pop
