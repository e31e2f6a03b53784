// Fence implementation. The callback list is an intrusive doubly linked list of caller-owned
// nodes guarded by mutex_; flags, error and timestamp are atomics so that status queries never
// take the lock (callbacks may query the fence they run for).
#include "zbuf/core/fence.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <vector>

#include "zbuf/base/log.h"
#include "zbuf/base/sys.h"
#include "zbuf/core/fence_signalling.h"

namespace zbuf {

ZBUF_LOG_CATEGORY(Fence);

namespace {

class StubFence final : public Fence {
 public:
  StubFence() noexcept : Fence(0, 0) {}
  [[nodiscard]] std::string_view driverName() const override { return "stub"; }
  [[nodiscard]] std::string_view timelineName() const override { return "stub"; }
};

// A waiter: a futex word set to 1 by the fence callback.
struct Waiter {
  std::atomic<std::uint32_t> done{0};
};

struct WaiterCallback : FenceCallback {
  explicit WaiterCallback(Waiter* w) noexcept : FenceCallback(&wake), waiter(w) {}
  static void wake(Fence& /*fence*/, FenceCallback& self) {
    Waiter* w = static_cast<WaiterCallback&>(self).waiter;
    w->done.store(1, std::memory_order_release);
    sys::futexWake(w->done, 1);
  }
  Waiter* waiter;
};

// Sleeps until waiter.done or the deadline (0: forever). Returns true if done.
bool sleepUntil(Waiter& waiter, std::uint64_t deadlineNs) {
  while (waiter.done.load(std::memory_order_acquire) == 0) {
    std::optional<std::chrono::nanoseconds> left;
    if (deadlineNs != 0) {
      const std::uint64_t now = sys::monotonicNs();
      if (now >= deadlineNs) {
        return false;
      }
      left = std::chrono::nanoseconds(deadlineNs - now);
    }
    // EAGAIN (already changed), EINTR and ETIMEDOUT all lead back to the checks above.
    (void)sys::futexWait(waiter.done, 0, left);
  }
  return true;
}

// Absolute deadline for `timeout`, or 0 for "forever".
std::uint64_t deadlineFor(Fence::Duration timeout) {
  if (timeout == Fence::kWaitForever) {
    return 0;
  }
  const std::uint64_t now = sys::monotonicNs();
  const auto ns = static_cast<std::uint64_t>(timeout.count());
  return ns > UINT64_MAX - now ? 0 : now + ns;
}

Fence::Duration remainingUntil(std::uint64_t deadlineNs, Fence::Duration timeout) {
  if (deadlineNs == 0) {
    return timeout;
  }
  const std::uint64_t now = sys::monotonicNs();
  return std::chrono::nanoseconds(std::max<std::int64_t>(
      1, static_cast<std::int64_t>(deadlineNs) - static_cast<std::int64_t>(now)));
}

}  // namespace

Fence::~Fence() {
  const MutexLocker lock(mutex_);
  if ((flags_.load(std::memory_order_acquire) & kSignaled) == 0 && head_ != nullptr) {
    // The derived part is gone: no virtual call (names) is possible here.
    log(LogFence, LogLevel::Error,
        "fence ctx {} seq {} released unsignalled with callbacks queued; signalling with "
        "-EDEADLK",
        context_, seqno_);
    error_.store(-EDEADLK, std::memory_order_release);
    // No fence for the section's reports: its names are virtual and the derived part is gone.
    signalLockedImpl(sys::monotonicNs(), nullptr);
  }
}

bool Fence::signal() noexcept {
  return signalWithTimestamp(sys::monotonicNs());
}

bool Fence::signalWithTimestamp(std::uint64_t timestampNs) noexcept {
  if ((flags_.load(std::memory_order_acquire) & kSignaled) != 0) {
    return false;
  }
  const MutexLocker lock(mutex_);
  return signalLocked(timestampNs);
}

bool Fence::signalLocked(std::uint64_t timestampNs) noexcept {
  return signalLockedImpl(timestampNs, this);
}

bool Fence::signalLockedImpl(std::uint64_t timestampNs, const Fence* described) noexcept {
  if ((flags_.load(std::memory_order_relaxed) & kSignaled) != 0) {
    return false;
  }
  // dma_fence_signal is itself a signalling section: callbacks must not allocate or wait.
  const FenceSignallingSection section(described);
  timestampNs_.store(timestampNs, std::memory_order_relaxed);
  flags_.fetch_or(kSignaled | kTimestamp, std::memory_order_acq_rel);
  FenceCallback* cb = std::exchange(head_, nullptr);
  tail_ = nullptr;
  while (cb != nullptr) {
    FenceCallback* next = cb->next_;
    cb->prev_ = cb->next_ = nullptr;
    cb->queued_ = false;
    // The node may be freed by its owner as soon as func_ returns (or even during it).
    if (cb->func_ != nullptr) {
      cb->func_(*this, *cb);
    }
    cb = next;
  }
  return true;
}

void Fence::setError(int negativeErrno) noexcept {
  if (negativeErrno >= 0 || negativeErrno < -4095) {
    log(LogFence, LogLevel::Warn, "fence {}:{} seq {}: setError({}) is not a negative errno",
        driverName(), timelineName(), seqno_, negativeErrno);
    return;
  }
  const MutexLocker lock(mutex_);
  if ((flags_.load(std::memory_order_relaxed) & kSignaled) != 0) {
    log(LogFence, LogLevel::Warn, "fence {}:{} seq {}: setError after signalling is ignored",
        driverName(), timelineName(), seqno_);
    return;
  }
  error_.store(negativeErrno, std::memory_order_release);
}

bool Fence::trySetError(int negativeErrno) noexcept {
  if (negativeErrno >= 0 || negativeErrno < -4095) {
    return false;
  }
  const MutexLocker lock(mutex_);
  if ((flags_.load(std::memory_order_relaxed) & kSignaled) != 0) {
    return false;
  }
  error_.store(negativeErrno, std::memory_order_release);
  return true;
}

bool Fence::isSignaled() noexcept {
  if (isSignaledFlag()) {
    return true;
  }
  // Like dma_fence_is_signaled: the driver's hook runs without the lock; signal() takes it.
  if (checkSignaled()) {
    signal();
    return true;
  }
  return false;
}

int Fence::status() noexcept {
  if (!isSignaled()) {
    return 0;
  }
  const int err = error();
  return err < 0 ? err : 1;
}

std::uint64_t Fence::timestampNs() const noexcept {
  if ((flags_.load(std::memory_order_acquire) & kTimestamp) == 0) {
    return 0;
  }
  return timestampNs_.load(std::memory_order_relaxed);
}

bool Fence::enableSignalingUnlocked() {
  const MutexLocker lock(mutex_);
  if ((flags_.load(std::memory_order_relaxed) & kSignaled) != 0) {
    return true;
  }
  if (!enableSignalingLocked()) {
    signalLocked(sys::monotonicNs());
  }
  return true;
}

// Runs the enable step exactly once, without mutex_ held (see enableSignalingUnlocked()). A
// concurrent addCallback() that finds the bit already set queues its callback at once: the
// fence signals later through signal(), which runs it.
void Fence::enableSignalingOnce() noexcept {
  const std::uint32_t old = flags_.fetch_or(kEnableSignal, std::memory_order_acq_rel);
  if ((old & (kEnableSignal | kSignaled)) != 0) {
    return;
  }
  if (!enableSignalingUnlocked()) {
    signal();
  }
}

void Fence::enableSwSignaling() noexcept {
  enableSignalingOnce();
}

Result<void> Fence::addCallback(FenceCallback& cb) noexcept {
  if ((flags_.load(std::memory_order_acquire) & kSignaled) != 0) {
    return Error(ENOENT, "Fence::addCallback");
  }
  enableSignalingOnce();
  const MutexLocker lock(mutex_);
  if ((flags_.load(std::memory_order_relaxed) & kSignaled) != 0) {
    return Error(ENOENT, "Fence::addCallback");
  }
  cb.prev_ = tail_;
  cb.next_ = nullptr;
  cb.queued_ = true;
  if (tail_ != nullptr) {
    tail_->next_ = &cb;
  } else {
    head_ = &cb;
  }
  tail_ = &cb;
  return {};
}

bool Fence::removeCallback(FenceCallback& cb) noexcept {
  const MutexLocker lock(mutex_);
  if (!cb.queued_) {
    return false;
  }
  if (cb.prev_ != nullptr) {
    cb.prev_->next_ = cb.next_;
  } else {
    head_ = cb.next_;
  }
  if (cb.next_ != nullptr) {
    cb.next_->prev_ = cb.prev_;
  } else {
    tail_ = cb.prev_;
  }
  cb.prev_ = cb.next_ = nullptr;
  cb.queued_ = false;
  return true;
}

Result<Fence::Duration> Fence::waitTimeout(Duration timeout) noexcept {
  checkSignallingSection(SignallingViolation::FenceWait);
  if (timeout < Duration::zero()) {
    return Error(EINVAL, "Fence::waitTimeout", "negative timeout");
  }
  if (timeout == Duration::zero()) {
    return isSignaled() ? Duration(1) : Duration::zero();
  }
  if (isSignaled()) {
    return timeout;
  }
  const std::uint64_t deadline = deadlineFor(timeout);
  Waiter waiter;
  WaiterCallback cb(&waiter);
  if (!addCallback(cb).ok()) {
    return remainingUntil(deadline, timeout);  // signalled meanwhile
  }
  const bool done = sleepUntil(waiter, deadline);
  // Taking the lock in removeCallback also waits for a signaller still running our callback.
  removeCallback(cb);
  if (!done && !isSignaled()) {
    return Duration::zero();
  }
  return remainingUntil(deadline, timeout);
}

Result<void> Fence::wait() noexcept {
  ZBUF_TRY(waitTimeout(kWaitForever));
  return {};
}

Result<Fence::WaitAnyResult> Fence::waitAny(std::span<const FencePtr> fences,
                                            Duration timeout) noexcept {
  checkSignallingSection(SignallingViolation::FenceWait);
  if (fences.empty() || timeout < Duration::zero()) {
    return Error(EINVAL, "Fence::waitAny", fences.empty() ? "no fences" : "negative timeout");
  }
  for (std::size_t i = 0; i < fences.size(); ++i) {
    if (fences[i] == nullptr) {  // as FenceArray::create and merge refuse one
      return Error(EINVAL, "Fence::waitAny", fmt::format("fence {} is null", i));
    }
  }
  auto firstSignaled = [&]() -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < fences.size(); ++i) {
      if (fences[i]->isSignaled()) {
        return i;
      }
    }
    return std::nullopt;
  };
  if (auto i = firstSignaled()) {
    return WaitAnyResult{timeout == Duration::zero() ? Duration(1) : timeout, *i};
  }
  if (timeout == Duration::zero()) {
    return WaitAnyResult{Duration::zero(), 0};
  }
  const std::uint64_t deadline = deadlineFor(timeout);
  Waiter waiter;
  std::vector<std::unique_ptr<WaiterCallback>> callbacks;
  callbacks.reserve(fences.size());
  for (const auto& f : fences) {
    callbacks.push_back(std::make_unique<WaiterCallback>(&waiter));
    if (!f->addCallback(*callbacks.back()).ok()) {
      waiter.done.store(1, std::memory_order_release);
      break;
    }
  }
  sleepUntil(waiter, deadline);
  for (std::size_t i = 0; i < callbacks.size(); ++i) {
    fences[i]->removeCallback(*callbacks[i]);
  }
  if (auto i = firstSignaled()) {
    return WaitAnyResult{remainingUntil(deadline, timeout), *i};
  }
  return WaitAnyResult{Duration::zero(), 0};
}

