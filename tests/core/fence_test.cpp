// ctest-labels: concurrency
#include "zbuf/core/fence.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "support/thread_state.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;
using testing_support::ThreadMark;

TEST(Fence, TimelineHandsOutIncreasingSeqnosOnOneContext) {
  auto tl = Timeline::create("drv", "tl");
  auto a = tl->createFence();
  auto b = tl->createFence();
  EXPECT_EQ(a->context(), tl->context());
  EXPECT_EQ(a->seqno() + 1, b->seqno());
  EXPECT_NE(tl->context(), 0U);
  EXPECT_NE(Timeline::create("drv", "other")->context(), tl->context());
  EXPECT_EQ(a->driverName(), "drv");
  EXPECT_EQ(a->timelineName(), "tl");
}

TEST(Fence, CallbacksRunInOrderOnSignal) {
  auto f = Timeline::create("drv", "tl")->createFence();
  std::vector<int> order;
  order.reserve(2);  // callbacks must not allocate
  FenceCallbackFn one([&](Fence&) { order.push_back(1); });
  FenceCallbackFn two([&](Fence&) { order.push_back(2); });
  ASSERT_TRUE(f->addCallback(one).ok());
  ASSERT_TRUE(f->addCallback(two).ok());
  EXPECT_TRUE(f->signal());
  EXPECT_FALSE(f->signal());
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(Fence, WaitFromAnotherThread) {
  auto f = Timeline::create("drv", "tl")->createFence();
  ThreadMark waiter;
  std::thread t([&] {
    (void)waiter.waitUntilAsleep();  // the signal wakes a waiter that sleeps
    f->signal();
  });
  waiter.mark();
  auto r = f->waitTimeout(5s);
  t.join();
  ASSERT_TRUE(r.ok());
  EXPECT_GT(*r, 0ns);
  EXPECT_EQ(f->status(), 1);
}

// A fence with a fixed context and seqno (32-bit comparison), and hooks the tests can observe.
class TestFence final : public Fence {
 public:
  TestFence(std::uint64_t context, std::uint64_t seqno, bool seqno64 = false)
      : Fence(context, seqno, seqno64) {}
  std::string_view driverName() const override { return "test"; }
  std::string_view timelineName() const override { return "test"; }
  std::atomic<int> enableCalls{0};
  bool enableResult = true;
  std::atomic<bool> done{false};
  std::uint64_t deadline = 0;

 protected:
  bool enableSignalingLocked() override {
    ++enableCalls;
    return enableResult;
  }
  bool checkSignaled() override { return done.load(); }
  void onDeadline(std::uint64_t ns) override { deadline = ns; }
};

TEST(Fence, IsLaterWrapsAroundIn32Bits) {
  const std::uint64_t ctx = Timeline::allocateContexts(1);
  TestFence a(ctx, 1);
  TestFence b(ctx, 0xFFFFFFFFULL);
  EXPECT_TRUE(Fence::isLater(a, b));  // 1 comes after 0xffffffff on a 32-bit timeline
  EXPECT_FALSE(Fence::isLater(b, a));
  TestFence c(ctx, 5);
  TestFence d(ctx, 5);
  EXPECT_FALSE(Fence::isLater(c, d));
  EXPECT_FALSE(Fence::isLaterOrSame(c, d));  // same seqno, different fence
  EXPECT_TRUE(Fence::isLaterOrSame(c, c));
  // Only the low 32 bits count: 2^32 + 1 compares as 1, which is before 2.
  TestFence e(ctx, (1ULL << 32) + 1);
  TestFence f(ctx, 2);
  EXPECT_FALSE(Fence::isLater(e, f));
  a.signal();
  b.signal();
  c.signal();
  d.signal();
  e.signal();
  f.signal();
}

TEST(Fence, IsLaterWith64BitSeqnosDoesNotWrap) {
  const std::uint64_t ctx = Timeline::allocateContexts(1);
  TestFence a(ctx, 1, true);
  TestFence b(ctx, 0xFFFFFFFFULL, true);
  EXPECT_FALSE(Fence::isLater(a, b));
  EXPECT_TRUE(Fence::isLater(b, a));
  TestFence e(ctx, (1ULL << 32) + 1, true);
  TestFence f(ctx, 2, true);
  EXPECT_TRUE(Fence::isLater(e, f));
  for (Fence* x : {&a, &b, &e, &f}) {
    x->signal();
  }
}

TEST(Fence, IsLaterAcrossContextsIsFalse) {
  TestFence a(Timeline::allocateContexts(1), 9);
  TestFence b(Timeline::allocateContexts(1), 1);
  EXPECT_FALSE(Fence::isLater(a, b));
  EXPECT_FALSE(Fence::isLater(b, a));
  a.signal();
  b.signal();
}

TEST(Fence, AllocateContextsIsConsecutiveAndNeverZero) {
  const std::uint64_t first = Timeline::allocateContexts(3);
  const std::uint64_t next = Timeline::allocateContexts(1);
  EXPECT_NE(first, 0U);
  EXPECT_EQ(next, first + 3);
}

TEST(Fence, WaitTimeoutRefusesNegative) {
  auto f = Timeline::create("drv", "tl")->createFence();
  auto r = f->waitTimeout(-1ns);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), EINVAL);
  f->signal();
  EXPECT_EQ(f->waitTimeout(-1ns).code(), EINVAL);  // even when signalled
}

