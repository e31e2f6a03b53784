// FdCalls: the fd-level calls, one per system call, as an interface with two implementations:
// the embedded Context (the emulated kernel in this process, context.h) and the ipc client
// (ipc/remote_context.h: the same calls forwarded to zbufd, fds passed with SCM_RIGHTS). Code
// written against FdCalls runs unchanged on either; tests run one suite on both.
//
// The contract of each call is Context's (context.h): what the kernel's call returns for the same
// file, EBADF for an fd that is not open, the real system call for an fd zbuf does not own.
//
// Thread-safety: implementations are thread-safe.
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
#include "zbuf/uapi/file.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

class FdCalls {
 public:
  FdCalls() = default;
  virtual ~FdCalls() = default;
  FdCalls(const FdCalls&) = delete;
  FdCalls& operator=(const FdCalls&) = delete;
  FdCalls(FdCalls&&) = delete;
  FdCalls& operator=(FdCalls&&) = delete;

  [[nodiscard]] virtual Result<UniqueFd> open(std::string_view path, int flags) = 0;
  [[nodiscard]] virtual Result<long> ioctl(int fd, unsigned long request, void* arg) = 0;
  [[nodiscard]] virtual Result<std::size_t> read(int fd, std::span<std::byte> out) = 0;
  [[nodiscard]] virtual Result<std::size_t> write(int fd, std::span<const std::byte> in) = 0;
  [[nodiscard]] virtual Result<int> poll(std::span<struct pollfd> fds, int timeoutMs) = 0;
  [[nodiscard]] virtual Result<sys::Mapping> mmap(int fd, std::size_t length, int prot, int flags,
                                                  std::uint64_t offset) = 0;
  [[nodiscard]] virtual Result<std::int64_t> lseek(int fd, std::int64_t offset, int whence) = 0;
  [[nodiscard]] virtual Result<FileStat> fstat(int fd) = 0;
  [[nodiscard]] virtual Result<std::string> fdinfo(int fd) = 0;
  [[nodiscard]] virtual Result<std::string> fdPath(int fd) = 0;
  virtual Result<void> close(int fd) = 0;
  Result<void> close(UniqueFd fd) { return close(fd.release()); }
};

}  // namespace zbuf::uapi
#pragma GCC visibility pop
