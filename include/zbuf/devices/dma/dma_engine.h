// DmaEngine: an emulated DMA controller channel (a dmaengine slave channel).
//
// What it promises:
//  - One worker (a HardwareThread named after the channel: its CPU time is hardware, not
//    application) executes submitted descriptors strictly in submission order and calls each
//    descriptor's completion once per submission with 0 or a negative errno.
//  - It reaches memory only through the device's IOMMU: every vec is translated with
//    Device::iommu().translate() (write access for device-to-memory). A vec outside the
//    mapping fails the transfer with the IOMMU's error (-EFAULT; -EPERM for the wrong
//    direction), so a wrong sg table shows up as a failed transfer, never as a stray write.
//  - Per transfer, device-to-memory: in data mode the bytes are produced by the `produce`
//    callback (the ADC's pattern at the stream offset); in benchmark mode they are left
//    untouched (like iio_rwdev -B: the hardware neither generates nor checks). Memory-to-device:
//    data mode hands the bytes to `consume` (the DAC's checker); benchmark mode ignores them.
//  - Stream offsets: the engine counts the bytes of its stream. Device-to-memory: a successful
//    pass advances it by the descriptor's length and a failed one does not (the device produced
//    nothing), so the next transfer carries the next stream bytes. Memory-to-device: the memory
//    holds the producer's stream bytes, so a transfer advances it by its length once, failed or
//    not (a failed block's bytes are skipped), and a cyclic transfer's repetitions re-send the
//    same stream bytes. Either way a checker that knows only positions checks every byte.
//  - Cyclic transfers repeat until a later descriptor is submitted (the cyclic one completes
//    with 0 at the end of its current pass, then the later one runs) or terminateAll().
//  - Rate: bytes per second (0: unlimited), paced per chunk; an idle engine does not bank
//    time (after a pause it does not burst to catch up).
//  - Fault injection: the Nth transfer from now fails with an errno without moving data, or
//    stalls for a time before it runs (a stall is cut short by terminateAll()).
//  - submit() never allocates and never blocks on the worker: it may be called inside a fence
//    signalling section and from a completion.
//
// Thread-safety: every member function is thread-safe. mutex_ guards the queue, the active
// descriptor, the fault list and the worker's flags; it is never held while a completion,
// produce or consume callback runs.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "zbuf/base/hw_thread.h"
#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/core/device.h"
#include "zbuf/devices/dma/dma_descriptor.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::dma {

enum class TransferDirection : std::uint8_t {
  DevToMem,  // DMA_DEV_TO_MEM: the device writes memory (ADC, USB OUT)
  MemToDev,  // DMA_MEM_TO_DEV: the device reads memory (DAC, USB IN)
};

enum class DataMode : std::uint8_t {
  Data,       // produce / consume every byte
  Benchmark,  // leave the bytes alone (iio_rwdev -B)
};

[[nodiscard]] const char* toString(TransferDirection dir) noexcept;
[[nodiscard]] const char* toString(DataMode mode) noexcept;

// One piece of a pass handed to produce/consume.
struct DmaChunk {
  std::span<std::byte> data;   // host memory behind the IOVAs (translated)
  std::uint64_t streamOffset;  // stream position of data[0]
  std::uint64_t blockOffset;   // offset of data[0] within the descriptor
  const DmaDescriptor& descriptor;
};

