// IioBuffer: one buffer of an emulated IIO device (the kernel's struct iio_buffer backed by
// buffer-dma and a dmaengine channel): its own DMA engine, its sysfs-style attributes (enable,
// length, watermark), and its two interfaces, which exclude each other as in the kernel:
//  - fileio: read() (input) or write() (output) copy through the device's own ring of blocks;
//  - DMABUF: ATTACH / DETACH / ENQUEUE of externally allocated buffers, one fence per enqueue.
// Enabling the buffer picks the interface: DMABUF if any buffer is attached, fileio otherwise.
// While enabled in fileio mode ATTACH is EBUSY; while enabled in DMABUF mode read()/write()
// are EBUSY.
//
// The emulated hardware: an ADC (input) fills each block with the device's test pattern at the
// block's stream position (data mode) or leaves it untouched (benchmark mode); a DAC (output)
// checks every byte it consumes against the pattern at its stream position (data mode),
// counting mismatches, or ignores the bytes (benchmark mode). Both run at the device's sample
// rate (or unlimited). Overruns (input) and underruns (output) count the times the hardware
// finished a transfer and found nothing queued while enabled.
//
// Applications normally reach a buffer through an IioBufferFile (IioDevice::openBuffer, the
// GET_FD step); the operations below are what that file calls.
//
// Thread-safety: thread-safe. stateMutex_ serialises enable/disable/attribute changes; the
// queues have their own locks (see src/devices/iio/*_queue.h).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>

#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/fence.h"
#include "zbuf/devices/dma/dma_engine.h"
#include "zbuf/devices/iio/iio_uapi.h"
#include "zbuf/devices/pattern.h"
#include "zbuf/uapi/file.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::iio {

class FileioQueue;
class DmabufQueue;

enum class IioDirection : std::uint8_t {
  Input,   // ADC: the device writes memory (IIO_BUFFER_DIRECTION_IN)
  Output,  // DAC: the device reads memory (IIO_BUFFER_DIRECTION_OUT)
};

[[nodiscard]] const char* toString(IioDirection dir) noexcept;

struct IioBufferStats {
  // The hardware.
  std::uint64_t hardwareBytes = 0;   // bytes moved by successful transfers
  std::uint64_t transfers = 0;       // successful transfer passes
  std::uint64_t transferErrors = 0;  // failed transfers (injected, IOMMU faults), not aborts
  std::uint64_t overruns = 0;        // input: ran dry while enabled
  std::uint64_t underruns = 0;       // output: ran dry while enabled
  std::uint64_t checkedBytes = 0;    // output, data mode: bytes the DAC checked
  std::uint64_t mismatches = 0;      // output, data mode: bytes that differed from the pattern
  std::uint64_t streamOffset = 0;    // where in the stream the next transfer starts
  // fileio.
  std::uint64_t fileioBytes = 0;  // bytes copied by read()/write()
  // DMABUF.
  std::uint64_t dmabufEnqueued = 0;
  std::uint64_t dmabufCompleted = 0;
  std::uint64_t dmabufFailed = 0;
  std::size_t dmabufAttached = 0;
};

struct IioBufferParams {
  IioDirection direction = IioDirection::Input;
  SampleFormat format{};
  PatternKind pattern = PatternKind::Ramp;
  std::uint64_t sampleRate = 0;  // frames per second; 0: unlimited
  dma::DataMode mode = dma::DataMode::Data;
  std::uint64_t length = 0;                 // frames; 0: 4 MiB worth
  unsigned fileioBlocks = 4;                // the fileio ring
  std::chrono::nanoseconds dmaIdleSpin{0};  // DmaEngineConfig::idleSpin of its engine
  bool dmabuf = true;  // false: a buffer without DMABUF support (ATTACH: EPERM)
  // How long a blocking ENQUEUE waits for conflicting fences before EBUSY (the kernel's
  // DMABUF_ENQUEUE_TIMEOUT_MS; tests shorten it).
  std::chrono::milliseconds enqueueTimeout{kEnqueueTimeoutMs};
  std::string engineName = "iio-dma";
};

class IioBuffer {
 public:
  struct Private;
  // Built by IioDevice.
  [[nodiscard]] static Result<std::unique_ptr<IioBuffer>> create(std::shared_ptr<Device> device,
                                                                 unsigned index,
                                                                 IioBufferParams params);
  IioBuffer(Private key, std::shared_ptr<Device> device, unsigned index, IioBufferParams params);
  ~IioBuffer();
  IioBuffer(const IioBuffer&) = delete;
  IioBuffer& operator=(const IioBuffer&) = delete;

  [[nodiscard]] unsigned index() const noexcept { return index_; }
  [[nodiscard]] IioDirection direction() const noexcept { return params_.direction; }
  [[nodiscard]] bool isInput() const noexcept { return params_.direction == IioDirection::Input; }
  [[nodiscard]] const SampleFormat& format() const noexcept { return params_.format; }
  [[nodiscard]] std::size_t frameBytes() const noexcept { return params_.format.frameBytes(); }
  // The test pattern the ADC generates (the DAC's checker expects). setPattern: EBUSY while
  // enabled (the device's test_mode attribute).
  [[nodiscard]] PatternKind pattern() const;
  [[nodiscard]] Result<void> setPattern(PatternKind kind);
  // Whether the buffer has the DMABUF interface (ATTACH is EPERM otherwise).
  [[nodiscard]] bool dmabufSupported() const noexcept { return params_.dmabuf; }
  // What poll() on the buffer's files sleeps on (woken as fileio blocks complete).
  [[nodiscard]] uapi::WaitQueue& pollWaitQueue() noexcept;