TEST(Fence, WaitTimeoutTimesOutWithZero) {
  auto f = Timeline::create("drv", "tl")->createFence();
  const auto start = std::chrono::steady_clock::now();
  auto r = f->waitTimeout(3ms);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0ns);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 3ms);
  f->signal();
  auto ok = f->waitTimeout(3ms);
  ASSERT_TRUE(ok.ok());
  EXPECT_GT(*ok, 0ns);
  EXPECT_LE(*ok, 3ms);
  auto forever = f->waitTimeout(Fence::kWaitForever);
  ASSERT_TRUE(forever.ok());
  EXPECT_GT(*forever, 0ns);
  EXPECT_TRUE(f->wait().ok());
}

TEST(Fence, WaitAnyReturnsTheFirstSignalledIndex) {
  auto tl = Timeline::create("drv", "tl");
  std::vector<FencePtr> fences = {tl->createFence(), tl->createFence(), tl->createFence()};
  auto none = Fence::waitAny(fences, 0ns);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->remaining, 0ns);
  auto timeout = Fence::waitAny(fences, 2ms);
  ASSERT_TRUE(timeout.ok());
  EXPECT_EQ(timeout->remaining, 0ns);
  ThreadMark waiter;
  std::thread t([&] {
    (void)waiter.waitUntilAsleep();  // the signal wakes a waiter that sleeps
    fences[2]->signal();
  });
  waiter.mark();
  auto r = Fence::waitAny(fences, 5s);
  t.join();
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->remaining, 0ns);
  EXPECT_EQ(r->index, 2U);
  fences[1]->signal();
  auto both = Fence::waitAny(fences, 0ns);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->index, 1U);  // the first in array order
  EXPECT_EQ(both->remaining, 1ns);
  fences[0]->signal();
}

TEST(Fence, WaitAnyRefusesEmptyListAndNegativeTimeout) {
  EXPECT_EQ(Fence::waitAny({}, 1ms).code(), EINVAL);
  const FencePtr one[] = {Fence::stub()};
  EXPECT_EQ(Fence::waitAny(one, -1ns).code(), EINVAL);
}

// Like FenceArray::create and merge: a null member is EINVAL, wherever it is in the list and
// even when another member is already signalled.
TEST(Fence, WaitAnyRefusesANullMember) {
  auto pending = Timeline::create("drv", "tl")->createFence();
  const FencePtr nullFirst[] = {nullptr, pending};
  EXPECT_EQ(Fence::waitAny(nullFirst, 1ms).code(), EINVAL);
  const FencePtr nullAfterSignalled[] = {Fence::stub(), nullptr};
  EXPECT_EQ(Fence::waitAny(nullAfterSignalled, 0ns).code(), EINVAL);
  const FencePtr nullAlone[] = {nullptr};
  EXPECT_EQ(Fence::waitAny(nullAlone, Fence::kWaitForever).code(), EINVAL);
}

TEST(Fence, DeadlineHintReachesTheDriverOnlyWhileUnsignalled) {
  TestFence f(Timeline::allocateContexts(1), 1);
  f.setDeadline(1000);
  EXPECT_EQ(f.deadline, 1000U);
  f.signal();
  f.setDeadline(2000);
  EXPECT_EQ(f.deadline, 1000U);
}

TEST(Fence, ReleasingWithCallbacksQueuedSignalsWithEDEADLK) {
  int seenError = 0;
  int seenStatus = 0;
  FenceCallbackFn cb([&](Fence& f) {
    seenError = f.error();
    seenStatus = f.isSignaledFlag() ? 1 : 0;
  });
  {
    auto f = Timeline::create("drv", "tl")->createFence();
    ASSERT_TRUE(f->addCallback(cb).ok());
  }  // released unsignalled with a callback queued
  EXPECT_EQ(seenError, -EDEADLK);
  EXPECT_EQ(seenStatus, 1);
}

