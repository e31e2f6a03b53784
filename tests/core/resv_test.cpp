// ctest-labels: concurrency
#include "zbuf/core/resv.h"

#include <gtest/gtest.h>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "support/log_capture.h"
#include "support/thread_state.h"
#include "zbuf/core/fence_array.h"
#include "zbuf/core/fence_chain.h"
#include "zbuf/core/fence_signalling.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;

constexpr ResvUsage kUsages[] = {ResvUsage::Kernel, ResvUsage::Write, ResvUsage::Read,
                                 ResvUsage::Bookkeep};

using testing_support::LogCapture;

std::vector<FencePtr> containers() {
  auto a = Timeline::create("drv", "a")->createFence();
  auto b = Timeline::create("drv", "b")->createFence();
  auto array = FenceArray::create({a, b}, Timeline::allocateContexts(1), 1, false);
  auto chain = FenceChain::create(nullptr, a, 1);
  a->signal();
  b->signal();
  return {FencePtr(*array), FencePtr(*chain)};
}

// Adds `f` with `usage` under the lock (one reservation per add).
void add(Resv& resv, FencePtr f, ResvUsage usage) {
  ASSERT_TRUE(resv.lock().ok());
  ASSERT_TRUE(resv.reserveFencesLocked(1).ok());
  resv.addFenceLocked(std::move(f), usage);
  resv.unlock();
}

std::vector<ResvUsage> usagesOf(const Resv& resv) {
  std::vector<ResvUsage> out;
  for (const auto& e : resv.entries(ResvUsage::Bookkeep)) {
    out.push_back(e.usage);
  }
  return out;
}

TEST(Resv, UsageNamesAndRw) {
  EXPECT_STREQ(toString(ResvUsage::Kernel), "kernel");
  EXPECT_STREQ(toString(ResvUsage::Write), "write");
  EXPECT_STREQ(toString(ResvUsage::Read), "read");
  EXPECT_STREQ(toString(ResvUsage::Bookkeep), "bookkeep");
  EXPECT_EQ(usageRw(true), ResvUsage::Read);
  EXPECT_EQ(usageRw(false), ResvUsage::Write);
  EXPECT_STREQ(reservationWwClass().name(), "reservation_ww_class");
  Resv r;
  EXPECT_EQ(&r.mutex().wwClass(), &reservationWwClass());
}

TEST(Resv, ReserveZeroIsEinval) {
  Resv r;
  ASSERT_TRUE(r.lock().ok());
  auto res = r.reserveFencesLocked(0);
  EXPECT_EQ(res.code(), EINVAL);
  r.unlock();
}

TEST(Resv, ReserveHugeIsEnomem) {
  Resv r;
  ASSERT_TRUE(r.lock().ok());
  EXPECT_EQ(r.reserveFencesLocked(UINT32_MAX).code(), ENOMEM);
  r.unlock();
}

TEST(ResvDeathTest, AddWithoutReservedSlotAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Resv r;
  auto f = Timeline::create("drv", "tl")->createFence();
  EXPECT_DEATH(
      {
        (void)r.lock();
        r.addFenceLocked(f, ResvUsage::Write);
      },
      "no reserved slot");
}

TEST(ResvDeathTest, ReservedSlotIsDroppedOnUnlock) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Resv r;
  auto tl = Timeline::create("drv", "tl");
  EXPECT_DEATH(
      {
        (void)r.lock();
        (void)r.reserveFencesLocked(4);
        r.unlock();
        (void)r.lock();
        r.addFenceLocked(tl->createFence(), ResvUsage::Write);
      },
      "no reserved slot");
}

TEST(ResvDeathTest, ReservingIsNotCumulative) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Resv r;
  auto tl = Timeline::create("drv", "tl");
  auto other = Timeline::create("drv", "other");
  EXPECT_DEATH(
      {
        (void)r.lock();
        (void)r.reserveFencesLocked(1);
        (void)r.reserveFencesLocked(1);
        r.addFenceLocked(tl->createFence(), ResvUsage::Write);
        r.addFenceLocked(other->createFence(), ResvUsage::Write);
      },
      "no reserved slot");
}

TEST(ResvDeathTest, ReplacingAlsoConsumesASlot) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Resv r;
  auto tl = Timeline::create("drv", "tl");
  EXPECT_DEATH(
      {
        (void)r.lock();
        (void)r.reserveFencesLocked(1);
        r.addFenceLocked(tl->createFence(), ResvUsage::Write);
        r.addFenceLocked(tl->createFence(), ResvUsage::Write);  // would replace: still a bug
      },
      "no reserved slot");
}

