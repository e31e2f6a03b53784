// ctest-labels: concurrency
#include "zbuf/core/resv_lock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <utility>

#include "core/fake_exporter.h"
#include "support/thread_state.h"

namespace zbuf {
namespace {

using test::fakeBuffer;
using test::FakeCounters;
using testing_support::ThreadMark;

// Whether another thread can take `resv`'s lock now (it releases it again at once).
bool freeForAnotherThread(Resv& resv) {
  bool took = false;
  std::thread([&] {
    if (resv.trylock()) {
      took = true;
      resv.unlock();
    }
  }).join();
  return took;
}

TEST(ResvLock, AcquireIsTrylockWhenNonBlocking) {
  BufferPtr b = fakeBuffer(std::make_shared<FakeCounters>());
  auto first = ResvLock::acquire(b->resv(), true, "op");
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->ownsLock());
  std::thread other([&] { EXPECT_EQ(ResvLock::acquire(b->resv(), true, "op").code(), EBUSY); });
  other.join();
  ResvLock moved = std::move(*first);
  EXPECT_FALSE(first->ownsLock());
  moved.unlock();
  moved.unlock();  // idempotent
  auto again = ResvLock::acquire(b->resv(), false, "op");
  EXPECT_TRUE(again.ok());
}

TEST(ResvLock, TheConstructorLocksAndTheDestructorUnlocks) {
  Resv resv;
  {
    const ResvLock lock(resv);
    EXPECT_TRUE(lock.ownsLock());
    EXPECT_EQ(&lock.resv(), &resv);
    EXPECT_TRUE(resv.mutex().heldByCurrentThread());
    EXPECT_FALSE(freeForAnotherThread(resv));
  }
  EXPECT_FALSE(resv.mutex().isLocked());
  EXPECT_TRUE(freeForAnotherThread(resv));
}

TEST(ResvLock, UnlockEndsItEarlyAndTheDestructorThenDoesNothing) {
  Resv resv;
  {
    ResvLock lock(resv);
    lock.unlock();
    EXPECT_FALSE(lock.ownsLock());
    EXPECT_FALSE(resv.mutex().isLocked());
    ASSERT_TRUE(resv.trylock());  // ours now, not the ResvLock's
  }
  EXPECT_TRUE(resv.mutex().heldByCurrentThread()) << "the destructor unlocked a lock it gave up";
  resv.unlock();
}

TEST(ResvLock, AMovedFromLockUnlocksNothing) {
  Resv resv;
  std::optional<ResvLock> first;
  first.emplace(resv);
  ResvLock second = std::move(*first);
  EXPECT_TRUE(second.ownsLock());
  EXPECT_EQ(&second.resv(), &resv);
  first.reset();
  EXPECT_TRUE(resv.mutex().isLocked()) << "destroying the moved-from lock unlocked";
  second.unlock();
  EXPECT_FALSE(resv.mutex().isLocked());
}

TEST(ResvLock, NonBlockingAcquireOfAFreeLockTakesItAndEbusyNamesTheOp) {
  Resv resv;
  {
    auto lock = ResvLock::acquire(resv, true, "IIO_BUFFER_DMABUF_ENQUEUE_IOCTL");
    ASSERT_TRUE(lock.ok());
    EXPECT_TRUE(lock->ownsLock());
    EXPECT_TRUE(resv.mutex().heldByCurrentThread());
    std::thread([&] {
      auto busy = ResvLock::acquire(resv, true, "IIO_BUFFER_DMABUF_ENQUEUE_IOCTL");
      ASSERT_FALSE(busy.ok());
      EXPECT_EQ(busy.code(), EBUSY);
      EXPECT_STREQ(busy.error().op(), "IIO_BUFFER_DMABUF_ENQUEUE_IOCTL");
    }).join();
  }
  EXPECT_FALSE(resv.mutex().isLocked());
}

TEST(ResvLock, BlockingAcquireWaitsForTheHolder) {
  Resv resv;
  std::optional<ResvLock> held;
  held.emplace(resv);
  std::atomic<bool> acquired{false};
  ThreadMark waiter;
  std::thread t([&] {
    waiter.mark();
    auto lock = ResvLock::acquire(resv, false, "op");
    EXPECT_TRUE(lock.ok());
    acquired = lock.ok() && lock->ownsLock();
  });
  (void)waiter.waitUntilAsleep();  // blocked on the lock (or not yet there: passes either way)
  EXPECT_FALSE(acquired.load()) << "took a lock another thread holds";
  held.reset();
  t.join();
  EXPECT_TRUE(acquired.load());
  EXPECT_FALSE(resv.mutex().isLocked()) << "the waiter's ResvLock unlocked at its end";
}

}  // namespace
}  // namespace zbuf