void Fence::setDeadline(std::uint64_t deadlineNs) noexcept {
  if (!isSignaledFlag()) {
    onDeadline(deadlineNs);
  }
}

bool Fence::isLater(const Fence& a, const Fence& b) noexcept {
  if (a.context_ != b.context_) {
    log(LogFence, LogLevel::Warn,
        "isLater: fences of different contexts ({} and {}) are not ordered", a.context_,
        b.context_);
    return false;
  }
  if (a.seqno64_) {
    return a.seqno_ > b.seqno_;
  }
  const auto diff = static_cast<std::int32_t>(static_cast<std::uint32_t>(a.seqno_) -
                                              static_cast<std::uint32_t>(b.seqno_));
  return diff > 0;
}

bool Fence::isLaterOrSame(const Fence& a, const Fence& b) noexcept {
  return &a == &b || isLater(a, b);
}

FencePtr Fence::stub() {
  static const FencePtr stub = [] {
    auto f = std::make_shared<StubFence>();
    f->signal();
    return f;
  }();
  return stub;
}

FencePtr Fence::signaledStub(std::uint64_t timestampNs) {
  auto f = std::make_shared<StubFence>();
  f->signalWithTimestamp(timestampNs);
  return f;
}

// --- Timeline --------------------------------------------------------------------------------

struct Timeline::Private {};

namespace {
std::atomic<std::uint64_t> gNextContext{1};
}  // namespace

std::uint64_t Timeline::allocateContexts(unsigned count) noexcept {
  return gNextContext.fetch_add(count == 0 ? 1 : count, std::memory_order_relaxed);
}

Timeline::Timeline(Private /*key*/, std::uint64_t context, std::string driver, std::string name)
    : context_(context), driver_(std::move(driver)), name_(std::move(name)) {}

std::shared_ptr<Timeline> Timeline::create(std::string driverName, std::string timelineName) {
  return std::make_shared<Timeline>(Private{}, allocateContexts(1), std::move(driverName),
                                    std::move(timelineName));
}

std::shared_ptr<TimelineFence> Timeline::createFence() {
  return std::make_shared<TimelineFence>(shared_from_this(),
                                         next_.fetch_add(1, std::memory_order_relaxed));
}

std::shared_ptr<TimelineFence> Timeline::createFence(std::uint64_t seqno) {
  return std::make_shared<TimelineFence>(shared_from_this(), seqno);
}

}  // namespace zbuf
