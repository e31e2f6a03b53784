// Pipeline: the experiment of the IIO and FunctionFS DMABUF cover letters as one object.
//
// It streams blocks between emulated devices in one of two modes and measures the run:
//  - fileio: the application read()s from one device and write()s to the other (two copies);
//  - dmabuf: one set of buffers is attached to both devices; each block is enqueued to the
//    producer and, when its fence signals, handed to the consumer, then re-enqueued. The
//    application never touches the data.
// Paths:
//  - IioToUsb: ADC -> application -> USB IN endpoint -> host (the host checks every byte);
//  - IioToApp: ADC -> application (the application checks every byte, or, in benchmark mode,
//    touches nothing, like `iio_rwdev -B`);
//  - UsbToDac: host -> USB OUT endpoint -> application -> DAC (the DAC checks every byte).
// In benchmark mode the emulated hardware neither generates nor checks the pattern.
// Each run() builds fresh devices (link, host, function, ADC/DAC) and tears them down after.
// Fault injection (failTransfer): on the USB link for IioToUsb and UsbToDac, on the ADC's DMA
// for IioToApp; the failed block is counted in StreamResult::errors and the stream goes on.
// docs/usb.md describes the loops and the measured numbers.
//
// Thread-safety: run() is called from one thread; requestStop() may be called from any thread
// (e.g. a signal-handling thread) and makes run() finish early with the results so far.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "zbuf/base/flags.h"
#include "zbuf/base/result.h"
#include "zbuf/devices/pattern.h"
#include "zbuf/devices/usb/link.h"  // LinkSpeed, toString(LinkSpeed), parseLinkSpeed
#include "zbuf/uapi/backend.h"
#include "zbuf/uapi/fd_calls.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

enum class StreamPath : std::uint8_t { IioToUsb, IioToApp, UsbToDac };
enum class StreamMode : std::uint8_t { Fileio, Dmabuf };

[[nodiscard]] const char* toString(StreamPath p) noexcept;  // "iio-to-usb", ...
[[nodiscard]] const char* toString(StreamMode m) noexcept;  // "fileio", "dmabuf"
[[nodiscard]] Result<StreamPath> parseStreamPath(std::string_view s);
[[nodiscard]] Result<StreamMode> parseStreamMode(std::string_view s);

// Which devices' DMA is cache-coherent (docs/coherency.md). A non-coherent device sees the
// buffers through its own emulated cache, so the DMABUF runs depend on every begin/end device
// access of the IIO and FunctionFS emulations; the fileio runs use coherent memory (the
// kernel's dma_alloc_coherent ring, the UDC's bounce-free CPU buffer) and are unaffected.
struct StreamCoherency {
  bool adc = true;
  bool dac = true;
  bool usb = true;
  friend bool operator==(const StreamCoherency&, const StreamCoherency&) = default;
};
// "coherent", "non-coherent" (every device), or a comma-separated list of device=value with
// devices adc, dac, usb (unnamed devices stay coherent), e.g. "adc=non-coherent,usb=coherent".
[[nodiscard]] Result<StreamCoherency> parseStreamCoherency(std::string_view s);
// "coherent", "non-coherent", or the list form naming the non-coherent devices.
[[nodiscard]] std::string toString(const StreamCoherency& c);

// Fault injection for coherency tests: cache-maintenance steps the run leaves out.
enum class SkippedSync : std::uint8_t {
  AdcEnd = 1,     // the ADC's end device access (sync for the CPU after it wrote a block)
  UsbBegin = 2,   // the USB IN endpoint's begin device access (sync for the device)
  UsbEnd = 4,     // the USB OUT endpoint's end device access
  DacBegin = 8,   // the DAC's begin device access
  AppStart = 16,  // iio-to-app: the application's SYNC START before it reads a block
};
ZBUF_FLAGS_OPERATORS(SkippedSync)

