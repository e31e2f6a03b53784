// Wait-die mutexes with acquire contexts: the kernel's ww_mutex of a DEFINE_WD_CLASS class,
// the class reservation objects use.
//
// Taking the locks of many objects, in any order, from many threads never deadlocks:
//  - every acquire context gets a stamp from its class when it starts; a lower stamp is older;
//  - a context that finds a lock held by an OLDER context "dies": lock() returns EDEADLK, and
//    the caller must unlock everything it holds under that context, then take the contended
//    lock with lockSlow() (which waits and cannot fail), then take the rest again;
//  - a context that finds a lock held by a YOUNGER context waits for it;
//  - taking a lock the same context already holds returns EALREADY.
// Without a context, lock() is a plain mutex lock. Locks are not recursive.
//
// Thread-safety: WwMutex is thread-safe. A WwAcquireCtx belongs to the thread that created it.
// Taking a WwMutex inside a fence signalling section is reported in checked builds (ResvLock).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <source_location>

#include "zbuf/base/result.h"

namespace zbuf {

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
  // ww_acquire_fini: every lock taken under the context must have been released (reported).
  ~WwAcquireCtx();
  WwAcquireCtx(const WwAcquireCtx&) = delete;
  WwAcquireCtx& operator=(const WwAcquireCtx&) = delete;

  // ww_acquire_done: no further locks will be taken under this context (checked).
  void done() noexcept { done_ = true; }
  [[nodiscard]] std::uint64_t stamp() const noexcept { return stamp_; }
  [[nodiscard]] WwClass& wwClass() const noexcept { return *class_; }
  // Number of locks currently held under this context.
  [[nodiscard]] unsigned held() const noexcept { return held_; }

 private:
  friend class WwMutex;
  WwClass* class_;
  std::uint64_t stamp_;
  unsigned held_ = 0;       // only touched by the owning thread
  bool done_ = false;       // only touched by the owning thread
  bool contended_ = false;  // died with EDEADLK and has not yet taken lockSlow()
};

class WwMutex {
 public:
  explicit WwMutex(WwClass& cls) noexcept : class_(&cls) {}
  WwMutex(const WwMutex&) = delete;
  WwMutex& operator=(const WwMutex&) = delete;
  ~WwMutex() = default;

  using Duration = std::chrono::nanoseconds;

  // ww_mutex_lock. With ctx: EDEADLK (die: back off) or EALREADY (held by ctx already).
  [[nodiscard]] Result<void> lock(WwAcquireCtx* ctx,
                                  std::source_location where = std::source_location::current());
  // The interruptible variant, made explicit: gives up with ETIMEDOUT after `timeout`.
  [[nodiscard]] Result<void> lockTimeout(
      WwAcquireCtx* ctx, Duration timeout,
      std::source_location where = std::source_location::current());
  // ww_mutex_lock_slow: after an EDEADLK back-off (ctx holds no lock), waits until acquired.
  void lockSlow(WwAcquireCtx& ctx, std::source_location where = std::source_location::current());
  // ww_mutex_trylock: never waits, never dies.
  [[nodiscard]] bool trylock(WwAcquireCtx* ctx = nullptr);
  void unlock() noexcept;

  [[nodiscard]] bool isLocked() const noexcept;
  // True if the calling thread holds the lock (the lockdep_assert_held equivalent).
  [[nodiscard]] bool heldByCurrentThread() const noexcept;
  // Reports (and aborts in checked builds) if the calling thread does not hold the lock.
  void assertHeld(std::source_location where = std::source_location::current()) const noexcept;
  // The context that holds the lock, or nullptr (no owner, or held without a context).
  [[nodiscard]] const WwAcquireCtx* ownerContext() const noexcept;

 private:
  WwClass* class_;
  mutable std::mutex m_;        // guards the fields below
  std::condition_variable cv_;  // waiters for the lock
  bool locked_ = false;
  WwAcquireCtx* ctx_ = nullptr;
  std::atomic<std::uint64_t> ownerThread_{0};  // hash of the owning thread's id; 0 = none
};

}  // namespace zbuf
