// Board: the emulated hardware of a zbuf machine, installed into a context: an ADC and a DAC
// (IIO devices with DMABUF), a USB device controller with a FunctionFS function bound to it, the
// cable (a UsbLink of a chosen speed) and the host at its far end, which checks what it
// receives and sends the pattern. Applications see only the nodes it registers:
//
//   /dev/iio:device0, /sys/bus/iio/devices/iio:device0/...   the ADC ("adc")
//   /dev/iio:device1, /sys/bus/iio/devices/iio:device1/...   the DAC ("dac")
//   /dev/usb-ffs/zbuf/ep0, ep1 (IN), ep2 (OUT)               the FunctionFS function
//   /dev/virtio-video0, /dev/virtio-video1                   the virtio video decoder and
//                                                            display, and their host
//                                                            (devices/virtio/virtio_video.h)
//
// The board itself is the test bench: what the far ends verified (the host, the DAC's checker)
// and what the hardware counted (failed transfers) are read from it, as one reads a logic
// analyser, not through the application's device files. It also shows them as files beside the
// devices, under debugfs, so that a program in another process (a client of zbufd) can read
// the bench too; each file is "key value" lines:
//
//   /sys/kernel/debug/zbuf/board             the configuration (format, pattern, benchmark, ...)
//   /sys/kernel/debug/zbuf/host/ep1, ep2     the host's endpoint counters (bytes, verified,
//                                            mismatches, gaps, lost, offset); written:
//                                            "reset OFFSET", and for ep2 "send" and "stop"
//   /sys/kernel/debug/zbuf/iio:device0, 1    the ADC's and DAC's buffer counters
//                                            (hardware_bytes, transfer_errors, checked,
//                                            mismatches, stream_offset)
//   /sys/kernel/debug/zbuf/virtio/...        the virtio host's registry and the video pair's
//                                            counters (virtio_video.h)
//
// The embedded `zbuf stream` builds a board for each run; zbufd keeps one for its lifetime.
//
// Thread-safety: thread-safe; the devices carry their own locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "zbuf/base/result.h"
#include "zbuf/devices/iio/iio_device.h"
#include "zbuf/devices/pattern.h"
#include "zbuf/devices/usb/functionfs.h"
#include "zbuf/devices/usb/host.h"
#include "zbuf/devices/usb/link.h"
#include "zbuf/devices/virtio/virtio_host.h"
#include "zbuf/devices/virtio/virtio_video.h"
#include "zbuf/uapi/context.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

// Where an injected fault hits.
enum class FaultSite : std::uint8_t { None, Adc, UsbLink };

struct BoardConfig {
  SampleFormat format{};
  PatternKind pattern = PatternKind::Ramp;
  std::uint64_t sampleRate = 0;  // ADC and DAC frames per second; 0: unlimited
  bool benchmark = false;        // hardware neither generates nor checks the pattern
  LinkSpeed link = LinkSpeed::Unlimited;
  // Whether each device's DMA is cache-coherent (docs/coherency.md), and, for coherency tests,
  // cache-maintenance steps the emulated drivers leave out.
  bool coherentAdc = true;
  bool coherentDac = true;
  bool coherentUsb = true;
  bool skipAdcEnd = false;
  bool skipDacBegin = false;
  bool skipUsbBegin = false;
  bool skipUsbEnd = false;
  std::uint64_t iioLength = 0;  // frames per IIO buffer (0: the device default)
  unsigned iioFileioBlocks = 4;
  std::chrono::nanoseconds dmaIdleSpin{0};  // the ADC's and DAC's DMA engines (DmaEngineConfig)
  // The virtio host's round trip for registering a UUID (virtio_host.h).
  std::chrono::nanoseconds virtioRegistrationLatency{0};
  // Fault injection: the Nth transfer (1-based) at `faultSite` fails with `faultErrno`.
  FaultSite faultSite = FaultSite::None;
  std::uint64_t faultTransfer = 0;
  int faultErrno = 5;  // EIO
};

class Board {
 public:
  static constexpr const char* kAdcPath = "/dev/iio:device0";
  static constexpr const char* kDacPath = "/dev/iio:device1";
  static constexpr const char* kAdcSysfs = "/sys/bus/iio/devices/iio:device0";
  static constexpr const char* kDacSysfs = "/sys/bus/iio/devices/iio:device1";
  static constexpr const char* kFunctionFsMount = "/dev/usb-ffs/zbuf";
  static constexpr unsigned kUsbIn = 1;                               // ep1: gadget to host
  static constexpr unsigned kUsbOut = 2;                              // ep2: host to gadget
  static constexpr const char* kBenchDir = "/sys/kernel/debug/zbuf";  // the bench files

  // Builds the hardware and registers its nodes in `context` (EEXIST if they are taken). The
  // function is bound and the host has configured it (the endpoints are enabled).
  [[nodiscard]] static Result<std::shared_ptr<Board>> create(uapi::Context& context,
                                                             BoardConfig config);
  ~Board();
  Board(const Board&) = delete;
  Board& operator=(const Board&) = delete;

  [[nodiscard]] const BoardConfig& config() const noexcept { return config_; }
  [[nodiscard]] iio::IioDevice& adc() const noexcept { return *adc_; }
  [[nodiscard]] iio::IioDevice& dac() const noexcept { return *dac_; }
  [[nodiscard]] usb::UsbHost& host() const noexcept { return *host_; }
  [[nodiscard]] usb::FunctionFs& function() const noexcept { return *function_; }
  [[nodiscard]] virtio::VirtioHost& virtioHost() const noexcept { return *virtioHost_; }
  [[nodiscard]] virtio::VideoDecoder& videoDecoder() const noexcept { return *decoder_; }
  [[nodiscard]] virtio::VideoDisplay& videoDisplay() const noexcept { return *display_; }
  // The test bench's view of a block: the status (1 ok, 0 pending, a negative errno) of the
  // newest fence of `driver` ("iio", "functionfs") on the buffer `bufferFd` of `context`, as
  // debugfs bufinfo lists a buffer's fences. 1 if there is none.
  [[nodiscard]] static int lastFenceStatus(uapi::Context& context, int bufferFd,
                                           std::string_view driver);

  struct Private;
  Board(Private key, uapi::Context& context, BoardConfig config);

 private:
  [[nodiscard]] Result<void> build();

  uapi::Context& context_;
  BoardConfig config_;
  std::shared_ptr<usb::UsbLink> link_;
  std::unique_ptr<usb::UsbHost> host_;
  std::shared_ptr<usb::FunctionFs> function_;
  std::shared_ptr<iio::IioDevice> adc_;
  std::shared_ptr<iio::IioDevice> dac_;
  std::shared_ptr<virtio::VirtioHost> virtioHost_;
  std::shared_ptr<virtio::VideoDecoder> decoder_;
  std::shared_ptr<virtio::VideoDisplay> display_;
};

}  // namespace zbuf
#pragma GCC visibility pop
