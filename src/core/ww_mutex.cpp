// Wait-die mutex. The state (held?, by which context) lives under a small std::mutex; waiters
// sleep on a condition variable that every unlock notifies, so a waiter re-runs the wait-die
// check each time the holder changes (the kernel re-checks in its wait loop the same way).
#include "zbuf/core/ww_mutex.h"

#include <fmt/format.h>

#include <cstdlib>

#include "zbuf/base/log.h"
#include "zbuf/core/fence_signalling.h"

namespace zbuf {

ZBUF_LOG_CATEGORY(WwMutex);

namespace {

// A small unique id per thread (0 means "no thread").
std::uint64_t currentThreadId() noexcept {
  static std::atomic<std::uint64_t> next{1};
  thread_local const std::uint64_t id = next.fetch_add(1, std::memory_order_relaxed);
  return id;
}

std::string describe(const SourceLocation& where) {
  return fmt::format("{}:{} {}", where.file, where.line, where.function);
}

}  // namespace

WwAcquireCtx::WwAcquireCtx(WwClass& cls) noexcept : class_(&cls), stamp_(cls.nextStamp()) {}

WwAcquireCtx::~WwAcquireCtx() {
  if (held_ != 0) {
    log(LogWwMutex, LogLevel::Error,
        "ww_acquire_fini: acquire context {} of class {} ends with {} lock(s) still held", stamp_,
        class_->name(), held_);
  }
}

WwMutex::~WwMutex() {
  if (locked_) {
    log(LogWwMutex, LogLevel::Error, "ww_mutex of class {} destroyed while locked", class_->name());
  }
}

void WwMutex::takeLocked(WwAcquireCtx* ctx) noexcept {
  locked_ = true;
  ctx_ = ctx;
  ownerThread_.store(currentThreadId(), std::memory_order_release);
  if (ctx != nullptr) {
    ++ctx->held_;
    if (ctx->contending_ == this) {
      ctx->contending_ = nullptr;
    }
  }
}

Result<void> WwMutex::acquire(WwAcquireCtx* ctx, Mode mode, const Deadline* deadline,
                              const SourceLocation& where) {
  checkSignallingSection(SignallingViolation::ResvLock, where);
  if (ctx != nullptr) {
    if (ctx->done_) {
      log(LogWwMutex, LogLevel::Error,
          "ww_mutex_lock after ww_acquire_done on context {} of class {} at {}", ctx->stamp_,
          class_->name(), describe(where));
    }
    if (ctx->class_ != class_) {
      log(LogWwMutex, LogLevel::Error,
          "ww_mutex_lock: context of class {} used on a mutex of class {} at {}",
          ctx->class_->name(), class_->name(), describe(where));
    }
    if (mode == Mode::Slow && ctx->held_ != 0) {
      log(LogWwMutex, LogLevel::Error,
          "ww_mutex_lock_slow: context {} of class {} still holds {} lock(s): back off first, at "
          "{}",
          ctx->stamp_, class_->name(), ctx->held_, describe(where));
    }
  }
  MutexLocker lk(mutex_);
  for (;;) {
    if (!locked_) {
      takeLocked(ctx);
      return {};
    }
    if (ctx != nullptr) {
      if (ctx_ == ctx) {
        return Error(EALREADY, "ww_mutex_lock",
                     fmt::format("mutex of class {} is already held by acquire context {}",
                                 class_->name(), ctx->stamp_));
      }
      // Wait-die: a context that holds locks dies when the holder is older.
      if (mode == Mode::Normal && ctx->held_ > 0 && ctx_ != nullptr && ctx_->stamp_ < ctx->stamp_) {
        ctx->contending_ = this;
        return Error(EDEADLK, "ww_mutex_lock",
                     fmt::format("mutex of class {} is held by older context {}; context {} "
                                 "(holding {}) must back off and take it with lockSlow()",
                                 class_->name(), ctx_->stamp_, ctx->stamp_, ctx->held_));
      }
    }
    ++waiters_;
    if (deadline != nullptr) {
      const bool expired = cv_.waitUntil(lk, *deadline) == std::cv_status::timeout;
      --waiters_;
      if (expired && locked_) {
        return Error(
            ETIMEDOUT, "ww_mutex_lock",
            fmt::format("mutex of class {} not acquired within the timeout", class_->name()));
      }
    } else {
      cv_.wait(lk);
      --waiters_;
    }
  }
}

Result<void> WwMutex::lock(WwAcquireCtx* ctx, SourceLocation where) {
  return acquire(ctx, Mode::Normal, nullptr, where);
}

Result<void> WwMutex::lockTimeout(WwAcquireCtx* ctx, Duration timeout, SourceLocation where) {
  if (timeout.count() < 0) {
    return Error(EINVAL, "ww_mutex_lock_timeout",
                 fmt::format("negative timeout {}ns on a mutex of class {}", timeout.count(),
                             class_->name()));
  }
  // Timeouts beyond a year are "forever" (and keep the deadline arithmetic from overflowing).
  if (timeout >= std::chrono::hours(24 * 365)) {
    return acquire(ctx, Mode::Normal, nullptr, where);
  }
  const Deadline deadline = std::chrono::steady_clock::now() + timeout;
  return acquire(ctx, Mode::Normal, &deadline, where);
}

void WwMutex::lockSlow(WwAcquireCtx& ctx, SourceLocation where) {
  (void)acquire(&ctx, Mode::Slow, nullptr, where);
}

bool WwMutex::trylock(WwAcquireCtx* ctx) {
  const MutexLocker lk(mutex_);
  if (locked_) {
    return false;
  }
  takeLocked(ctx);
  return true;
}

void WwMutex::unlock() noexcept {
  if (ownerThread_.load(std::memory_order_acquire) != currentThreadId()) {
    log(LogWwMutex, LogLevel::Error,
        "ww_mutex_unlock of a mutex of class {} not held by the calling thread (ignored)",
        class_->name());
    return;
  }
  bool wake = false;
  {
    const MutexLocker lk(mutex_);
    if (ctx_ != nullptr) {
      --ctx_->held_;
      ctx_ = nullptr;
    }
    locked_ = false;
    ownerThread_.store(0, std::memory_order_release);
    wake = waiters_ != 0;
  }
  if (wake) {
    cv_.notifyAll();
  }
}

bool WwMutex::isLocked() const noexcept {
  const MutexLocker lk(mutex_);
  return locked_;
}

bool WwMutex::heldByCurrentThread() const noexcept {
  return ownerThread_.load(std::memory_order_acquire) == currentThreadId();
}

void WwMutex::assertHeld(SourceLocation where) const noexcept {
  if (heldByCurrentThread()) {
    return;
  }
  log(LogWwMutex, LogLevel::Error, "mutex of class {} must be held by the caller at {}",
      class_->name(), describe(where));
#if ZBUF_CHECKED
  std::abort();
#endif
}

const WwAcquireCtx* WwMutex::ownerContext() const noexcept {
  const MutexLocker lk(mutex_);
  return ctx_;
}

}  // namespace zbuf