TEST(Resv, ReserveManyThenAddMany) {
  Resv r;
  std::vector<std::shared_ptr<Timeline>> tls;
  ASSERT_TRUE(r.lock().ok());
  ASSERT_TRUE(r.reserveFencesLocked(10).ok());
  for (int i = 0; i < 10; ++i) {
    tls.push_back(Timeline::create("drv", "tl"));
    r.addFenceLocked(tls.back()->createFence(), ResvUsage::Read);
  }
  // Reserving again within the capacity is fine, and adding keeps working.
  ASSERT_TRUE(r.reserveFencesLocked(1).ok());
  r.addFenceLocked(Timeline::create("drv", "x")->createFence(), ResvUsage::Read);
  r.unlock();
  EXPECT_EQ(r.size(), 11U);
  EXPECT_EQ(r.getFences(ResvUsage::Bookkeep).size(), 11U);
}

TEST(Resv, QueriesCoverEveryUsageUpToTheQuery) {
  for (ResvUsage added : kUsages) {
    Resv r;
    auto f = Timeline::create("drv", "tl")->createFence();
    add(r, f, added);
    for (ResvUsage query : kUsages) {
      const bool covered = added <= query;
      SCOPED_TRACE(fmt::format("added {} query {}", toString(added), toString(query)));
      EXPECT_EQ(r.testSignaled(query), !covered);
      EXPECT_EQ(r.getFences(query).size(), covered ? 1U : 0U);
      EXPECT_EQ(r.entries(query).size(), covered ? 1U : 0U);
      auto w = r.waitTimeout(query, 0ns);
      ASSERT_TRUE(w.ok());
      EXPECT_EQ(*w, covered ? 0ns : 1ns);
    }
    f->signal();
    for (ResvUsage query : kUsages) {
      EXPECT_TRUE(r.testSignaled(query));
      EXPECT_TRUE(r.getFences(query).empty());
    }
    // entries() still lists the signalled fence.
    ASSERT_EQ(r.entries(ResvUsage::Bookkeep).size(), 1U);
    EXPECT_EQ(r.entries(ResvUsage::Bookkeep)[0].usage, added);
  }
}

TEST(Resv, SameContextLaterFenceReplaces) {
  Resv r;
  auto tl = Timeline::create("drv", "tl");
  auto a = tl->createFence();
  auto b = tl->createFence();
  add(r, a, ResvUsage::Write);
  add(r, b, ResvUsage::Write);
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r.entries(ResvUsage::Bookkeep)[0].fence, b);
  add(r, b, ResvUsage::Write);  // the same fence again: replaces itself
  EXPECT_EQ(r.size(), 1U);
}

TEST(Resv, SameContextEarlierFenceAppends) {
  Resv r;
  auto tl = Timeline::create("drv", "tl");
  auto a = tl->createFence();
  auto b = tl->createFence();
  add(r, b, ResvUsage::Write);
  add(r, a, ResvUsage::Write);
  EXPECT_EQ(r.size(), 2U);
}

TEST(Resv, OtherContextAppends) {
  Resv r;
  add(r, Timeline::create("drv", "a")->createFence(), ResvUsage::Read);
  add(r, Timeline::create("drv", "b")->createFence(), ResvUsage::Read);
  EXPECT_EQ(r.size(), 2U);
}

TEST(Resv, UsageIsPromotedNeverDegraded) {
  Resv r;
  auto tl = Timeline::create("drv", "tl");
  add(r, tl->createFence(), ResvUsage::Bookkeep);
  add(r, tl->createFence(), ResvUsage::Read);  // BOOKKEEP -> READ: replaces
  EXPECT_EQ(usagesOf(r), std::vector<ResvUsage>{ResvUsage::Read});
  add(r, tl->createFence(), ResvUsage::Write);  // READ -> WRITE: replaces
  EXPECT_EQ(usagesOf(r), std::vector<ResvUsage>{ResvUsage::Write});
  add(r, tl->createFence(), ResvUsage::Read);  // WRITE -> READ would degrade: appends
  EXPECT_EQ(usagesOf(r), (std::vector<ResvUsage>{ResvUsage::Write, ResvUsage::Read}));
  EXPECT_FALSE(r.testSignaled(ResvUsage::Write));  // the write is still waited for
}

