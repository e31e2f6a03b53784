// The devices a Pipeline chains, seen through two small interfaces, and the loops that drive
// them (pipeline_loops.cpp). A DmabufStage is a device with the DMABUF interface (attach,
// enqueue a block, a fence per block); a FileioStage is a device with read()/write().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "zbuf/base/hw_thread.h"
#include "zbuf/base/result.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/fence.h"
#include "zbuf/devices/pipeline.h"

namespace zbuf::pipeline {

class DmabufStage {
 public:
  virtual ~DmabufStage() = default;
  [[nodiscard]] virtual Result<void> attach(const BufferPtr& buffer) = 0;
  [[nodiscard]] virtual Result<void> detach(const BufferPtr& buffer) = 0;
  // Queues one block of `bytes` bytes; the fence signals when the device is done with it.
  [[nodiscard]] virtual Result<FencePtr> enqueue(const BufferPtr& buffer, std::uint64_t bytes) = 0;
};

class FileioSource {
 public:
  virtual ~FileioSource() = default;
  [[nodiscard]] virtual Result<std::size_t> read(std::span<std::byte> out) = 0;
};

class FileioSink {
 public:
  virtual ~FileioSink() = default;
  [[nodiscard]] virtual Result<std::size_t> write(std::span<const std::byte> in) = 0;
};

// When a run ends, and what it counted so far. Owned by the running thread; aborted() may also
// be called from a StopWatch's thread once begin() returned.
class RunControl {
 public:
  RunControl(const StreamConfig& config, const std::atomic<bool>& stop,
             const std::function<void(const StreamProgress&)>& progress);

  // The timed part of the run: begin() once the devices are set up (it restarts the clock and
  // the deadline and reads the CPU split), end() when the loop returned (before teardown).
  void begin();
  void end();
  [[nodiscard]] const cpu::Split& cpuAtBegin() const { return cpuBegin_; }
  [[nodiscard]] const cpu::Split& cpuAtEnd() const { return cpuEnd_; }

  // True once no new block may start: the byte budget is issued, the time is up, or a stop
  // was requested.
  [[nodiscard]] bool doneIssuing(std::uint64_t issuedBytes) const;
  // True when the run must end without draining produced blocks (time up or stop requested).
  [[nodiscard]] bool aborted() const;
  // Calls the progress callback if it is time to (a few times a second).
  void tick(std::uint64_t deliveredBytes);
  void error(const Error& e);
  void error(int negativeErrno, const char* what);

  [[nodiscard]] double elapsedSeconds() const;
  [[nodiscard]] bool stopRequested() const { return stop_.load(std::memory_order_relaxed); }

  std::uint64_t errors = 0;
  std::vector<std::string> messages;

 private:
  const StreamConfig& config_;
  const std::atomic<bool>& stop_;
  const std::function<void(const StreamProgress&)>& progress_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point deadline_;
  std::chrono::steady_clock::time_point nextTick_;
  std::chrono::steady_clock::time_point end_{};
  bool ended_ = false;
  cpu::Split cpuBegin_{};
  cpu::Split cpuEnd_{};
};

// Cancels what is in flight once the run is aborted (time up or stop requested), from its own
// thread, so that a loop blocked in a device call (a read() waiting for a block that fills
// slowly) returns at once: `cancel` stops the devices as a driver's abort does (IIO disable:
// blocked read()/write() return, queued blocks' fences signal -EINTR). Checks every 10 ms;
// calls `cancel` at most once; the destructor stops checking and joins. Construct it after
// RunControl::begin() and destroy it before the devices `cancel` touches.
class StopWatch {
 public:
  StopWatch(const RunControl& control, std::function<void()> cancel);
  ~StopWatch();
  StopWatch(const StopWatch&) = delete;
  StopWatch& operator=(const StopWatch&) = delete;

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;  // guarded by m_
  std::thread thread_;
};

// fileio: read a block from `source`, write it to `sink`, until the run ends. Returns the bytes
// the sink accepted.
std::uint64_t runFileioCopy(FileioSource& source, FileioSink& sink, std::uint64_t blockBytes,
                            RunControl& control);

// zero-copy: `buffers` are attached to both stages; each block goes to `first`, then, when its
// fence signals, to `second`, then back to `first`. A failed block (fence error) goes back to
// the stage that failed it... no: a block `first` failed returns to `first`; a block `second`
// failed returns to `first` too (its data is lost). Returns the bytes `second` completed.
std::uint64_t runDmabufChain(DmabufStage& first, DmabufStage& second,
                             const std::vector<BufferPtr>& buffers, std::uint64_t blockBytes,
                             RunControl& control);

// zero-copy into the application: each block from `first` is handed to `consume` (it checks
// the bytes, or does nothing in benchmark mode) and re-enqueued. Returns the bytes consumed.
std::uint64_t runDmabufToApp(DmabufStage& first, const std::vector<BufferPtr>& buffers,
                             std::uint64_t blockBytes,
                             const std::function<void(std::size_t slot)>& consume,
                             RunControl& control);

}  // namespace zbuf::pipeline

namespace zbuf::pipeline {

// The emulated IIO devices as a Pipeline uses them (pipeline_iio.cpp adapts the IIO device).
// An ADC produces the test pattern (or, in benchmark mode, leaves memory untouched); a DAC
// consumes and checks it. Both run on hardware threads. Ended (stopped, buffers released) by
// the destructor.
class IioPort {
 public:
  virtual ~IioPort() = default;
  // Starts the device's stream for fileio (read() on an ADC, write() on a DAC).
  [[nodiscard]] virtual Result<void> startFileio() = 0;
  [[nodiscard]] virtual FileioSource* source() { return nullptr; }  // ADC
  [[nodiscard]] virtual FileioSink* sink() { return nullptr; }      // DAC
  // The DMABUF interface (attach, enqueue a block, its fence); start before enqueueing.
  [[nodiscard]] virtual Result<void> startDmabuf() = 0;
  [[nodiscard]] virtual DmabufStage& dmabuf() = 0;
  // DAC only: bytes checked and bytes that differed, so far.
  [[nodiscard]] virtual std::uint64_t verifiedBytes() const { return 0; }
  [[nodiscard]] virtual std::uint64_t mismatches() const { return 0; }
  // Transfers the hardware failed so far (fileio hides them from read()/write()).
  [[nodiscard]] virtual std::uint64_t transferErrors() const { return 0; }
  // Bytes the hardware moved in successful transfers so far.
  [[nodiscard]] virtual std::uint64_t hardwareBytes() const { return 0; }
  // DAC, fileio: waits (up to `timeout`, or until stopped) until the hardware consumed
  // `bytes` written bytes.
  virtual void drain(std::uint64_t /*bytes*/, std::chrono::milliseconds /*timeout*/) {}
  // Stops the stream (pending blocks complete or are cancelled) before buffers are detached.
  virtual void stop() = 0;
};

// An ADC / a DAC configured from the stream configuration (format, pattern, sample rate,
// benchmark mode, block size). `failBlock`: the n-th block (1-based; 0 none) fails with
// `failErrno` (used by IioToApp, which has no link to inject faults on).
[[nodiscard]] Result<std::unique_ptr<IioPort>> makeAdc(const StreamConfig& config,
                                                       std::uint64_t failBlock, int failErrno);
[[nodiscard]] Result<std::unique_ptr<IioPort>> makeDac(const StreamConfig& config);

}  // namespace zbuf::pipeline
