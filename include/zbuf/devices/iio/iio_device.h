// IioDevice: an emulated high-speed IIO device (an AD9361-class ADC or DAC behind an AXI DMA
// controller): a name, a direction, a sample format, a test pattern, a sample rate, and one or
// more buffers (IioBuffer), each with its own DMA channel. The device's DMA goes through one
// core Device (and its emulated IOMMU) created from `dma`.
//
// openBuffer() is IIO_BUFFER_GET_FD_IOCTL: it returns the buffer's file, which carries the
// fileio and DMABUF operations; ENODEV for an index out of range, EBUSY if that buffer is
// already open. The device outlives every file opened from it (files hold a reference).
//
// Thread-safety: thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/core/device.h"
#include "zbuf/devices/iio/iio_buffer.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::iio {

class IioBufferFile;

struct IioDeviceConfig {
  std::string name = "iio:device0";  // e.g. "cf-ad9361-lpc"
  IioDirection direction = IioDirection::Input;
  SampleFormat format{};  // default: 4 channels of 16-bit signed (two I/Q pairs)
  PatternKind pattern = PatternKind::Ramp;
  std::uint64_t sampleRate = 0;  // frames (samples per channel) per second; 0: unlimited
  dma::DataMode mode = dma::DataMode::Data;
  unsigned buffers = 1;
  std::uint64_t length = 0;  // frames per buffer; 0: 4 MiB worth
  unsigned fileioBlocks = 4;
  std::chrono::nanoseconds dmaIdleSpin{0};  // DmaEngineConfig::idleSpin of its buffers' engines
  bool dmabuf = true;                       // false: ATTACH is EPERM (a buffer without DMABUF ops)
  std::chrono::milliseconds enqueueTimeout{kEnqueueTimeoutMs};  // see IioBufferParams
  // The DMA device; an empty name becomes `name`. The kernel's default maximum segment size
  // is 64 KiB; the AXI DMAC takes much larger ones, so the default here is 16 MiB.
  DeviceConfig dma{"", true, ~std::uint64_t{0}, 16ULL << 20, true};
};

class IioDevice : public std::enable_shared_from_this<IioDevice> {
 public:
  // EINVAL for an invalid sample format or 0 buffers.
  [[nodiscard]] static Result<std::shared_ptr<IioDevice>> create(IioDeviceConfig config);
  ~IioDevice();
  IioDevice(const IioDevice&) = delete;
  IioDevice& operator=(const IioDevice&) = delete;

  [[nodiscard]] const std::string& name() const noexcept { return config_.name; }
  [[nodiscard]] IioDirection direction() const noexcept { return config_.direction; }
  [[nodiscard]] const SampleFormat& format() const noexcept { return config_.format; }
  [[nodiscard]] const IioDeviceConfig& config() const noexcept { return config_; }
  [[nodiscard]] const std::shared_ptr<Device>& dmaDevice() const noexcept { return device_; }
  [[nodiscard]] unsigned bufferCount() const noexcept {
    return static_cast<unsigned>(buffers_.size());
  }
  // ENODEV for an index out of range.
  [[nodiscard]] Result<IioBuffer*> buffer(unsigned index) const;

  // IIO_BUFFER_GET_FD_IOCTL. ENODEV: no such buffer; EBUSY: already open.
  [[nodiscard]] Result<std::unique_ptr<IioBufferFile>> openBuffer(unsigned index);

  struct Private;
  IioDevice(Private key, IioDeviceConfig config);

 private:
  IioDeviceConfig config_;
  std::shared_ptr<Device> device_;
  std::vector<std::unique_ptr<IioBuffer>> buffers_;
};

}  // namespace zbuf::iio
#pragma GCC visibility pop
