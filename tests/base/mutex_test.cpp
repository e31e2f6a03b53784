// ctest-labels: concurrency
#include "zbuf/base/mutex.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "support/thread_state.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;
using testing_support::ThreadMark;

// Whether another thread can take `m` now (it releases it again at once).
bool freeForAnotherThread(Mutex& m) {
  bool took = false;
  std::thread([&] {
    if (m.tryLock()) {
      took = true;
      m.unlock();
    }
  }).join();
  return took;
}

TEST(Mutex, TryLockFailsWhileAnotherThreadHoldsIt) {
  Mutex m;
  EXPECT_TRUE(freeForAnotherThread(m));
  m.lock();
  EXPECT_FALSE(freeForAnotherThread(m));
  m.unlock();
  EXPECT_TRUE(freeForAnotherThread(m));
}

TEST(Mutex, LockUnlessNonblockOnlyTriesWhenNonblock) {
  Mutex m;
  if (!m.lockUnlessNonblock(true)) {
    FAIL() << "a free lock was not taken";
  }
  {
    const MutexLocker lock(m, std::adopt_lock);
    bool nonblockTook = true;
    std::thread([&] {
      if (m.lockUnlessNonblock(true)) {
        nonblockTook = true;
        m.unlock();
      } else {
        nonblockTook = false;
      }
    }).join();
    EXPECT_FALSE(nonblockTook) << "O_NONBLOCK on a held lock";
  }
  EXPECT_TRUE(freeForAnotherThread(m)) << "the adopting locker released it";
}

TEST(Mutex, LockUnlessNonblockWaitsForTheHolderOtherwise) {
  Mutex m;
  std::atomic<bool> locked{false};
  ThreadMark waiter;
  m.lock();
  std::thread t([&] {
    waiter.mark();
    if (m.lockUnlessNonblock(false)) {
      locked = true;
      m.unlock();
    }
  });
  (void)waiter.waitUntilAsleep();  // blocked on the lock (or not yet there: passes either way)
  EXPECT_FALSE(locked.load()) << "took a lock another thread holds";
  m.unlock();
  t.join();
  EXPECT_TRUE(locked.load());
}

TEST(MutexLocker, UnlocksAndRelocks) {
  Mutex m;
  {
    MutexLocker lock(m);
    EXPECT_TRUE(lock.ownsLock());
    EXPECT_FALSE(freeForAnotherThread(m));
    lock.unlock();
    EXPECT_FALSE(lock.ownsLock());
    EXPECT_TRUE(freeForAnotherThread(m));
    lock.lock();
    EXPECT_TRUE(lock.ownsLock());
    EXPECT_FALSE(freeForAnotherThread(m));
  }
  EXPECT_TRUE(freeForAnotherThread(m)) << "destruction unlocks";
}

TEST(MutexLocker, AdoptsALockTakenWithTryLock) {
  Mutex m;
  if (!m.tryLock()) {
    FAIL() << "a free lock was not taken";
  }
  {
    const MutexLocker lock(m, std::adopt_lock);
    EXPECT_TRUE(lock.ownsLock());
    EXPECT_FALSE(freeForAnotherThread(m));
  }
  EXPECT_TRUE(freeForAnotherThread(m));
}

TEST(ConditionVariable, NotifyWakesAWaiterWithTheLockHeld) {
  Mutex m;
  ConditionVariable cv;
  bool ready = false;
  bool ownedAfterWait = false;
  bool sawReady = false;
  ThreadMark waiter;
  std::thread t([&] {
    MutexLocker lock(m);
    waiter.mark();
    cv.wait(lock, [&] { return ready; });
    ownedAfterWait = lock.ownsLock();
    sawReady = ready;
  });
  (void)waiter.waitUntilAsleep();
  {
    const MutexLocker lock(m);
    ready = true;
  }
  cv.notifyOne();
  t.join();
  EXPECT_TRUE(sawReady);
  EXPECT_TRUE(ownedAfterWait);
}

TEST(ConditionVariable, NotifyAllWakesEveryWaiter) {
  Mutex m;
  ConditionVariable cv;
  bool go = false;
  std::atomic<int> woken{0};
  ThreadMark marks[2];
  auto waiter = [&](ThreadMark& mark) {
    MutexLocker lock(m);
    mark.mark();
    cv.wait(lock, [&] { return go; });
    ++woken;
  };
  std::thread a(waiter, std::ref(marks[0]));
  std::thread b(waiter, std::ref(marks[1]));
  (void)marks[0].waitUntilAsleep();  // both in the wait (or passing either way)
  (void)marks[1].waitUntilAsleep();
  {
    const MutexLocker lock(m);
    go = true;
  }
  cv.notifyAll();
  a.join();
  b.join();
  EXPECT_EQ(woken.load(), 2);
}

TEST(ConditionVariable, TimedWaitsReturnThePredicate) {
  Mutex m;
  ConditionVariable cv;
  MutexLocker lock(m);
  EXPECT_FALSE(cv.waitFor(lock, 1ms, [] { return false; }));
  EXPECT_TRUE(lock.ownsLock()) << "relocked after the timeout";
  EXPECT_TRUE(cv.waitFor(lock, 1h, [] { return true; })) << "true at once, no wait";
  const auto past = std::chrono::steady_clock::now() - 1s;
  EXPECT_FALSE(cv.waitUntil(lock, past, [] { return false; }));
  EXPECT_TRUE(cv.waitUntil(lock, past, [] { return true; }));
  EXPECT_TRUE(lock.ownsLock());
}

TEST(ConditionVariable, WaitUntilAPassedDeadlineTimesOut) {
  Mutex m;
  ConditionVariable cv;
  MutexLocker lock(m);
  const auto past = std::chrono::steady_clock::now() - 1s;
  // A spurious wakeup could end the wait early, but not with a passed deadline unreported.
  std::cv_status status = std::cv_status::no_timeout;
  for (int i = 0; i < 100 && status == std::cv_status::no_timeout; ++i) {
    status = cv.waitUntil(lock, past);
  }
  EXPECT_EQ(status, std::cv_status::timeout);
  EXPECT_TRUE(lock.ownsLock());
}

}  // namespace
}  // namespace zbuf
