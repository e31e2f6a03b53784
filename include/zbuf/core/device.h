// Device: what an importer is to the core (the kernel's struct device as DMA sees it).
//
// A device has a name, says whether its DMA is cache-coherent with the CPU, how far it can
// address (a DMA mask), the largest scatter-gather segment it takes, and its own emulated
// IOMMU: mapping a buffer for the device allocates IOVA ranges in that address space, and the
// device's DMA (devices/dma) reaches memory only by translating IOVAs through it. A buffer
// whose memory lies beyond the DMA mask is refused with EINVAL and a message,
// never bounce-buffered, as the kernel reviewers asked for DMA-BUF.
//
// A non-coherent device's IOVAs translate to its own emulated cache (device_cache.h), not to
// the memory: it sees what the CPU wrote only after a sync for the device, and the CPU sees
// what it wrote only after a sync for the CPU (docs/coherency.md).
//
// Thread-safety: thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/core/sg_table.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

struct DeviceConfig {
  std::string name;
  bool coherent = true;
  std::uint64_t dmaMask = ~std::uint64_t{0};  // highest host address the device reaches
  std::uint64_t maxSegmentSize =
      std::uint64_t{64} * 1024;  // dma_get_max_seg_size (the kernel default)
  bool scatterGather = true;     // can take more than one segment
};

class Iommu;

class Device : public std::enable_shared_from_this<Device> {
 public:
  [[nodiscard]] static std::shared_ptr<Device> create(DeviceConfig config);

  [[nodiscard]] const std::string& name() const noexcept { return config_.name; }
  [[nodiscard]] bool coherent() const noexcept { return config_.coherent; }
  [[nodiscard]] std::uint64_t dmaMask() const noexcept { return config_.dmaMask; }
  [[nodiscard]] std::uint64_t maxSegmentSize() const noexcept { return config_.maxSegmentSize; }
  [[nodiscard]] bool scatterGather() const noexcept { return config_.scatterGather; }
  [[nodiscard]] Iommu& iommu() noexcept { return *iommu_; }
  [[nodiscard]] const Iommu& iommu() const noexcept { return *iommu_; }

  // Fault injection for coherency tests: the importer driving this device "forgets" the
  // begin (sync for the device) or the end (sync for the CPU) of its device-access brackets;
  // Attachment::beginDeviceAccess / endDeviceAccess then do nothing. Thread-safe.
  void forgetDeviceAccess(bool begin, bool end) noexcept {
    forgetBegin_.store(begin, std::memory_order_relaxed);
    forgetEnd_.store(end, std::memory_order_relaxed);
  }
  [[nodiscard]] bool forgetsBeginAccess() const noexcept {
    return forgetBegin_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] bool forgetsEndAccess() const noexcept {
    return forgetEnd_.load(std::memory_order_relaxed);
  }

  struct Private;
  Device(Private key, DeviceConfig config);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

 private:
  DeviceConfig config_;
  std::unique_ptr<Iommu> iommu_;
  std::atomic<bool> forgetBegin_{false};
  std::atomic<bool> forgetEnd_{false};
};

// The device's emulated IOMMU: IOVA ranges mapped to host memory ranges.
//
// IOVAs are handed out page-granular and never reused while the IOMMU lives; each range is
// followed by an unmapped guard page, so an access that runs past a segment faults instead of
// reaching the next one. An IOVA keeps the host address's offset within its page.
// Thread-safety: thread-safe (m_ guards the ranges).
class Iommu {
 public:
  static constexpr std::uint64_t kIovaBase = 1ULL << 32;

  Iommu() = default;
  Iommu(const Iommu&) = delete;
  Iommu& operator=(const Iommu&) = delete;
  ~Iommu() = default;

  // Maps `host` (one contiguous host range) and returns its IOVA. Page-granular. EINVAL for an
  // empty range.
  [[nodiscard]] Result<std::uint64_t> map(std::span<std::byte> host, DmaDirection dir);
  // Maps a non-coherent device's view of `memory`: translate() hands out `lines` (the device's
  // cache, same length as `memory`), and cachedRange() finds all three again for the syncs.
  // EINVAL for an empty range or lengths that differ.
  [[nodiscard]] Result<std::uint64_t> mapCached(std::span<std::byte> lines,
                                                std::span<std::byte> memory, std::byte* clean,
                                                DmaDirection dir);
  struct CachedRange {
    std::span<std::byte> lines;   // what the device sees
    std::span<std::byte> memory;  // what the CPU sees
    std::span<std::byte> clean;   // the lines' clean image
  };
  // The cached range [iova, iova + length) (no direction check: this is cache maintenance,
  // not a device access). EFAULT if any byte is unmapped, EINVAL if the range is not cached.
  [[nodiscard]] Result<CachedRange> cachedRange(std::uint64_t iova, std::uint64_t length) const;
  // Unmaps the range that starts at `iova` (as returned by map). EINVAL if unknown.
  [[nodiscard]] Result<void> unmap(std::uint64_t iova);
  // Host memory for [iova, iova + length): EFAULT if any byte is unmapped (an IOMMU fault),
  // EPERM if `write` is requested on a ToDevice mapping or a read on a FromDevice one.
  [[nodiscard]] Result<std::span<std::byte>> translate(std::uint64_t iova, std::uint64_t length,
                                                       bool write) const;
  // Number of live IOVA ranges.
  [[nodiscard]] std::size_t mappedRanges() const;
  // Incremented by every unmap (lock-free read): a translation made at generation G is still
  // valid while generation() == G, so a device may cache it (an IOTLB; devices/dma does).
  [[nodiscard]] std::uint64_t generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
  }
  // Number of translate() calls that failed (faults and direction violations).
  [[nodiscard]] std::uint64_t faults() const;

 private:
  struct Range {
    std::byte* host = nullptr;  // what the device reaches: the memory, or a device's cache lines
    std::uint64_t length = 0;
    DmaDirection dir = DmaDirection::Bidirectional;
    std::byte* memory = nullptr;  // cached ranges: the memory behind the lines
    std::byte* clean = nullptr;   // cached ranges: the lines' clean image
  };
  // The range holding [iova, iova + length), m_ held; EFAULT (counted) if there is none.
  [[nodiscard]] Result<std::map<std::uint64_t, Range>::const_iterator> findLocked(
      std::uint64_t iova, std::uint64_t length) const ZBUF_REQUIRES(m_);
  mutable Mutex m_;
  std::map<std::uint64_t, Range> ranges_ ZBUF_GUARDED_BY(m_);
  // IOVAs start high so a host pointer is never an IOVA.
  std::uint64_t next_ ZBUF_GUARDED_BY(m_) = kIovaBase;
  mutable std::uint64_t faults_ = 0;
  std::atomic<std::uint64_t> generation_{0};  // written under m_
};

}  // namespace zbuf
#pragma GCC visibility pop
