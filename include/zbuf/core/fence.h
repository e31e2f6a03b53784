// Fence: a one-shot completion signal with the rules of the kernel's dma_fence.
//
// The contract (docs/fences.md has the long form):
//  - A fence belongs to a context (a timeline) and has a 64-bit seqno; fences of one context
//    signal in seqno order. Contexts come from Timeline::allocateContexts(); 0 is reserved for
//    stub fences.
//  - It signals exactly once. A second signal changes nothing and reports false.
//  - An error (negative errno, kernel style: -EIO) may be set only before signalling; status()
//    is 0 while pending, 1 when signalled without error, the error when signalled with one.
//  - Callbacks run in the order they were added, in the signaller's context, under the fence's
//    lock: they must not block, allocate, or touch this fence's callbacks. Adding a callback to
//    a signalled fence fails with ENOENT and the callback never runs. removeCallback() returns
//    true only if the callback was still queued; once it returns, the callback is not running.
//  - The first interest (addCallback, wait, enableSwSignaling) enables signalling once (the
//    driver's enableSignalingLocked(), or enableSignalingUnlocked() for containers); a driver
//    that returns false there means "already done" and the fence signals at once.
//  - Signalling runs inside a fence signalling section (fence_signalling.h): in checked builds
//    a callback that allocates or waits is reported.
//  - Do not drop the last reference to a fence from inside one of its own callbacks.
//  - Fences must signal in bounded time: whoever publishes one guarantees it.
//
// Fences are reference counted with std::shared_ptr (FencePtr), like the kernel's kref.
// Thread-safety: every member function is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class Fence;
using FencePtr = std::shared_ptr<Fence>;

// A callback node owned by the caller (like struct dma_fence_cb): adding one never allocates.
// The node must stay alive until it has run or has been removed.
class FenceCallback {
 public:
  using Func = void (*)(Fence& fence, FenceCallback& callback);
  explicit FenceCallback(Func func = nullptr) noexcept : func_(func) {}
  FenceCallback(const FenceCallback&) = delete;
  FenceCallback& operator=(const FenceCallback&) = delete;
  ~FenceCallback() = default;

  void setFunc(Func func) noexcept { func_ = func; }

 private:
  friend class Fence;
  Func func_;
  FenceCallback* prev_ = nullptr;  // guarded by the owning fence's mutex_
  FenceCallback* next_ = nullptr;  // guarded by the owning fence's mutex_
  bool queued_ = false;            // guarded by the owning fence's mutex_
};

// A callback node that calls a function object: FenceCallbackFn cb([&](Fence&) { ... });
template <typename F>
class FenceCallbackFn : public FenceCallback {
 public:
  explicit FenceCallbackFn(F fn) : FenceCallback(&call), fn_(std::move(fn)) {}

 private:
  static void call(Fence& fence, FenceCallback& self) {
    static_cast<FenceCallbackFn&>(self).fn_(fence);
  }
  F fn_;
};

class Fence : public std::enable_shared_from_this<Fence> {
 public:
  using Duration = std::chrono::nanoseconds;
  // Wait without a time limit (the kernel's MAX_SCHEDULE_TIMEOUT).
  static constexpr Duration kWaitForever = Duration::max();

  Fence(const Fence&) = delete;
  Fence& operator=(const Fence&) = delete;
  Fence(Fence&&) = delete;
  Fence& operator=(Fence&&) = delete;
  // Releasing an unsignalled fence that still has callbacks queued is a bug of its owner: it is
  // reported, the fence gets error -EDEADLK and signals, so the callbacks still run.
  virtual ~Fence();

  // --- the driver's operations (dma_fence_ops) ---------------------------------------------
  [[nodiscard]] virtual std::string_view driverName() const = 0;
  [[nodiscard]] virtual std::string_view timelineName() const = 0;

  // --- identity --------------------------------------------------------------------------------
  [[nodiscard]] std::uint64_t context() const noexcept { return context_; }
  [[nodiscard]] std::uint64_t seqno() const noexcept { return seqno_; }
  // Seqnos compare as full 64-bit values (chains); otherwise with 32-bit wrap-around.
  [[nodiscard]] bool seqno64() const noexcept { return seqno64_; }