TEST(Resv, SignalledEntryIsReplacedByAnyFence) {
  Resv r;
  auto a = Timeline::create("drv", "a")->createFence();
  auto b = Timeline::create("drv", "b")->createFence();
  add(r, a, ResvUsage::Kernel);
  a->signal();
  add(r, b, ResvUsage::Bookkeep);  // other context, weaker usage: still replaces a signalled one
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r.entries(ResvUsage::Bookkeep)[0].fence, b);
  EXPECT_EQ(r.entries(ResvUsage::Bookkeep)[0].usage, ResvUsage::Bookkeep);
}

TEST(Resv, ReplaceFencesOfOneContext) {
  Resv r;
  auto tl = Timeline::create("drv", "tl");
  auto a1 = tl->createFence();
  auto a2 = tl->createFence();
  auto other = Timeline::create("drv", "other")->createFence();
  ASSERT_TRUE(r.lock().ok());
  ASSERT_TRUE(r.reserveFencesLocked(3).ok());
  r.addFenceLocked(a2, ResvUsage::Read);
  r.addFenceLocked(a1, ResvUsage::Write);  // earlier than a2: appends
  r.addFenceLocked(other, ResvUsage::Read);
  ASSERT_EQ(r.size(), 3U);
  auto stub = Fence::stub();
  r.replaceFencesLocked(tl->context(), stub, ResvUsage::Bookkeep);
  r.unlock();
  auto e = r.entries(ResvUsage::Bookkeep);
  ASSERT_EQ(e.size(), 3U);
  EXPECT_EQ(e[0].fence, stub);
  EXPECT_EQ(e[0].usage, ResvUsage::Bookkeep);
  EXPECT_EQ(e[1].fence, stub);
  EXPECT_EQ(e[2].fence, other);
  EXPECT_FALSE(r.testSignaled(ResvUsage::Read));
  EXPECT_EQ(r.getFences(ResvUsage::Bookkeep), std::vector<FencePtr>{other});
}

TEST(Resv, ReplaceWithNullIsRefused) {
  Resv r;
  auto tl = Timeline::create("drv", "tl");
  add(r, tl->createFence(), ResvUsage::Write);
  ASSERT_TRUE(r.lock().ok());
  {
    LogCapture logs("Resv");
    r.replaceFencesLocked(tl->context(), nullptr, ResvUsage::Write);
    EXPECT_TRUE(logs.contains("null replacement"));
  }
  r.unlock();
  EXPECT_FALSE(r.testSignaled(ResvUsage::Write));
}

TEST(Resv, ContainersAndNullAreRefused) {
  Resv r;
  ASSERT_TRUE(r.lock().ok());
  ASSERT_TRUE(r.reserveFencesLocked(1).ok());
  {
    for (const FencePtr& container : containers()) {
      LogCapture logs("Resv");
      r.addFenceLocked(container, ResvUsage::Write);
      EXPECT_TRUE(logs.contains("is a container")) << container->driverName();
    }
    LogCapture logs("Resv");
    r.addFenceLocked(nullptr, ResvUsage::Write);
    EXPECT_TRUE(logs.contains("null fence"));
  }
  EXPECT_EQ(r.size(), 0U);
  // The slot was not used up by the refused fences.
  r.addFenceLocked(Timeline::create("drv", "tl")->createFence(), ResvUsage::Write);
  r.unlock();
  EXPECT_EQ(r.size(), 1U);
}

TEST(Resv, GrowingCompactsSignalledFences) {
  Resv r;
  std::vector<FencePtr> fences;
  ASSERT_TRUE(r.lock().ok());
  ASSERT_TRUE(r.reserveFencesLocked(4).ok());
  for (int i = 0; i < 4; ++i) {
    fences.push_back(Timeline::create("drv", "tl")->createFence());
    r.addFenceLocked(fences.back(), ResvUsage::Read);
  }
  fences[0]->signal();
  fences[2]->signal();
  ASSERT_TRUE(r.reserveFencesLocked(8).ok());  // beyond the capacity: a new, compacted list
  EXPECT_EQ(r.size(), 2U);
  r.unlock();
  EXPECT_EQ(r.getFences(ResvUsage::Read), (std::vector<FencePtr>{fences[1], fences[3]}));
}

