// The backends (backend.h).
#include "zbuf/uapi/backend.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "zbuf/uapi/kernel_calls.h"

namespace zbuf::uapi {

namespace {

constexpr std::string_view kHeapDir = "/dev/dma_heap/";
constexpr std::string_view kUdmabuf = "/dev/udmabuf";
constexpr std::string_view kSwSync = "/sys/kernel/debug/sync/sw_sync";

bool exists(std::string_view path) {
  return ::access(std::string(path).c_str(), F_OK) == 0;
}

std::vector<std::string> listDir(const char* dir, std::string_view prefix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.starts_with(prefix)) {
      out.push_back(std::move(name));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// What makes the kernel create the node at `path`.
std::string whatMakes(std::string_view path) {
  if (path == "/dev/dma_heap/system") {
    return "CONFIG_DMABUF_HEAPS_SYSTEM";
  }
  if (path == "/dev/dma_heap/hugepage") {
    return "a heap no kernel has: zbuf's huge-page heap exists only in the emulation";
  }
  if (path.starts_with(kHeapDir)) {
    return "a dma-heap of that name (CONFIG_DMABUF_HEAPS_CMA and a CMA area, or a driver's)";
  }
  if (path == kUdmabuf) {
    return "CONFIG_UDMABUF";
  }
  if (path == kSwSync) {
    return "CONFIG_SW_SYNC and debugfs mounted at /sys/kernel/debug";
  }
  if (path.starts_with("/dev/iio:device")) {
    return "an IIO driver with a buffer (CONFIG_IIO)";
  }
  return "the driver that makes it";
}

// The real kernel's calls, shared by every AutoCalls (KernelCalls has no state).
KernelCalls& kernel() {
  static KernelCalls calls;
  return calls;
}

}  // namespace

std::string_view backendName(Backend backend) noexcept {
  switch (backend) {
    case Backend::Emulated:
      return "emulated";
    case Backend::Kernel:
      return "kernel";
    case Backend::Auto:
      return "auto";
  }
  return "?";
}

Result<Backend> parseBackend(std::string_view name) {
  for (const Backend b : {Backend::Emulated, Backend::Kernel, Backend::Auto}) {
    if (name == backendName(b)) {
      return b;
    }
  }
  return Error(EINVAL, "backend",
               fmt::format("'{}' is not a backend (emulated, kernel or auto)", name));
}

KernelPieces probeKernel() {
  KernelPieces pieces;
  pieces.heaps = listDir("/dev/dma_heap", "");
  pieces.udmabuf = exists(kUdmabuf);
  pieces.swSync = exists(kSwSync);
  pieces.iio = listDir("/dev", "iio:device");
  return pieces;
}

bool isKernelPath(std::string_view path) noexcept {
  return (path.starts_with(kHeapDir) && path.size() > kHeapDir.size()) || path == kUdmabuf ||
         path == kSwSync;
}

Result<void> requireKernelPath(std::string_view path) {
  if (exists(path)) {
    return {};
  }
  return Error(ENODEV, "kernel backend",
               fmt::format("the running kernel has no {} (it needs {})", path, whatMakes(path)));
}

Result<UniqueFd> AutoCalls::open(std::string_view path, int flags) {
  if (isKernelPath(path) && exists(path)) {
    return kernel().open(path, flags);
  }
  return context_->open(path, flags);
}

Result<long> AutoCalls::ioctl(int fd, unsigned long request, void* arg) {
  return context_->ioctl(fd, request, arg);
}

Result<std::size_t> AutoCalls::read(int fd, std::span<std::byte> out) {
  return context_->read(fd, out);
}

Result<std::size_t> AutoCalls::write(int fd, std::span<const std::byte> in) {
  return context_->write(fd, in);
}

Result<int> AutoCalls::poll(std::span<struct pollfd> fds, int timeoutMs) {
  return context_->poll(fds, timeoutMs);
}

Result<sys::Mapping> AutoCalls::mmap(int fd, std::size_t length, int prot, int flags,
                                     std::uint64_t offset) {
  return context_->mmap(fd, length, prot, flags, offset);
}

Result<std::int64_t> AutoCalls::lseek(int fd, std::int64_t offset, int whence) {
  return context_->lseek(fd, offset, whence);
}

Result<FileStat> AutoCalls::fstat(int fd) {
  return context_->fstat(fd);
}

Result<std::string> AutoCalls::fdinfo(int fd) {
  return context_->fdinfo(fd);  // a file of the real kernel shows the kernel's own text
}

Result<std::string> AutoCalls::fdPath(int fd) {
  return context_->fdPath(fd);
}

Result<void> AutoCalls::close(int fd) {
  return context_->close(fd);
}

Result<std::shared_ptr<FdCalls>> openBackend(Backend backend, ContextPtr emulated,
                                             std::span<const std::string> required) {
  switch (backend) {
    case Backend::Emulated:
      return std::shared_ptr<FdCalls>(std::move(emulated));
    case Backend::Kernel:
      for (const auto& path : required) {
        ZBUF_TRY(requireKernelPath(path));
      }
      return std::shared_ptr<FdCalls>(std::make_shared<KernelCalls>());
    case Backend::Auto:
      return std::shared_ptr<FdCalls>(std::make_shared<AutoCalls>(std::move(emulated)));
  }
  return Error(EINVAL, "backend", "unknown backend");
}

}  // namespace zbuf::uapi