  // --- signalling ------------------------------------------------------------------------------
  // Signals now. Returns false (and changes nothing) if the fence was already signalled.
  bool signal() noexcept;
  // Signals with an explicit CLOCK_MONOTONIC timestamp in nanoseconds.
  bool signalWithTimestamp(std::uint64_t timestampNs) noexcept;
  // Sets the error reported once signalled: a negative errno in [-4095, -1]. Ignored, with a
  // warning, when the fence is already signalled or the value is out of range.
  void setError(int negativeErrno) noexcept;
  // The error set before signalling (negative), or 0.
  [[nodiscard]] int error() const noexcept { return error_.load(std::memory_order_acquire); }
  // 0 pending, 1 signalled OK, negative errno when signalled with an error.
  [[nodiscard]] int status() noexcept;
  // True once signalled. Polls the driver's signaled() hook and signals if it says so.
  [[nodiscard]] bool isSignaled() noexcept;
  // True once the signalled bit is set; never polls the driver (dma_fence_test_signaled_flag).
  [[nodiscard]] bool isSignaledFlag() const noexcept {
    return (flags_.load(std::memory_order_acquire) & kSignaled) != 0;
  }
  // CLOCK_MONOTONIC nanoseconds of the signal, or 0 while unsignalled.
  [[nodiscard]] std::uint64_t timestampNs() const noexcept;

  // --- callbacks -------------------------------------------------------------------------------
  // Queues `cb`; ENOENT if the fence is already signalled (the callback is not called).
  [[nodiscard]] Result<void> addCallback(FenceCallback& cb) noexcept;
  // True if `cb` was still queued (and now is not); false if it already ran or never was.
  bool removeCallback(FenceCallback& cb) noexcept;
  // Enables signalling as the first waiter would (dma_fence_enable_sw_signaling).
  void enableSwSignaling() noexcept;

  // --- waiting ---------------------------------------------------------------------------------
  // The kernel's dma_fence_wait_timeout: EINVAL for a negative timeout; otherwise the time
  // left (at least 1ns) once signalled, or 0 on timeout. With timeout 0 it only tests: 1ns if
  // signalled, else 0. Waiting inside a fence signalling section is reported in checked builds.
  [[nodiscard]] Result<Duration> waitTimeout(Duration timeout) noexcept;
  // Waits without limit (dma_fence_wait).
  [[nodiscard]] Result<void> wait() noexcept;

  struct WaitAnyResult {
    Duration remaining;  // 0 on timeout
    std::size_t index;   // the first signalled fence (in array order); meaningless on timeout
  };
  // dma_fence_wait_any_timeout: EINVAL for an empty list, a null member or a negative timeout.
  [[nodiscard]] static Result<WaitAnyResult> waitAny(std::span<const FencePtr> fences,
                                                     Duration timeout) noexcept;

  // A hint that the fence should signal by `deadlineNs` (CLOCK_MONOTONIC). No-op once signalled.
  void setDeadline(std::uint64_t deadlineNs) noexcept;

  // --- ordering --------------------------------------------------------------------------------
  // True if `a` is later than `b` on their common context. Fences of different contexts are
  // not ordered: this reports the misuse and returns false.
  [[nodiscard]] static bool isLater(const Fence& a, const Fence& b) noexcept;
  [[nodiscard]] static bool isLaterOrSame(const Fence& a, const Fence& b) noexcept;

  // The shared, always-signalled stub fence (context 0, seqno 0, names "stub").
  [[nodiscard]] static FencePtr stub();
  // A new private signalled stub with the given signal timestamp (used by merges).
  [[nodiscard]] static FencePtr signaledStub(std::uint64_t timestampNs);

 protected:
  Fence(std::uint64_t context, std::uint64_t seqno, bool seqno64 = false) noexcept
      : context_(context), seqno_(seqno), seqno64_(seqno64) {}

