// DeviceCache: the emulated cache of a non-coherent device, for one mapping of one buffer.
//
// A coherent device reaches a buffer's memory directly through its IOMMU. A non-coherent one
// (DeviceConfig::coherent = false) reaches it through a cache of its own: when such a device
// maps a buffer (mapPageRuns), the mapping gets a DeviceCache, and the device's IOVAs
// translate to the cache's lines, not to the memory. What the device writes stays in its
// lines until they are written back; what the CPU (or another device) writes to the memory
// reaches the device only when its lines are filled again. Both happen only in the syncs of
// the DMA API (sg_table.h): mapping fills, unmapping writes back, and dma_sync_sgtable_for_device
// / _for_cpu fill / write back in between (the exporters call them from begin/end device access
// and begin/end CPU access). Forgetting one therefore gives stale data, as on real hardware.
//
// The model of a write-back cache: besides its lines the cache keeps their clean image (what
// the memory held when a line was last filled or written back). A line is dirty when the device
// changed it since. Fill copies memory into every clean line whose memory changed (dirty lines
// stay, as a write-back cache keeps them until cleaned); write back copies every dirty line to
// memory. So a sync never clobbers what another device or the CPU wrote elsewhere in the
// buffer, and the cost of a sync is a walk of every line of every segment: it grows with the
// buffer and, per segment, with the scatter-gather table (each segment is found through the
// IOMMU and ends with a barrier, like dma_sync_sg's per-entry maintenance).
//
// Memory: the lines and the clean image are anonymous memory of twice the mapping's length.
// Thread-safety: fill() and writeBack() serialise on the cache's mutex (two syncs of one
// mapping never interleave); the device's DMA reads and writes the lines without it, as
// hardware does: a correct program does not sync a mapping while its device writes it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/base/sys.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class DeviceCache {
 public:
  static constexpr std::size_t kLineBytes = 64;

  // Lines and clean image for a mapping of `bytes` bytes. ENOMEM if they cannot be allocated.
  [[nodiscard]] static Result<std::shared_ptr<DeviceCache>> create(std::uint64_t bytes);

  // The device's view at `offset` (what the IOMMU maps) and its clean image.
  [[nodiscard]] std::span<std::byte> lines(std::uint64_t offset, std::uint64_t length) const;
  [[nodiscard]] std::span<std::byte> cleanImage(std::uint64_t offset, std::uint64_t length) const;
  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }

  // The walks over one segment, with the cache's mutex held by the caller (mutex()).
  // Fill: every clean line whose memory changed takes the memory's bytes. Returns the lines
  // copied.
  static std::uint64_t fill(std::span<std::byte> lines, std::span<std::byte> clean,
                            std::span<const std::byte> memory) noexcept;
  // Write back: every dirty line goes to memory and becomes clean. Returns the lines copied.
  static std::uint64_t writeBack(std::span<const std::byte> lines, std::span<std::byte> clean,
                                 std::span<std::byte> memory) noexcept;

  // Serialises the syncs of this mapping (the lines and the clean image are memory, not
  // members, so nothing is ZBUF_GUARDED_BY it: the walks' callers take it).
  [[nodiscard]] Mutex& mutex() noexcept ZBUF_RETURN_CAPABILITY(mutex_) { return mutex_; }
  // A full memory barrier (a sequentially consistent read-modify-write: a locked instruction on
  // x86; std::atomic_thread_fence is not supported by ThreadSanitizer).
  void barrier() noexcept { barriers_.fetch_add(1, std::memory_order_seq_cst); }

  // Counters (relaxed): syncs done and lines they copied, for tests and benchmarks.
  struct Stats {
    std::uint64_t fills = 0;
    std::uint64_t writeBacks = 0;
    std::uint64_t linesFilled = 0;
    std::uint64_t linesWrittenBack = 0;
  };
  [[nodiscard]] Stats stats() const noexcept;
  void countFill(std::uint64_t lines) noexcept;
  void countWriteBack(std::uint64_t lines) noexcept;

  struct Private;
  DeviceCache(Private key, sys::Mapping memory, std::uint64_t size);

 private:
  sys::Mapping memory_;  // [0, size_): the lines; [stride_, stride_ + size_): the clean image
  std::uint64_t size_;
  std::uint64_t stride_;
  Mutex mutex_;
  std::atomic<std::uint64_t> fills_{0};
  std::atomic<std::uint64_t> writeBacks_{0};
  std::atomic<std::uint64_t> linesFilled_{0};
  std::atomic<std::uint64_t> linesWrittenBack_{0};
  std::atomic<std::uint64_t> barriers_{0};
};

}  // namespace zbuf
#pragma GCC visibility pop
