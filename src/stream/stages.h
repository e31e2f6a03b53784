// The devices a Pipeline chains, as an application sees them: files. A DmabufStage is a device
// file with a DMABUF interface (attach a buffer fd, enqueue a block), whose completion the
// application learns by polling the buffer fd for `doneEvents()` (the kernel's implicit fences:
// POLLIN once no writer is pending, POLLOUT once nothing is); a FileioSource / FileioSink is a
// device file read or written. The loops (loops.cpp) only make fd-level calls.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "zbuf/base/hw_thread.h"
#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/stream/pipeline.h"
#include "zbuf/uapi/fd_calls.h"

namespace zbuf::pipeline {

// ioctl through the context, for the calls whose return value is only success or an errno.
[[nodiscard]] inline Result<void> ioctlVoid(uapi::FdCalls& ctx, int fd, unsigned long request,
                                            void* arg) {
  ZBUF_TRY(ctx.ioctl(fd, request, arg));
  return {};
}

class DmabufStage;

class DmabufStage {
 public:
  virtual ~DmabufStage() = default;
  [[nodiscard]] virtual Result<void> attach(int bufferFd) = 0;
  [[nodiscard]] virtual Result<void> detach(int bufferFd) = 0;
  // Queues one block of `bytes` bytes of the buffer.
  [[nodiscard]] virtual Result<void> enqueue(int bufferFd, std::uint64_t bytes) = 0;
  // What poll() on the buffer fd reports once this stage is done with a block: POLLIN for a
  // device that writes the buffer (its fence is a writer), POLLOUT for one that reads it.
  [[nodiscard]] virtual short doneEvents() const noexcept = 0;
  // The driver name of the stage's fences ("iio", "functionfs").
  [[nodiscard]] virtual const char* fenceDriver() const noexcept = 0;
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

class DmabufStage;

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

  // Whether the loops learn each block's status: with fault injection.
  [[nodiscard]] bool perBlockStatus() const;
  // The status of `stage`'s last fence on the buffer (1 ok, or a negative errno), from the
  // board (the test bench; BlockStatus in loops.cpp says why).
  [[nodiscard]] int blockStatus(int bufferFd, const DmabufStage& stage) const;
  std::function<int(int bufferFd, const DmabufStage& stage)> statusOf;

  [[nodiscard]] const StreamConfig& config() const { return config_; }
  // Blocks the application waits for per wake-up (StreamConfig::batch, resolved).
  [[nodiscard]] std::size_t batch() const;

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
  Mutex mutex_;
  ConditionVariable cv_;
  bool done_ ZBUF_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

// fileio: read a block from `source`, write it to `sink`, until the run ends. Returns the bytes
// the sink accepted.
std::uint64_t runFileioCopy(FileioSource& source, FileioSink& sink, std::uint64_t blockBytes,
                            RunControl& control);

// zero-copy: the buffers (fds) are attached to both stages; each block goes to `first`, then,
// when it polls done, to `second`, then back to `first`. Returns the bytes `second` completed.
std::uint64_t runDmabufChain(uapi::FdCalls& ctx, DmabufStage& first, DmabufStage& second,
                             const std::vector<int>& buffers, std::uint64_t blockBytes,
                             RunControl& control);

// zero-copy into the application: each block from `first` is handed to `consume` (it checks
// the bytes, or does nothing in benchmark mode) and re-enqueued. Returns the bytes consumed.
std::uint64_t runDmabufToApp(uapi::FdCalls& ctx, DmabufStage& first,
                             const std::vector<int>& buffers, std::uint64_t blockBytes,
                             const std::function<void(std::size_t slot)>& consume,
                             RunControl& control);

}  // namespace zbuf::pipeline

namespace zbuf::pipeline {

// An IIO buffer as a libiio-style application drives it: the character device, the buffer
// file from GET_FD, and the sysfs attributes (length, enable), all by path. Closing it (the
// destructor) disables the buffer and closes the files, which detaches every DMABUF.
class IioStream final : public DmabufStage, public FileioSource, public FileioSink {
 public:
  // Opens `devPath` (e.g. /dev/iio:device0), sets buffer0's length to `lengthFrames` through
  // `sysfsDir` and gets buffer 0's fd.
  [[nodiscard]] static Result<std::unique_ptr<IioStream>> open(uapi::FdCalls& ctx,
                                                               const char* devPath,
                                                               const char* sysfsDir,
                                                               std::uint64_t lengthFrames,
                                                               bool input);
  ~IioStream() override;
  IioStream(const IioStream&) = delete;
  IioStream& operator=(const IioStream&) = delete;

  // buffer0/enable.
  [[nodiscard]] Result<void> enable(bool on);

  Result<void> attach(int bufferFd) override;
  Result<void> detach(int bufferFd) override;
  Result<void> enqueue(int bufferFd, std::uint64_t bytes) override;
  [[nodiscard]] short doneEvents() const noexcept override;
  [[nodiscard]] const char* fenceDriver() const noexcept override;
  Result<std::size_t> read(std::span<std::byte> out) override;
  Result<std::size_t> write(std::span<const std::byte> in) override;

  IioStream(uapi::FdCalls& ctx, std::string sysfsDir, bool input, UniqueFd dev, UniqueFd buffer);

 private:
  uapi::FdCalls& ctx_;
  std::string sysfs_;
  bool input_;
  UniqueFd dev_;
  UniqueFd buffer_;
};

// A FunctionFS data endpoint as a FunctionFS program drives it: opened by path under the
// mount; write() (IN) or read() (OUT) for fileio, FUNCTIONFS_DMABUF_* ioctls for zero-copy.
class UsbEndpoint final : public DmabufStage, public FileioSource, public FileioSink {
 public:
  [[nodiscard]] static Result<std::unique_ptr<UsbEndpoint>> open(uapi::FdCalls& ctx,
                                                                 const std::string& path, bool in);
  ~UsbEndpoint() override;
  UsbEndpoint(const UsbEndpoint&) = delete;
  UsbEndpoint& operator=(const UsbEndpoint&) = delete;

  Result<void> attach(int bufferFd) override;
  Result<void> detach(int bufferFd) override;
  Result<void> enqueue(int bufferFd, std::uint64_t bytes) override;
  [[nodiscard]] short doneEvents() const noexcept override;
  [[nodiscard]] const char* fenceDriver() const noexcept override;
  Result<std::size_t> read(std::span<std::byte> out) override;
  Result<std::size_t> write(std::span<const std::byte> in) override;

  UsbEndpoint(uapi::FdCalls& ctx, bool in, UniqueFd fd);

 private:
  uapi::FdCalls& ctx_;
  bool in_;
  UniqueFd fd_;
};

}  // namespace zbuf::pipeline