  // Optional operations, as in dma_fence_ops.
  // Called once, on first interest, with mutex_ held. Return false if the fence is already done.
  virtual bool enableSignalingLocked() ZBUF_REQUIRES(mutex_) { return true; }
  // Called once, on first interest, WITHOUT mutex_ held; the default takes mutex_ and calls
  // enableSignalingLocked(). Containers (FenceArray, FenceChain) override it: they add
  // callbacks to other fences, and those callbacks signal the container, so holding the
  // container's lock here would invert the lock order (member lock -> container lock).
  // Return false if the fence is already done (it is then signalled at once).
  virtual bool enableSignalingUnlocked();
  // Polled by isSignaled() WITHOUT mutex_ held (as the kernel calls ops->signaled): return true
  // if the work completed without a signal yet.
  virtual bool checkSignaled() { return false; }
  // Receives setDeadline() while unsignalled, WITHOUT mutex_ held (as ops->set_deadline).
  virtual void onDeadline(std::uint64_t /*deadlineNs*/) {}
  // Sets the error if the fence is still unsignalled; returns false (silently) otherwise.
  // For containers that propagate a member's error in a race with their own signal.
  bool trySetError(int negativeErrno) noexcept;

  // Signals with mutex_ held (for drivers whose enableSignalingLocked() completes the fence).
  bool signalLocked(std::uint64_t timestampNs) noexcept ZBUF_REQUIRES(mutex_);

  mutable Mutex mutex_;  // guards the callback list and the enable-signalling step

 private:
  static constexpr std::uint32_t kSignaled = 1U << 0;
  static constexpr std::uint32_t kTimestamp = 1U << 1;
  static constexpr std::uint32_t kEnableSignal = 1U << 2;

  void enableSignalingOnce() noexcept;
  bool signalLockedImpl(std::uint64_t timestampNs, const Fence* described) noexcept
      ZBUF_REQUIRES(mutex_);

  const std::uint64_t context_;
  const std::uint64_t seqno_;
  const bool seqno64_;
  std::atomic<std::uint32_t> flags_{0};
  std::atomic<int> error_{0};
  std::atomic<std::uint64_t> timestampNs_{0};
  FenceCallback* head_ ZBUF_GUARDED_BY(mutex_) = nullptr;
  FenceCallback* tail_ ZBUF_GUARDED_BY(mutex_) = nullptr;
};

class TimelineFence;

// Hands out fence contexts and, for one context, increasing seqnos with the timeline's driver
// and timeline names. Thread-safe.
class Timeline : public std::enable_shared_from_this<Timeline> {
 public:
  // Allocates a fresh context.
  [[nodiscard]] static std::shared_ptr<Timeline> create(std::string driverName,
                                                        std::string timelineName);
  // dma_fence_context_alloc: the first of `count` consecutive new contexts (never 0).
  [[nodiscard]] static std::uint64_t allocateContexts(unsigned count) noexcept;

  [[nodiscard]] std::uint64_t context() const noexcept { return context_; }
  [[nodiscard]] const std::string& driverName() const noexcept { return driver_; }
  [[nodiscard]] const std::string& timelineName() const noexcept { return name_; }
  // A new unsignalled fence with the next seqno (1, 2, ...).
  [[nodiscard]] std::shared_ptr<TimelineFence> createFence();
  // A new unsignalled fence with an explicit seqno (it does not move the counter).
  [[nodiscard]] std::shared_ptr<TimelineFence> createFence(std::uint64_t seqno);
  // The seqno the next createFence() will use.
  [[nodiscard]] std::uint64_t nextSeqno() const noexcept { return next_.load(); }

  struct Private;  // construction key

  Timeline(Private key, std::uint64_t context, std::string driver, std::string name);

 private:
  const std::uint64_t context_;
  const std::string driver_;
  const std::string name_;
  std::atomic<std::uint64_t> next_{1};
};

// The ordinary fence a driver signals itself: names come from its Timeline.
class TimelineFence final : public Fence {
 public:
  TimelineFence(std::shared_ptr<const Timeline> timeline, std::uint64_t seqno) noexcept
      : Fence(timeline->context(), seqno), timeline_(std::move(timeline)) {}
  [[nodiscard]] std::string_view driverName() const override { return timeline_->driverName(); }
  [[nodiscard]] std::string_view timelineName() const override { return timeline_->timelineName(); }

 private:
  std::shared_ptr<const Timeline> timeline_;
};

}  // namespace zbuf
#pragma GCC visibility pop
