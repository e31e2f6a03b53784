// Mutex, MutexLocker, ConditionVariable: zbuf's locks, with Clang's thread-safety annotations
// (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html), as libcamera's base/mutex.h has them.
//
// A class declares what each mutex guards and what each function needs:
//
//   Mutex mutex_;
//   int count_ ZBUF_GUARDED_BY(mutex_);
//   void bumpLocked() ZBUF_REQUIRES(mutex_);
//   void bump() ZBUF_EXCLUDES(mutex_) { const MutexLocker lock(mutex_); bumpLocked(); }
//
// and the clang build with -Wthread-safety (scripts/build.sh tsa, part of the test command)
// rejects an access without the lock, a *Locked call without it, a lock taken twice or a path
// that forgets to unlock. GCC builds see plain std::mutex, std::unique_lock and
// std::condition_variable (the macros expand to nothing).
//
// A predicate passed to ConditionVariable::wait runs with the lock held but is analysed as a
// function of its own: give the lambda ZBUF_REQUIRES(the mutex) after its parameter list.
//
// Thread-safety: as the std:: types they wrap.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

#if defined(__clang__)
#define ZBUF_TSA(x) __attribute__((x))
#else
#define ZBUF_TSA(x)
#endif

#define ZBUF_CAPABILITY(x) ZBUF_TSA(capability(x))
#define ZBUF_SCOPED_CAPABILITY ZBUF_TSA(scoped_lockable)
#define ZBUF_GUARDED_BY(x) ZBUF_TSA(guarded_by(x))
#define ZBUF_PT_GUARDED_BY(x) ZBUF_TSA(pt_guarded_by(x))
#define ZBUF_ACQUIRED_BEFORE(...) ZBUF_TSA(acquired_before(__VA_ARGS__))
#define ZBUF_ACQUIRED_AFTER(...) ZBUF_TSA(acquired_after(__VA_ARGS__))
#define ZBUF_REQUIRES(...) ZBUF_TSA(requires_capability(__VA_ARGS__))
#define ZBUF_ACQUIRE(...) ZBUF_TSA(acquire_capability(__VA_ARGS__))
#define ZBUF_RELEASE(...) ZBUF_TSA(release_capability(__VA_ARGS__))
#define ZBUF_TRY_ACQUIRE(...) ZBUF_TSA(try_acquire_capability(__VA_ARGS__))
#define ZBUF_EXCLUDES(...) ZBUF_TSA(locks_excluded(__VA_ARGS__))
#define ZBUF_ASSERT_CAPABILITY(x) ZBUF_TSA(assert_capability(x))
#define ZBUF_RETURN_CAPABILITY(x) ZBUF_TSA(lock_returned(x))
#define ZBUF_NO_THREAD_SAFETY_ANALYSIS ZBUF_TSA(no_thread_safety_analysis)

namespace zbuf {

class ZBUF_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  Mutex(Mutex&&) = delete;
  Mutex& operator=(Mutex&&) = delete;
  ~Mutex() = default;

  void lock() ZBUF_ACQUIRE() { mutex_.lock(); }
  void unlock() ZBUF_RELEASE() { mutex_.unlock(); }
  [[nodiscard]] bool tryLock() ZBUF_TRY_ACQUIRE(true) { return mutex_.try_lock(); }
  // The kernel's "mutex_trylock when O_NONBLOCK, else mutex_lock": locks (waiting) unless
  // `nonblock`, then only tries. False only when `nonblock` and another thread holds it; adopt
  // the lock with MutexLocker(m, std::adopt_lock) after a true return.
  [[nodiscard]] bool lockUnlessNonblock(bool nonblock) ZBUF_TRY_ACQUIRE(true) {
    if (nonblock) {
      return mutex_.try_lock();
    }
    mutex_.lock();
    return true;
  }
  // For code the analysis cannot follow (documented at the call): says the lock is held.
  void assertHeld() const ZBUF_ASSERT_CAPABILITY(this) {}

 private:
  friend class MutexLocker;
  std::mutex mutex_;
};

// A scoped lock (std::unique_lock): locked from construction until unlock() or destruction,
// relockable with lock().
class ZBUF_SCOPED_CAPABILITY MutexLocker {
 public:
  explicit MutexLocker(Mutex& m) ZBUF_ACQUIRE(m) : lock_(m.mutex_) {}
  // Takes over a lock the caller holds (after tryLock() or lockUnlessNonblock()).
  MutexLocker(Mutex& m, std::adopt_lock_t /*tag*/) ZBUF_REQUIRES(m)
      : lock_(m.mutex_, std::adopt_lock) {}
  ~MutexLocker() ZBUF_RELEASE() = default;
  MutexLocker(const MutexLocker&) = delete;
  MutexLocker& operator=(const MutexLocker&) = delete;
  MutexLocker(MutexLocker&&) = delete;
  MutexLocker& operator=(MutexLocker&&) = delete;

  void lock() ZBUF_ACQUIRE() { lock_.lock(); }
  void unlock() ZBUF_RELEASE() { lock_.unlock(); }
  [[nodiscard]] bool ownsLock() const noexcept { return lock_.owns_lock(); }

 private:
  friend class ConditionVariable;
  std::unique_lock<std::mutex> lock_;
};

// std::condition_variable on a MutexLocker. The waits are not analysed (they unlock and relock
// inside); the caller holds the lock before and after, as the analysis sees it.
class ConditionVariable {
 public:
  void notifyOne() noexcept { cv_.notify_one(); }
  void notifyAll() noexcept { cv_.notify_all(); }

  void wait(MutexLocker& locker) ZBUF_NO_THREAD_SAFETY_ANALYSIS { cv_.wait(locker.lock_); }
  template <typename Predicate>
  void wait(MutexLocker& locker, Predicate stopWaiting) ZBUF_NO_THREAD_SAFETY_ANALYSIS {
    cv_.wait(locker.lock_, stopWaiting);
  }
  template <typename Rep, typename Period, typename Predicate>
  bool waitFor(MutexLocker& locker, const std::chrono::duration<Rep, Period>& timeout,
               Predicate stopWaiting) ZBUF_NO_THREAD_SAFETY_ANALYSIS {
    return cv_.wait_for(locker.lock_, timeout, stopWaiting);
  }
  template <typename Clock, typename Duration>
  std::cv_status waitUntil(MutexLocker& locker,
                           const std::chrono::time_point<Clock, Duration>& deadline)
      ZBUF_NO_THREAD_SAFETY_ANALYSIS {
    return cv_.wait_until(locker.lock_, deadline);
  }
  template <typename Clock, typename Duration, typename Predicate>
  bool waitUntil(MutexLocker& locker, const std::chrono::time_point<Clock, Duration>& deadline,
                 Predicate stopWaiting) ZBUF_NO_THREAD_SAFETY_ANALYSIS {
    return cv_.wait_until(locker.lock_, deadline, stopWaiting);
  }

 private:
  std::condition_variable cv_;
};

}  // namespace zbuf
#pragma GCC visibility pop
