// Backends: which kernel stands behind an application's fd-level calls, chosen at run time.
//
//   emulated  zbuf's own emulated kernel (a Context): works everywhere; the default.
//   kernel    the real kernel (KernelCalls, kernel_calls.h): every path and every fd goes to the
//             real system call. Choosing it fails with ENODEV and a message naming the missing
//             piece (the device node and the kernel option that makes it) when a path the
//             application needs is not there; it never falls back to the emulation.
//   auto      the kernel where it has the piece: open() of a kernel path (/dev/dma_heap/<name>,
//             /dev/udmabuf, sw_sync) goes to the real kernel when that node exists, everything
//             else to the emulated Context. An fd the real kernel made is a foreign fd to the
//             Context, which sends every call on it to the real system call, so a heap buffer
//             from the real kernel and an emulated IIO device mix in one application.
//
// The model is libcamera's DmaBufAllocator: a table of providers, one call that returns an fd,
// and code downstream that never knows which provider it got.
//
// Thread-safety: the functions are thread-safe; AutoCalls as Context.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/fd_calls.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

enum class Backend { Emulated, Kernel, Auto };

// "emulated", "kernel", "auto".
[[nodiscard]] std::string_view backendName(Backend backend) noexcept;
// The reverse; EINVAL for any other word.
[[nodiscard]] Result<Backend> parseBackend(std::string_view name);

// What the running kernel has of what zbuf emulates (read from /dev and debugfs).
struct KernelPieces {
  std::vector<std::string> heaps;  // the names under /dev/dma_heap, sorted
  bool udmabuf = false;            // /dev/udmabuf
  bool swSync = false;             // /sys/kernel/debug/sync/sw_sync (CONFIG_SW_SYNC, debugfs)
  std::vector<std::string> iio;    // /dev/iio:deviceN, sorted
};
[[nodiscard]] KernelPieces probeKernel();

// The path of a node the real kernel makes and zbuf emulates too (the heaps, udmabuf, sw_sync):
// the paths auto sends to the kernel when they exist there.
[[nodiscard]] bool isKernelPath(std::string_view path) noexcept;

// ENODEV naming `path` and what makes it (e.g. "CONFIG_DMABUF_HEAPS_SYSTEM") when the running
// kernel has no node at `path`.
[[nodiscard]] Result<void> requireKernelPath(std::string_view path);

// The auto backend: open() of a kernel path that exists on the running kernel goes to the real
// kernel; every other call to `context` (which passes fds it does not own to the kernel).
class AutoCalls final : public FdCalls {
 public:
  explicit AutoCalls(ContextPtr context) : context_(std::move(context)) {}

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

  [[nodiscard]] Context& context() const noexcept { return *context_; }

 private:
  ContextPtr context_;
};

// The calls of `backend`: `emulated` itself, a KernelCalls, or an AutoCalls over `emulated`.
// For the kernel backend each of `required` must exist on the running kernel
// (requireKernelPath); emulated and auto need nothing.
[[nodiscard]] Result<std::shared_ptr<FdCalls>> openBackend(
    Backend backend, ContextPtr emulated, std::span<const std::string> required = {});

}  // namespace zbuf::uapi
#pragma GCC visibility pop