struct DmaEngineConfig {
  std::string name = "dma";        // worker thread name (15 characters are kept)
  std::shared_ptr<Device> device;  // required: whose IOMMU translates the vecs
  TransferDirection direction = TransferDirection::DevToMem;
  DataMode mode = DataMode::Data;
  std::uint64_t bytesPerSecond = 0;                      // 0: unlimited
  std::uint64_t chunkBytes = std::uint64_t{256} * 1024;  // pacing and callback granularity
  // Data mode, device-to-memory: fill chunk.data with the stream bytes at chunk.streamOffset.
  std::function<void(const DmaChunk& chunk)> produce;
  // Data mode, memory-to-device: the bytes the device read.
  std::function<void(const DmaChunk& chunk)> consume;
  // Called (on the worker, no lock held) when the engine finishes a transfer and finds its
  // queue empty while not terminated: the hardware ran dry (an ADC overrun, a DAC underrun).
  std::function<void()> onStarved;
  // How long an idle worker polls for a new submission before it sleeps, so that a submit
  // that comes soon needs no wake-up (the futex wake is most of a small block's cost). It is
  // adaptive: after a spin that saw nothing the worker sleeps at once for the next idle periods
  // (1, 2, 4 ... up to 64 of them) and spins again only after that, so a slow or descheduled
  // submitter (a loaded machine) costs little spinning. 0 (the default): never spin. The
  // environment variable ZBUF_DMA_IDLE_SPIN_US, when set, overrides it for every engine (for
  // A/B measurements). zbuf stream's board spins up to 20 us (StreamConfig::dmaIdleSpin).
  std::chrono::nanoseconds idleSpin{0};
  // Test seam: runs on the worker after an idle spin that saw no submission, with the lock
  // released, just before the worker takes it again to go to sleep (a submit that lands here
  // finds the worker neither spinning nor waiting, and must still be taken).
  std::function<void()> afterVainSpin;
};

struct DmaEngineStats {
  std::uint64_t submitted = 0;
  std::uint64_t completed = 0;  // completions with status 0
  std::uint64_t failed = 0;     // completions with an error (terminations included)
  std::uint64_t passes = 0;     // passes run (cyclic repetitions each count)
  std::uint64_t bytes = 0;      // bytes moved by successful passes
  std::uint64_t starved = 0;    // times the queue ran dry after a transfer
};

class DmaEngine {
 public:
  using Duration = std::chrono::nanoseconds;

  // EINVAL without a device, or with data mode and no produce (DevToMem) / consume (MemToDev).
  [[nodiscard]] static Result<std::unique_ptr<DmaEngine>> create(DmaEngineConfig config);
  // Terminates everything queued (completions get -ECANCELED) and joins the worker.
  ~DmaEngine();
  DmaEngine(const DmaEngine&) = delete;
  DmaEngine& operator=(const DmaEngine&) = delete;

  // dmaengine_submit + dma_async_issue_pending. EINVAL for a descriptor without vecs or with a
  // length beyond its vecs; EBUSY if it is already submitted; ESHUTDOWN once the engine is
  // shutting down. Never allocates (the error paths use static messages).
  [[nodiscard]] Result<void> submit(DmaDescriptor& descriptor) noexcept;
  // dmaengine_submit alone: queued (and checked) as by submit(), but a sleeping worker is not
  // woken until issuePending() (dma_async_issue_pending); a worker that is running or spinning
  // takes it in turn anyway. For a driver that submits under its own lock, which the
  // completion takes too: waking the worker after that lock is released keeps it from
  // blocking on the lock at once (IIO's DmabufQueue::enqueue).
  [[nodiscard]] Result<void> queue(DmaDescriptor& descriptor) noexcept;
  // dma_async_issue_pending: wakes the worker if it sleeps with work queued.
  void issuePending() noexcept;

  // dmaengine_terminate_sync: every queued descriptor and the active one complete with
  // `status` (negative errno), in submission order; returns when none of them is in use any
  // more (called from a completion on the worker itself, it does not wait for the active one,
  // which is the one completing).
  void terminateAll(int status = -ECANCELED);

  // Blocks until the queue is empty and no transfer runs (a cyclic transfer never ends by
  // itself: this then waits for `timeout`). True if idle.
  bool waitIdle(Duration timeout);

  // --- configuration (takes effect at the next chunk) -------------------------------------------
  void setRate(std::uint64_t bytesPerSecond);
  void setMode(DataMode mode);
  [[nodiscard]] DataMode mode() const;
  [[nodiscard]] TransferDirection direction() const noexcept { return config_.direction; }
  [[nodiscard]] Device& device() const noexcept { return *config_.device; }
  [[nodiscard]] const std::shared_ptr<Device>& devicePtr() const noexcept { return config_.device; }

  // --- fault injection ----------------------------------------------------------------------
  // The `nth` transfer started from now (1 = the next one; cyclic passes count) fails with
  // -errnoValue before moving any data.
  void injectError(std::uint64_t nth, int errnoValue);
  // The `nth` transfer started from now waits `stall` before running.
  void injectStall(std::uint64_t nth, Duration stall);
  void clearFaults();

