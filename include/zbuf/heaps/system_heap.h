// The system heap: buffers of ordinary memory, each a memfd (zero-filled, size rounded up to
// the 4 KiB page, sealed against shrinking and growing). Its pages are modelled as 4 KiB
// pages that are not physically contiguous (page_run.h): a mapping has about size/4 KiB
// segments, as the kernel's system heap has when memory is fragmented. Exporter name "system".
#pragma once

#include "zbuf/heaps/heap.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class SystemHeap final : public Heap {
 public:
  static constexpr std::string_view kName = "system";
  [[nodiscard]] static std::shared_ptr<SystemHeap> instance();

  [[nodiscard]] std::string_view name() const noexcept override { return kName; }
  [[nodiscard]] Result<BufferPtr> allocate(std::uint64_t len, int fdFlags = O_RDWR | O_CLOEXEC,
                                           std::uint64_t heapFlags = 0) override;

  // For a driver that exports system memory under operations of its own (the virtio-video
  // decoder, devices/virtio/virtio_video.h): what allocate() would export, not yet exported (the
  // memory, its fd, the private data, and the system heap's operations for the driver to build
  // its own from; they read the private data, so the driver keeps `priv` as it is). The
  // allocation's checks and errors are allocate()'s.
  [[nodiscard]] static Result<ExportInfo> exportInfo(std::uint64_t len,
                                                     int fdFlags = O_RDWR | O_CLOEXEC);
};

}  // namespace zbuf
#pragma GCC visibility pop
