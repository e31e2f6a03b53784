// Device: what an importer is to the core (the kernel's struct device as DMA sees it).
//
// A device has a name, says whether its DMA is cache-coherent with the CPU, how far it can
// address (a DMA mask), the largest scatter-gather segment it takes, and its own emulated
// IOMMU: mapping a buffer for the device allocates IOVA ranges in that address space, and the
// device's DMA (devices/dma) reaches memory only by translating IOVAs through it. A buffer
// whose memory lies beyond the DMA mask is refused with EINVAL and a message,
// never bounce-buffered, as the kernel reviewers asked for DMA-BUF.
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

#include "zbuf/base/result.h"
#include "zbuf/core/sg_table.h"

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

  struct Private;
  Device(Private key, DeviceConfig config);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

 private:
  DeviceConfig config_;
  std::unique_ptr<Iommu> iommu_;
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
    std::byte* host;
    std::uint64_t length;
    DmaDirection dir;
  };
  mutable std::mutex m_;  // guards ranges_ and next_
  std::map<std::uint64_t, Range> ranges_;
  std::uint64_t next_ = kIovaBase;  // IOVAs start high so a host pointer is never an IOVA
  mutable std::uint64_t faults_ = 0;
  std::atomic<std::uint64_t> generation_{0};  // written under m_
};

}  // namespace zbuf