TEST(Fence, EnableSignalingRunsOnceOnFirstInterest) {
  TestFence f(Timeline::allocateContexts(1), 1);
  EXPECT_EQ(f.enableCalls.load(), 0);
  FenceCallback a([](Fence&, FenceCallback&) {});
  FenceCallback b([](Fence&, FenceCallback&) {});
  ASSERT_TRUE(f.addCallback(a).ok());
  ASSERT_TRUE(f.addCallback(b).ok());
  f.enableSwSignaling();
  EXPECT_EQ(f.waitTimeout(0ns)->count(), 0);
  EXPECT_EQ(f.enableCalls.load(), 1);
  f.signal();
}

TEST(Fence, EnableSignalingReturningFalseSignalsAtOnce) {
  TestFence f(Timeline::allocateContexts(1), 1);
  f.enableResult = false;
  FenceCallback cb([](Fence&, FenceCallback&) {});
  auto r = f.addCallback(cb);
  EXPECT_EQ(r.code(), ENOENT);
  EXPECT_TRUE(f.isSignaledFlag());
}

TEST(Fence, IsSignaledPollsTheDriver) {
  TestFence f(Timeline::allocateContexts(1), 1);
  EXPECT_FALSE(f.isSignaled());
  f.done = true;
  EXPECT_FALSE(f.isSignaledFlag());
  EXPECT_TRUE(f.isSignaled());
  EXPECT_TRUE(f.isSignaledFlag());
  EXPECT_NE(f.timestampNs(), 0U);
}

TEST(Fence, ErrorRulesAndTimestamps) {
  auto f = Timeline::create("drv", "tl")->createFence();
  f->setError(0);  // not a negative errno: ignored
  f->setError(-5000);
  EXPECT_EQ(f->error(), 0);
  EXPECT_EQ(f->timestampNs(), 0U);
  f->setError(-ETIME);
  EXPECT_EQ(f->status(), 0);
  EXPECT_TRUE(f->signalWithTimestamp(4242));
  EXPECT_EQ(f->timestampNs(), 4242U);
  f->setError(-EIO);  // after signalling: ignored
  EXPECT_EQ(f->status(), -ETIME);
}

TEST(Fence, SignaledStubIsPrivateAndCarriesItsTimestamp) {
  auto s = Fence::signaledStub(77);
  EXPECT_TRUE(s->isSignaledFlag());
  EXPECT_EQ(s->timestampNs(), 77U);
  EXPECT_NE(s, Fence::stub());
  EXPECT_EQ(Fence::stub(), Fence::stub());
  EXPECT_EQ(s->context(), 0U);
}

TEST(Fence, CallbackRemovedBeforeSignalNeverRuns) {
  auto f = Timeline::create("drv", "tl")->createFence();
  int runs = 0;
  FenceCallbackFn a([&](Fence&) { ++runs; });
  FenceCallbackFn b([&](Fence&) { runs += 10; });
  FenceCallbackFn c([&](Fence&) { runs += 100; });
  ASSERT_TRUE(f->addCallback(a).ok());
  ASSERT_TRUE(f->addCallback(b).ok());
  ASSERT_TRUE(f->addCallback(c).ok());
  EXPECT_TRUE(f->removeCallback(b));  // from the middle
  EXPECT_FALSE(f->removeCallback(b));
  f->signal();
  EXPECT_EQ(runs, 101);
}

// The contract the stress tests rely on (dma_fence_signal sets the bit, then runs the callbacks
// under the lock): the fence reads as signalled while callbacks are still running, so a node
// may be freed only after it ran or removeCallback() returned false, which waits for the
// signaller through the lock.
TEST(Fence, SignalledBeforeCallbacksFinishRemoveWaitsForThem) {
  auto f = Timeline::create("drv", "tl")->createFence();
  std::atomic<bool> entered{false};
  std::atomic<bool> gate{false};
  std::atomic<int> laterRuns{0};
  FenceCallbackFn first([&](Fence&) {
    entered = true;
    entered.notify_all();
    gate.wait(false);
  });
  FenceCallbackFn later([&](Fence&) { laterRuns.fetch_add(1, std::memory_order_relaxed); });
  ASSERT_TRUE(f->addCallback(first).ok());
  ASSERT_TRUE(f->addCallback(later).ok());
  std::thread signaller([&] { f->signal(); });
  entered.wait(false);
  EXPECT_TRUE(f->isSignaledFlag());
  EXPECT_GT(f->waitTimeout(1s)->count(), 0);  // returns although `later` has not run yet
  EXPECT_EQ(laterRuns.load(), 0);
  int runsWhenRemoveReturned = -1;
  std::thread remover([&] {
    EXPECT_FALSE(f->removeCallback(later));
    runsWhenRemoveReturned = laterRuns.load(std::memory_order_relaxed);
  });
  gate = true;
  gate.notify_all();
  remover.join();
  signaller.join();
  EXPECT_EQ(runsWhenRemoveReturned, 1);
}

}  // namespace
}  // namespace zbuf
