// Udmabuf: buffers made of ranges of the caller's memfds (the kernel's /dev/udmabuf), with
// the kernel's checks (UDMABUF_CREATE and UDMABUF_CREATE_LIST):
//  - each memfd must be an open memfd (shmem or hugetlbfs) else EBADFD (fd -1 included);
//  - its seals must include F_SEAL_SHRINK and exclude F_SEAL_WRITE and F_SEAL_FUTURE_WRITE,
//    else EINVAL;
//  - every offset and size must be page aligned, the total non-zero, else EINVAL; a range past
//    the memfd's end is EINVAL;
//  - a list must have 1..listLimit items (EINVAL), the total at most sizeLimitMb MiB (EINVAL).
// Unknown flag bits are accepted (the kernel does not reject them). Exporter name "udmabuf";
// its end_cpu_access before any begin is EINVAL (6.12's udmabuf).
//
// The buffer shares the caller's pages (no copy). Its fd is a separate, empty-content memfd of
// the buffer's size that only identifies the buffer (the kernel gives a new dma-buf file too);
// map the memory with Buffer::mmap, which maps the caller's memfd ranges (docs/buffers.md).
//
// Thread-safety: thread-safe; the limits are fixed at construction.
#pragma once

#include <cstdint>
#include <span>

#include "zbuf/base/result.h"
#include "zbuf/core/buffer.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

struct UdmabufItem {
  int memfd = -1;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

struct UdmabufConfig {
  std::uint32_t listLimit = 1024;  // module parameter list_limit
  std::uint64_t sizeLimitMb = 64;  // module parameter size_limit_mb
};

class Udmabuf {
 public:
  static constexpr unsigned kFlagCloexec = 0x01;  // UDMABUF_FLAGS_CLOEXEC
  static constexpr std::string_view kExporterName = "udmabuf";

  explicit Udmabuf(UdmabufConfig config = {}) : config_(config) {}

  [[nodiscard]] const UdmabufConfig& config() const noexcept { return config_; }
  // UDMABUF_CREATE.
  [[nodiscard]] Result<BufferPtr> create(int memfd, unsigned flags, std::uint64_t offset,
                                         std::uint64_t size) const;
  // UDMABUF_CREATE_LIST.
  [[nodiscard]] Result<BufferPtr> createList(unsigned flags,
                                             std::span<const UdmabufItem> items) const;

 private:
  UdmabufConfig config_;
};

}  // namespace zbuf
#pragma GCC visibility pop
