// The fd-level calls on the calling thread's context (Context::current()): one per system call,
// the same for every zbuf file, falling through to the real system call for any other fd. Code
// written against the kernel runs unchanged with `ioctl` replaced by `zbuf::uapi::ioctl` and
// `errno` by the Result's code(); context.h has the contract.
//
// Thread-safety: thread-safe.
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "zbuf/base/result.h"
#include "zbuf/base/sys.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/uapi/context.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

[[nodiscard]] inline Result<UniqueFd> open(std::string_view path, int flags) {
  return Context::current().open(path, flags);
}
[[nodiscard]] inline Result<long> ioctl(int fd, unsigned long request, void* arg) {
  return Context::current().ioctl(fd, request, arg);
}
[[nodiscard]] inline Result<std::size_t> read(int fd, std::span<std::byte> out) {
  return Context::current().read(fd, out);
}
[[nodiscard]] inline Result<std::size_t> write(int fd, std::span<const std::byte> in) {
  return Context::current().write(fd, in);
}
[[nodiscard]] inline Result<int> poll(std::span<struct pollfd> fds, int timeoutMs) {
  return Context::current().poll(fds, timeoutMs);
}
[[nodiscard]] inline Result<sys::Mapping> mmap(int fd, std::size_t length, int prot, int flags,
                                               std::uint64_t offset = 0) {
  return Context::current().mmap(fd, length, prot, flags, offset);
}
[[nodiscard]] inline Result<std::int64_t> lseek(int fd, std::int64_t offset, int whence) {
  return Context::current().lseek(fd, offset, whence);
}
[[nodiscard]] inline Result<FileStat> fstat(int fd) {
  return Context::current().fstat(fd);
}
inline Result<void> close(UniqueFd fd) {
  return Context::current().close(std::move(fd));
}
inline Result<void> close(int fd) {
  return Context::current().close(fd);
}

}  // namespace zbuf::uapi
#pragma GCC visibility pop
