// Wait-die mutexes with acquire contexts: the kernel's ww_mutex of a DEFINE_WD_CLASS class,
// the class reservation objects use.
//
// Taking the locks of many objects, in any order, from many threads never deadlocks:
//  - every acquire context gets a stamp from its class when it starts; a lower stamp is older;
//  - a context that finds a lock held by an OLDER context "dies": lock() returns EDEADLK, and
//    the caller must unlock everything it holds under that context, then take the contended
//    lock with lockSlow() (which waits and cannot fail), then take the rest again;
//  - a context that finds a lock held by a YOUNGER context (or by no context) waits for it;
//  - a context that holds no lock yet never dies, it waits (it cannot close a cycle), exactly
//    as the kernel's __ww_mutex_kill() only kills a context with acquired > 0. So the first
//    lock of a context, and lockSlow(), always succeed (or time out, for lockTimeout());
//  - the check is made again every time the holder changes while a context waits;
//  - taking a lock the same context already holds returns EALREADY.
// Without a context, lock() is a plain mutex lock. Locks are not recursive.
//
// The back-off protocol (what every caller that locks several objects writes):
//
//   WwAcquireCtx ctx(reservationWwClass());
//   WwMutex* contended = nullptr;
//   retry:
//     if (contended) contended->lockSlow(ctx);            // holds nothing else here
//     for (m : mutexes) {
//       if (m == contended) continue;
//       auto r = m->lock(&ctx);
//       if (r.code() == EDEADLK) { unlock all taken (and contended); contended = m; goto retry; }
//     }
//     ctx.done();  ... work ...  unlock all;
//
// Thread-safety: WwMutex is thread-safe. A WwAcquireCtx belongs to the thread that created it;
// a lock is released by the thread that took it.
// Taking a WwMutex inside a fence signalling section is reported in checked builds (ResvLock).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/base/source_location.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class WwMutex;

class WwClass {
 public:
  explicit WwClass(const char* name) noexcept : name_(name) {}
  [[nodiscard]] const char* name() const noexcept { return name_; }
  // The next stamp; stamps only grow.
  [[nodiscard]] std::uint64_t nextStamp() noexcept { return stamp_.fetch_add(1) + 1; }

 private:
  const char* name_;
  std::atomic<std::uint64_t> stamp_{0};
};

class WwAcquireCtx {
 public:
  // ww_acquire_init.
  explicit WwAcquireCtx(WwClass& cls) noexcept;
  // ww_acquire_fini: every lock taken under the context must have been released (an error is
  // logged naming the class and the number of locks still held).
  ~WwAcquireCtx();
  WwAcquireCtx(const WwAcquireCtx&) = delete;
  WwAcquireCtx& operator=(const WwAcquireCtx&) = delete;

  // ww_acquire_done: no further locks will be taken under this context (checked: a later
  // lock() is reported).
  void done() noexcept { done_ = true; }
  [[nodiscard]] std::uint64_t stamp() const noexcept { return stamp_; }
  [[nodiscard]] WwClass& wwClass() const noexcept { return *class_; }
  // Number of locks currently held under this context.
  [[nodiscard]] unsigned held() const noexcept { return held_; }
  // True if the context got EDEADLK and has not yet taken the contended lock with lockSlow().
  [[nodiscard]] bool contended() const noexcept { return contending_ != nullptr; }

 private:
  friend class WwMutex;
  WwClass* class_;
  std::uint64_t stamp_;
  unsigned held_ = 0;                    // only touched by the owning thread
  bool done_ = false;                    // only touched by the owning thread
  const WwMutex* contending_ = nullptr;  // died on this lock; cleared by lockSlow()
};

class WwMutex {
 public:
  explicit WwMutex(WwClass& cls) noexcept : class_(&cls) {}
  WwMutex(const WwMutex&) = delete;
  WwMutex& operator=(const WwMutex&) = delete;
  // Destroying a locked mutex is a bug of its owner (logged).
  ~WwMutex();

  using Duration = std::chrono::nanoseconds;

  // ww_mutex_lock. With ctx: EDEADLK (die: back off) or EALREADY (held by ctx already).
  // Without ctx: always succeeds (plain lock).
  [[nodiscard]] Result<void> lock(WwAcquireCtx* ctx,
                                  SourceLocation where = SourceLocation::current());
  // The interruptible variant, made explicit: gives up with ETIMEDOUT after `timeout` (0: only
  // tries once); EINVAL for a negative timeout; otherwise as lock().
  [[nodiscard]] Result<void> lockTimeout(WwAcquireCtx* ctx, Duration timeout,
                                         SourceLocation where = SourceLocation::current());
  // ww_mutex_lock_slow: after an EDEADLK back-off (ctx holds no lock), waits until acquired.
  // Calling it while ctx holds locks is a bug (logged; it may then deadlock).
  void lockSlow(WwAcquireCtx& ctx, SourceLocation where = SourceLocation::current());
  // ww_mutex_trylock: never waits, never dies. With ctx, a success counts as held by ctx.
  // Not reported inside a signalling section: it cannot wait (lockdep treats it the same).
  [[nodiscard]] bool trylock(WwAcquireCtx* ctx = nullptr);
  // Releases the lock; must be called by the thread that holds it (otherwise logged, ignored).
  void unlock() noexcept;

  [[nodiscard]] bool isLocked() const noexcept;
  // True if the calling thread holds the lock (the lockdep_assert_held equivalent).
  [[nodiscard]] bool heldByCurrentThread() const noexcept;
  // Reports (and aborts in checked builds) if the calling thread does not hold the lock.
  void assertHeld(SourceLocation where = SourceLocation::current()) const noexcept;
  // The context that holds the lock, or nullptr (no owner, or held without a context).
  [[nodiscard]] const WwAcquireCtx* ownerContext() const noexcept;
  [[nodiscard]] WwClass& wwClass() const noexcept { return *class_; }

 private:
  enum class Mode { Normal, Slow };
  using Deadline = std::chrono::steady_clock::time_point;
  // Shared body of lock/lockTimeout/lockSlow. deadline nullptr: no limit.
  Result<void> acquire(WwAcquireCtx* ctx, Mode mode, const Deadline* deadline,
                       const SourceLocation& where);
  void takeLocked(WwAcquireCtx* ctx) noexcept ZBUF_REQUIRES(mutex_);

  WwClass* class_;
  mutable Mutex mutex_;
  ConditionVariable cv_;  // waiters for the lock; notified on every unlock
  bool locked_ ZBUF_GUARDED_BY(mutex_) = false;
  WwAcquireCtx* ctx_ ZBUF_GUARDED_BY(mutex_) = nullptr;  // the holder's context (nullptr: none)
  unsigned waiters_ ZBUF_GUARDED_BY(mutex_) = 0;
  std::atomic<std::uint64_t> ownerThread_{0};  // id of the owning thread; 0 = none
};

}  // namespace zbuf
#pragma GCC visibility pop