TEST(Resv, WaitTimeout) {
  Resv r;
  EXPECT_EQ(r.waitTimeout(ResvUsage::Read, -1ns).code(), EINVAL);
  auto empty = r.waitTimeout(ResvUsage::Read, 0ns);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, 1ns);
  auto f = Timeline::create("drv", "tl")->createFence();
  add(r, f, ResvUsage::Write);
  auto timedOut = r.waitTimeout(ResvUsage::Read, 10ms);
  ASSERT_TRUE(timedOut.ok());
  EXPECT_EQ(*timedOut, 0ns);
  EXPECT_EQ(r.waitTimeout(ResvUsage::Read, -5ms).code(), EINVAL);
  testing_support::ThreadMark waiter;
  std::thread t([&] {
    (void)waiter.waitUntilAsleep();  // the signal wakes a waiter that sleeps
    f->signal();
  });
  waiter.mark();
  auto ok = r.waitTimeout(ResvUsage::Read, 5s);
  t.join();
  ASSERT_TRUE(ok.ok());
  EXPECT_GT(*ok, 0ns);
  EXPECT_LE(*ok, 5s);
  auto forever = r.waitTimeout(ResvUsage::Read, Fence::kWaitForever);
  ASSERT_TRUE(forever.ok());
  EXPECT_GT(*forever, 0ns);
}

TEST(Resv, WaitIgnoresUsagesAboveTheQuery) {
  Resv r;
  auto bookkeep = Timeline::create("drv", "bk")->createFence();
  add(r, bookkeep, ResvUsage::Bookkeep);
  auto w = r.waitTimeout(ResvUsage::Read, 1s);
  ASSERT_TRUE(w.ok());
  EXPECT_GT(*w, 0ns);
  EXPECT_EQ(*r.waitTimeout(ResvUsage::Bookkeep, 1ms), 0ns);
  bookkeep->signal();
}

TEST(Resv, SingletonCases) {
  Resv r;
  auto none = r.getSingleton(ResvUsage::Bookkeep);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  auto a = Timeline::create("drv", "a")->createFence();
  add(r, a, ResvUsage::Write);
  auto one = r.getSingleton(ResvUsage::Bookkeep);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, a);
  auto b = Timeline::create("drv", "b")->createFence();
  add(r, b, ResvUsage::Read);
  // Only b's usage is READ: a WRITE query still sees one fence.
  EXPECT_EQ(*r.getSingleton(ResvUsage::Write), a);
  auto two = r.getSingleton(ResvUsage::Read);
  ASSERT_TRUE(two.ok());
  ASSERT_NE(*two, nullptr);
  EXPECT_EQ((*two)->driverName(), "dma_fence_array");
  const auto array = FenceArray::from(*two);
  ASSERT_NE(array, nullptr);
  EXPECT_EQ(array->fences(), (std::vector<FencePtr>{a, b}));
  EXPECT_FALSE(array->signalOnAny());
  EXPECT_NE((*two)->context(), a->context());
  EXPECT_NE((*two)->context(), b->context());
  EXPECT_EQ((*two)->seqno(), 1U);
  EXPECT_FALSE((*two)->isSignaled());
  a->signal();
  EXPECT_FALSE((*two)->isSignaled());
  b->signal();
  EXPECT_TRUE((*two)->isSignaled());
  EXPECT_EQ(*r.getSingleton(ResvUsage::Read), nullptr);  // all signalled
}

TEST(Resv, ForEachLockedSeesEveryEntry) {
  Resv r;
  auto a = Timeline::create("drv", "a")->createFence();
  auto b = Timeline::create("drv", "b")->createFence();
  add(r, a, ResvUsage::Write);
  add(r, b, ResvUsage::Bookkeep);
  a->signal();
  ASSERT_TRUE(r.lock().ok());
  std::vector<FencePtr> seen;
  r.forEachLocked(ResvUsage::Read, [&](const FencePtr& f, ResvUsage u) {
    EXPECT_EQ(u, ResvUsage::Write);
    seen.push_back(f);
  });
  EXPECT_EQ(seen, std::vector<FencePtr>{a});  // signalled, still visited under the lock
  seen.clear();
  r.forEachLocked(ResvUsage::Bookkeep, [&](const FencePtr& f, ResvUsage) { seen.push_back(f); });
  EXPECT_EQ(seen.size(), 2U);
  r.unlock();
  b->signal();
}

