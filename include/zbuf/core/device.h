// Device: what an importer is to the core (the kernel's struct device as DMA sees it).
//
// A device has a name, says whether its DMA is cache-coherent with the CPU, how far it can
// address (a DMA mask), the largest scatter-gather segment it takes, and its own emulated
// IOMMU (iommu.h): mapping a buffer for the device allocates IOVA ranges in that address space,
// and the device's DMA (devices/dma) reaches memory only by translating IOVAs through it. A buffer
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
#include <cstdint>
#include <memory>
#include <string>

#include "zbuf/core/iommu.h"
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

}  // namespace zbuf
#pragma GCC visibility pop