  // --- attributes (buffer/enable, buffer/length, buffer/watermark) --------------------------
  // Enabling picks the interface (DMABUF if anything is attached) and starts the hardware;
  // fileio blocks are (re)allocated if the length changed. Enabling twice is a no-op.
  [[nodiscard]] Result<void> enable();
  // Stops the hardware: transfers in flight and queued DMABUF blocks complete with -EINTR (the
  // kernel's abort); fileio data not yet read is dropped. Disabling twice is a no-op.
  void disable();
  [[nodiscard]] bool enabled() const;
  // In frames. EBUSY while enabled; values below 2 become 2 (buffer-dma); the watermark is
  // set to half the length.
  [[nodiscard]] Result<void> setLength(std::uint64_t frames);
  [[nodiscard]] std::uint64_t length() const;
  // In frames. EINVAL for 0 or more than the length; EBUSY while enabled.
  [[nodiscard]] Result<void> setWatermark(std::uint64_t frames);
  [[nodiscard]] std::uint64_t watermark() const;
  // Bytes per fileio block (length * frame size / blocks, rounded up to whole frames).
  [[nodiscard]] std::uint64_t fileioBlockBytes() const;

  // The hardware: data or benchmark mode, sample rate (frames per second, 0: unlimited).
  void setMode(dma::DataMode mode);
  void setSampleRate(std::uint64_t framesPerSecond);
  // The DMA channel, for fault injection and its statistics.
  [[nodiscard]] dma::DmaEngine& engine() noexcept { return *engine_; }
  [[nodiscard]] const std::shared_ptr<Device>& dmaDevice() const noexcept { return device_; }
  [[nodiscard]] IioBufferStats stats() const;

  // --- the buffer file's operations --------------------------------------------------------
  // read(): EPERM on an output buffer; EBUSY while enabled in DMABUF mode; 0 while disabled;
  // see FileioQueue::read for the rest (EAGAIN, EINVAL, watermark).
  [[nodiscard]] Result<std::size_t> read(std::span<std::byte> out, bool nonblock);
  // write(): EPERM on an input buffer; EBUSY while enabled in DMABUF mode.
  [[nodiscard]] Result<std::size_t> write(std::span<const std::byte> in, bool nonblock);
  // Bytes read() can return now (input) or write() can take now (output), fileio mode.
  [[nodiscard]] std::uint64_t fileioAvailable() const;
  // IIO_BUFFER_DMABUF_ATTACH_IOCTL: EPERM without DMABUF support; EBUSY while enabled in
  // fileio mode, if already attached, or (non-blocking) the resv is contended.
  [[nodiscard]] Result<void> attachDmabuf(const BufferPtr& buffer, bool nonblock);
  // IIO_BUFFER_DMABUF_DETACH_IOCTL: EPERM if not attached.
  [[nodiscard]] Result<void> detachDmabuf(const Buffer& buffer);
  void detachAllDmabufs();
  // IIO_BUFFER_DMABUF_ENQUEUE_IOCTL: EINVAL for unknown flags or CYCLIC on an input buffer;
  // then DmabufQueue::enqueue's errors. Returns the new fence (already in the buffer's resv).
  [[nodiscard]] Result<FencePtr> enqueueDmabuf(const Buffer& buffer, std::uint32_t flags,
                                               std::uint64_t bytesUsed, bool nonblock);
  // Detached blocks whose transfers are still in flight.
  [[nodiscard]] std::size_t dmabufZombies() const;

  // The busy bit of GET_FD: true if the buffer was free and is now open.
  [[nodiscard]] bool tryOpen() noexcept;
  void close() noexcept;

 private:
  enum class Mode : std::uint8_t { Fileio, Dmabuf };

  void onStarved();
  [[nodiscard]] std::uint64_t blockBytesFor(std::uint64_t frames) const;

  const unsigned index_;
  IioBufferParams params_;
  std::shared_ptr<Device> device_;
  PatternGenerator generator_;
  PatternChecker checker_;
  std::unique_ptr<dma::DmaEngine> engine_;
  std::unique_ptr<FileioQueue> fileio_;
  std::unique_ptr<DmabufQueue> dmabuf_;

  mutable Mutex stateMutex_;
  bool enabled_ ZBUF_GUARDED_BY(stateMutex_) = false;
  Mode mode_ ZBUF_GUARDED_BY(stateMutex_) = Mode::Fileio;
  std::uint64_t length_ ZBUF_GUARDED_BY(stateMutex_) = 0;
  std::uint64_t watermark_ ZBUF_GUARDED_BY(stateMutex_) = 0;
  std::atomic<std::uint64_t> watermarkBytes_{0};  // read() reads it without stateMutex_
  std::atomic<bool> open_{false};
  std::atomic<std::uint64_t> checkedBytes_{0};
  std::atomic<std::uint64_t> mismatches_{0};
  std::atomic<std::uint64_t> dmabufStarved_{0};
  // Mirror of (enabled_, mode_) for the engine's callbacks, which must not take stateMutex_.
  static constexpr int kStreamingNone = 0;
  static constexpr int kStreamingFileio = 1;
  static constexpr int kStreamingDmabuf = 2;
  std::atomic<int> streaming_{kStreamingNone};
};

}  // namespace zbuf::iio
#pragma GCC visibility pop