  // --- state --------------------------------------------------------------------------------
  [[nodiscard]] DmaEngineStats stats() const;
  // Bytes of the stream so far (the offset the next transfer starts at).
  [[nodiscard]] std::uint64_t streamOffset() const;
  // Submitted descriptors not yet completed (the active one included).
  [[nodiscard]] std::size_t pending() const;

  struct Private;
  DmaEngine(Private key, DmaEngineConfig config);

 private:
  struct Fault {
    std::uint64_t at;  // transfer number (transfersStarted_ value) it applies to
    int error;         // positive errno, 0 for a stall
    Duration stall;
  };

  void run();
  // Idle, lock held: polls for a submission for up to idleSpin_ (lock released meanwhile), as
  // the adaptive policy allows. True if one came.
  bool spinForWork() ZBUF_REQUIRES(mutex_);
  // submit() and queue(): appends under the lock; `wake` says whether the worker sleeps.
  Result<void> queue(DmaDescriptor& descriptor, bool& wake) noexcept ZBUF_EXCLUDES(mutex_);
  // Runs one pass of `d` (no lock held). Returns 0 or a negative errno.
  int executePass(DmaDescriptor& d, std::uint64_t streamBase, DataMode mode, std::uint64_t rate);
  // Sleeps until `deadline` unless aborted; lock held on entry and exit. False if aborted.
  bool sleepUntilLocked(MutexLocker& lock, std::chrono::steady_clock::time_point deadline);
  // Accounts `bytes` against the rate and sleeps if ahead of it. False if aborted.
  bool pace(std::uint64_t bytes, std::uint64_t rate);
  void completeLocked(DmaDescriptor& d, int status) ZBUF_REQUIRES(mutex_);

  DmaEngineConfig config_;

  mutable Mutex mutex_;
  ConditionVariable workCv_;                               // worker: new work, abort, stop
  ConditionVariable idleCv_;                               // waiters: a completion happened
  DmaDescriptor* head_ ZBUF_GUARDED_BY(mutex_) = nullptr;  // submitted, in order
  DmaDescriptor* tail_ ZBUF_GUARDED_BY(mutex_) = nullptr;
  DmaDescriptor* active_ ZBUF_GUARDED_BY(mutex_) = nullptr;  // running or completing
  bool completing_ ZBUF_GUARDED_BY(mutex_) = false;          // active_'s completion is running
  // Written under mutex_, read by the worker between chunks without it.
  std::atomic<bool> abort_{false};  // terminateAll wants active_ stopped
  std::atomic<int> abortStatus_{-ECANCELED};
  bool stop_ ZBUF_GUARDED_BY(mutex_) = false;
  bool workerWaiting_ ZBUF_GUARDED_BY(mutex_) = false;
  std::atomic<std::uint64_t> submitSeq_{0};  // bumped by every submit (the spinner watches)
  std::chrono::nanoseconds idleSpin_{};      // worker only: config_.idleSpin or the override
  unsigned spinSkip_ = 0;                    // worker only: idle periods to sleep at once
  unsigned spinBackoff_ = 1;                 // worker only: the next skip after a vain spin
  std::uint64_t bytesPerSecond_ ZBUF_GUARDED_BY(mutex_);
  DataMode mode_ ZBUF_GUARDED_BY(mutex_);
  std::vector<Fault> faults_ ZBUF_GUARDED_BY(mutex_);
  std::uint64_t transfersStarted_ ZBUF_GUARDED_BY(mutex_) = 0;
  std::uint64_t streamOffset_ ZBUF_GUARDED_BY(mutex_) = 0;
  std::size_t pending_ ZBUF_GUARDED_BY(mutex_) = 0;
  std::uint64_t finished_ ZBUF_GUARDED_BY(mutex_) = 0;  // completions that have returned
  DmaEngineStats stats_ ZBUF_GUARDED_BY(mutex_);
  std::chrono::steady_clock::time_point due_;  // worker only: pacing clock
  std::thread::id workerId_;                   // set once by the worker
  HardwareThread worker_;
};

}  // namespace zbuf::dma
#pragma GCC visibility pop