TEST(Resv, UnlockedIterRestartsWhenTheSetChanges) {
  Resv r;
  auto a = Timeline::create("drv", "a")->createFence();
  auto b = Timeline::create("drv", "b")->createFence();
  auto c = Timeline::create("drv", "c")->createFence();
  add(r, a, ResvUsage::Read);
  add(r, b, ResvUsage::Write);
  Resv::UnlockedIter it(r, ResvUsage::Bookkeep);
  FencePtr f = it.first();
  EXPECT_EQ(f, a);
  EXPECT_TRUE(it.isRestarted());
  EXPECT_EQ(it.usage(), ResvUsage::Read);
  add(r, c, ResvUsage::Kernel);  // changes the set mid-walk
  f = it.next();
  EXPECT_TRUE(it.isRestarted());  // started over ...
  EXPECT_EQ(f, a);                // ... from the first fence
  f = it.next();
  EXPECT_FALSE(it.isRestarted());
  EXPECT_EQ(f, b);
  EXPECT_EQ(it.usage(), ResvUsage::Write);
  f = it.next();
  EXPECT_EQ(f, c);
  EXPECT_EQ(it.usage(), ResvUsage::Kernel);
  EXPECT_EQ(it.next(), nullptr);
  // Signalling does not change the set, but the walk skips signalled fences.
  b->signal();
  std::vector<FencePtr> seen;
  r.forEachUnlocked(ResvUsage::Bookkeep, [&](const FencePtr& g, ResvUsage, bool restarted) {
    if (restarted) {
      seen.clear();
    }
    seen.push_back(g);
  });
  EXPECT_EQ(seen, (std::vector<FencePtr>{a, c}));
  a->signal();
  c->signal();
}

TEST(Resv, LockingThroughResv) {
  Resv r;
  WwAcquireCtx ctx(reservationWwClass());
  ASSERT_TRUE(r.lock(&ctx).ok());
  EXPECT_EQ(r.lock(&ctx).code(), EALREADY);
  r.assertHeld();
  EXPECT_EQ(r.mutex().ownerContext(), &ctx);
  std::thread([&] {
    EXPECT_FALSE(r.trylock());
    EXPECT_EQ(r.lockTimeout(nullptr, 5ms).code(), ETIMEDOUT);
  }).join();
  r.unlock();
  EXPECT_TRUE(r.trylock());
  r.unlock();
  ASSERT_TRUE(r.lockTimeout(nullptr, 0ns).ok());
  r.unlock();
}

TEST(Resv, BackOffProtocolAcrossTwoObjects) {
  Resv x;
  Resv y;
  WwAcquireCtx old(reservationWwClass());
  ASSERT_TRUE(x.lock(&old).ok());
  // `old` keeps x until the young context has died on it: no timing assumption.
  std::promise<int> died;
  std::thread t([&] {
    WwAcquireCtx young(reservationWwClass());
    ASSERT_TRUE(y.lock(&young).ok());
    auto r = x.lock(&young);
    died.set_value(r.code());
    if (!r.ok()) {
      y.unlock();
      x.lockSlow(young);  // waits for `old` to let go of x
    }
    ASSERT_TRUE(y.lock(&young).ok());
    EXPECT_EQ(young.held(), 2U);
    y.unlock();
    x.unlock();
  });
  EXPECT_EQ(died.get_future().get(), EDEADLK);
  x.unlock();
  t.join();
}

TEST(Resv, AddingInsideASignallingSectionDoesNotAllocateButLockingIsReported) {
  Resv r;
  auto f = Timeline::create("drv", "tl")->createFence();
  std::vector<SignallingReport> reports;
  auto old =
      setSignallingReportHandler([&](const SignallingReport& rep) { reports.push_back(rep); });
  ASSERT_TRUE(r.lock().ok());
  ASSERT_TRUE(r.reserveFencesLocked(1).ok());
  {
    FenceSignallingSection section(f.get());
    r.addFenceLocked(f, ResvUsage::Write);  // publishing a fence: may be inside the section
  }
  r.unlock();
  const auto afterAdd = reports.size();
  {
    FenceSignallingSection section(f.get());
    ASSERT_TRUE(r.lock().ok());  // a reservation lock inside: reported
    r.unlock();
  }
  setSignallingReportHandler(std::move(old));
  EXPECT_EQ(afterAdd, 0U);
  if (kSignallingChecks) {
    ASSERT_EQ(reports.size(), 1U);
    EXPECT_EQ(reports[0].violation, SignallingViolation::ResvLock);
    EXPECT_NE(reports[0].location.find("resv_test.cpp"), std::string::npos);
  } else {
    EXPECT_TRUE(reports.empty());
  }
  f->signal();
}

}  // namespace
}  // namespace zbuf