struct StreamConfig {
  StreamPath path = StreamPath::IioToUsb;
  std::uint64_t blockBytes = 1 << 20;
  unsigned blocks = 4;  // buffers in flight
  // Zero-copy: the application sleeps until this many blocks of a device are done (or all it
  // has), then hands them on together: one wake-up per `batch` blocks (libiio's block queue).
  // 0: automatic (half the blocks in flight); 1: wake for every block.
  unsigned batch = 0;
  // How long the ADC's and DAC's idle DMA workers poll for the next block before they sleep
  // (DmaEngineConfig::idleSpin: adaptive, backs off after a vain spin). 0: never.
  std::chrono::nanoseconds dmaIdleSpin{std::chrono::microseconds(20)};
  std::chrono::nanoseconds duration{std::chrono::seconds(5)};  // used when bytes == 0
  std::uint64_t bytes = 0;       // stop after this many bytes (0: use duration)
  bool benchmark = false;        // data untouched, not generated or checked
  std::uint64_t sampleRate = 0;  // samples per second per channel; 0 = unlimited
  SampleFormat format{};         // channels, sample size
  LinkSpeed link = LinkSpeed::Unlimited;
  PatternKind pattern = PatternKind::Ramp;
  // Fault injection for tests: fail the Nth transfer (1-based; 0 = none) with this errno.
  std::uint64_t failTransfer = 0;
  int failErrno = 5;  // EIO
  StreamCoherency coherency;
  // Checked CPU access (docs/coherency.md) for the run's buffers: their CPU mappings fault
  // outside SYNC brackets. Only iio-to-app in dmabuf mode maps them.
  bool checkCpuAccess = false;
  // Which kernel the application's calls go to (uapi/backend.h): the emulated board always
  // (Emulated); its devices with the real kernel's heap where it has one (Auto: the zero-copy
  // buffers are the kernel's dma-bufs, wrapped for the emulated devices: docs/kernel-lane.md);
  // Kernel: the real kernel only, which has no IIO and FunctionFS devices with DMABUF here, so
  // create() refuses it naming the missing device (ENODEV). Not with a given kernel (zbufd).
  uapi::Backend backend = uapi::Backend::Emulated;
  Flags<SkippedSync> skipSync;  // coherency fault injection (tests)
  // iio-to-app, data mode: the application's own use of the samples it received, called on the
  // running thread with each stretch of the stream in order, after the pattern check (inside
  // the SYNC bracket in dmabuf mode), e.g. zbuf stream --output writing them out as
  // iio_readdev does. Its time is the application's and counts in the run. Not called in
  // benchmark mode (the data is not touched) nor on the other paths (the samples go to a
  // device). To end the run from it, call Pipeline::requestStop().
  std::function<void(std::span<const std::byte>)> received;
};

// The blocks the application waits for per wake-up in a zero-copy run: `batch`, or half the
// blocks in flight (at least 1) when it is 0.
[[nodiscard]] unsigned effectiveBatch(const StreamConfig& config) noexcept;

struct StreamResult {
  StreamPath path{};
  StreamMode mode{};
  std::uint64_t blockBytes = 0;
  unsigned blocks = 0;
  std::uint64_t bytes = 0;  // bytes that reached the far end
  double seconds = 0;
  double mibPerS = 0;
  double appCpuSPerGib = 0;                // application threads only
  double hwCpuSPerGib = 0;                 // emulated hardware threads
  std::uint64_t verifiedBytes = 0;         // checked at the far end (0 in benchmark mode)
  std::uint64_t mismatches = 0;            // bytes that differed from the pattern
  std::uint64_t errors = 0;                // failed transfers
  std::vector<std::string> errorMessages;  // the first few, for the user
  bool stopped = false;                    // ended early by requestStop()
};

struct StreamProgress {
  std::uint64_t bytes;
  double seconds;
};

class Pipeline {
 public:
  // Validates the configuration (EINVAL with a message for block size 0 or not a multiple of
  // the frame size, 0 blocks, invalid sample format, ...).
  //
  // `kernel`: where the devices are. Empty: each run() builds a fresh context with a board
  // configured by `config`. Given (a client of zbufd, ipc/remote_context.h): the runs use that
  // kernel's board, whose hardware settings (sample format, pattern, sample rate, benchmark
  // mode, link speed) replace config's, read from its bench file (devices/board.h); fault
  // injection, coherency settings and checked CPU access are EINVAL there (they configure a
  // board built for the run), and a kernel without a board is ENOENT.
  [[nodiscard]] static Result<Pipeline> create(StreamConfig config,
                                               std::shared_ptr<uapi::FdCalls> kernel = nullptr);

  // Runs one mode to completion (bytes or duration), or until requestStop(). `progress` is
  // called from the running thread a few times a second (may be empty).
  [[nodiscard]] Result<StreamResult> run(
      StreamMode mode, const std::function<void(const StreamProgress&)>& progress = {});
  // Thread-safe and async-signal-safe (a relaxed atomic store).
  void requestStop() noexcept { stop_->store(true, std::memory_order_relaxed); }
  [[nodiscard]] const StreamConfig& config() const noexcept { return config_; }

 private:
  Pipeline(StreamConfig config, std::shared_ptr<uapi::FdCalls> kernel);
  StreamConfig config_;
  std::shared_ptr<uapi::FdCalls> kernel_;
  std::shared_ptr<std::atomic<bool>> stop_;
};

}  // namespace zbuf
#pragma GCC visibility pop
