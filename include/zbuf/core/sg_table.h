// SgTable: a scatter-gather mapping of a buffer for one device: segments of device-visible
// address and length, in buffer order, with the DMA direction they were mapped for.
//
// Segments come from the buffer's real pages: physically contiguous pages merge into one
// segment up to the device's maximum segment size. The segments' device addresses are IOVAs
// in the device's emulated IOMMU address space (see device.h); only the device's IOMMU can
// turn them back into memory.
//
// The page model (docs/buffers.md): an exporter describes its memory as PageRuns: a host
// range the CPU sees plus a modelled physical (bus) address. Host memory of a memfd mapped once
// is virtually contiguous, but the pages behind it are not physically contiguous; the modelled
// physical address is what decides merging (two runs merge only when both their host and their
// physical ranges are adjacent) and what the DMA mask is checked against. mapPageRuns() is the
// dma_map_sgtable() of zbuf: every exporter's map op calls it, unmapSgTable() undoes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/core/page_run.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class Device;
class DeviceCache;

enum class DmaDirection : std::uint8_t {
  Bidirectional = 0,  // DMA_BIDIRECTIONAL
  ToDevice = 1,       // DMA_TO_DEVICE: the device reads memory
  FromDevice = 2,     // DMA_FROM_DEVICE: the device writes memory
};

[[nodiscard]] const char* toString(DmaDirection dir) noexcept;

struct SgSegment {
  std::uint64_t dmaAddress;  // IOVA in the mapping device's address space
  std::uint64_t length;      // bytes
};

class SgTable {
 public:
  SgTable() = default;
  SgTable(std::vector<SgSegment> segments, DmaDirection direction,
          std::shared_ptr<DeviceCache> cache = nullptr)
      : segments_(std::move(segments)), direction_(direction), cache_(std::move(cache)) {}

  [[nodiscard]] const std::vector<SgSegment>& segments() const noexcept { return segments_; }
  [[nodiscard]] std::size_t segmentCount() const noexcept { return segments_.size(); }
  [[nodiscard]] DmaDirection direction() const noexcept { return direction_; }
  [[nodiscard]] bool empty() const noexcept { return segments_.empty(); }
  // Sum of the segment lengths.
  [[nodiscard]] std::uint64_t totalLength() const noexcept;
  // The non-coherent device's cache behind this mapping (null for a coherent device). Copies
  // of a table share it; it lives as long as the last copy.
  [[nodiscard]] const std::shared_ptr<DeviceCache>& cache() const noexcept { return cache_; }
  // Drops the segments (after their IOVAs were unmapped) and the cache.
  void clear() noexcept {
    segments_.clear();
    cache_.reset();
  }

 private:
  std::vector<SgSegment> segments_;
  DmaDirection direction_ = DmaDirection::Bidirectional;
  std::shared_ptr<DeviceCache> cache_;
};

// Number of segments mapPageRuns() would produce for `device` (merging adjacent runs up to the
// device's maximum segment size), without mapping anything.
[[nodiscard]] std::size_t countSegments(std::span<const PageRun> runs,
                                        std::uint64_t maxSegmentSize) noexcept;

// dma_map_sgtable: merges the runs into segments (host and physical ranges both adjacent, at
// most device.maxSegmentSize() each) and maps each segment into the device's IOMMU.
// EINVAL if any run lies beyond the device's DMA mask (no bounce buffers), if the device takes
// a single segment only and the runs need more, or if `runs` is empty; errors of the IOMMU
// are passed on (ENOMEM if a non-coherent device's cache cannot be allocated). Nothing stays
// mapped on failure. For a non-coherent device the segments map the device's cache
// (device_cache.h), filled from the memory: mapping implies a sync for the device.
[[nodiscard]] Result<SgTable> mapPageRuns(Device& device, std::span<const PageRun> runs,
                                          DmaDirection dir);
// dma_unmap_sgtable: unmaps every segment of `table` from the device's IOMMU and clears it.
// Unmapping implies a sync for the CPU: a non-coherent device's dirty lines are written back
// first (unless the table was mapped to-device: the device never wrote it).
void unmapSgTable(Device& device, SgTable& table) noexcept;

// dma_sync_sgtable_for_device: what the CPU (or another device) wrote becomes visible to the
// device: every segment's lines are filled from memory (dirty lines stay). Nothing to do for a
// coherent device (a table without a cache). Called by exporters from begin device access and
// end CPU access. Cost: one IOMMU look-up, a line walk and a barrier per segment.
void syncSgTableForDevice(const Device& device, const SgTable& table, DmaDirection dir) noexcept;
// dma_sync_sgtable_for_cpu: what the device wrote becomes visible to the CPU: every dirty line
// is written back. Nothing to do for a coherent device or for `dir` ToDevice (the kernel's
// sync for the CPU of a to-device access does nothing either). Called by exporters from end
// device access and begin CPU access.
void syncSgTableForCpu(const Device& device, const SgTable& table, DmaDirection dir) noexcept;

}  // namespace zbuf
#pragma GCC visibility pop
