// Mirrors drivers/dma-buf/st-dma-resv.c (the kernel's dma-resv selftest) as current kernels run
// it: every subtest once per usage class, KERNEL, WRITE, READ and BOOKKEEP.
//
// The selftest's fence is a bare dma_fence with driver and timeline "selftest", context 0 and
// seqno 0; here it is a fence of a "selftest" timeline.
#include <gtest/gtest.h>

#include <string>

#include "zbuf/core/resv.h"

namespace zbuf {
namespace {

class DmaResv : public testing::TestWithParam<ResvUsage> {
 protected:
  static FencePtr allocFence() { return Timeline::create("selftest", "selftest")->createFence(); }
  // dma_resv_lock, dma_resv_reserve_fences(1), dma_resv_add_fence: returns with the lock held.
  static void lockAndAdd(Resv& resv, const FencePtr& f, ResvUsage usage) {
    ASSERT_TRUE(resv.lock(nullptr).ok()) << "Resv locking failed";
    ASSERT_TRUE(resv.reserveFencesLocked(1).ok()) << "Resv shared slot allocation failed";
    resv.addFenceLocked(f, usage);
  }
};

// sanitycheck: a fence can be signalled and released; a reservation object can be locked
// without a context and unlocked.
TEST_P(DmaResv, sanitycheck) {
  {
    FencePtr f = allocFence();
    EXPECT_TRUE(f->signal());
  }
  Resv resv;
  auto r = resv.lock(nullptr);
  ASSERT_TRUE(r.ok()) << "Resv locking failed";
  resv.unlock();
}

// test_signaling: after adding an unsignalled fence with `usage`, the object does not test as
// signalled for `usage`; once the fence signals, it does.
TEST_P(DmaResv, signaling) {
  const ResvUsage usage = GetParam();
  FencePtr f = allocFence();
  Resv resv;
  ASSERT_NO_FATAL_FAILURE(lockAndAdd(resv, f, usage));
  EXPECT_FALSE(resv.testSignaled(usage)) << "Resv unexpectedly signaled";
  f->signal();
  EXPECT_TRUE(resv.testSignaled(usage)) << "Resv not reporting signaled";
  resv.unlock();
}

// test_for_each: the locked walk over BOOKKEEP finds exactly the added fence, with its usage.
TEST_P(DmaResv, for_each) {
  const ResvUsage usage = GetParam();
  FencePtr f = allocFence();
  Resv resv;
  ASSERT_NO_FATAL_FAILURE(lockAndAdd(resv, f, usage));
  int found = 0;
  resv.forEachLocked(ResvUsage::Bookkeep, [&](const FencePtr& fence, ResvUsage fenceUsage) {
    ++found;
    EXPECT_EQ(found, 1) << "More than one fence found";
    EXPECT_EQ(fence, f) << "Unexpected fence";
    EXPECT_EQ(fenceUsage, usage) << "Unexpected fence usage";
  });
  EXPECT_EQ(found, 1) << "No fence found";
  f->signal();
  resv.unlock();
}

// test_for_each_unlocked: after the unlock, the unlocked walk over BOOKKEEP finds the fence
// with the restart flag set; the test then corrupts the cursor so that the next step must
// restart, and the walk must return the same fence again, flagged as restarted, and then end.
TEST_P(DmaResv, for_each_unlocked) {
  const ResvUsage usage = GetParam();
  FencePtr f = allocFence();
  Resv resv;
  ASSERT_NO_FATAL_FAILURE(lockAndAdd(resv, f, usage));
  resv.unlock();

  enum class State { NoneYet, RestartRequested, Done } state = State::NoneYet;
  Resv::UnlockedIter cursor(resv, ResvUsage::Bookkeep);
  for (FencePtr fence = cursor.first(); fence; fence = cursor.next()) {
    ASSERT_NE(state, State::Done) << "More than one fence found";
    ASSERT_TRUE(cursor.isRestarted()) << "No restart flag";
    ASSERT_EQ(fence, f) << "Unexpected fence";
    ASSERT_EQ(cursor.usage(), usage) << "Unexpected fence usage";
    if (state == State::NoneYet) {
      state = State::RestartRequested;
      cursor.forceRestart();  // the selftest's "cursor.fences = (void*)~0"
    } else {
      state = State::Done;
    }
  }
  EXPECT_EQ(state, State::Done) << "No fence found";
  f->signal();
}

// test_get_fences: the snapshot for `usage` is exactly the added fence.
TEST_P(DmaResv, get_fences) {
  const ResvUsage usage = GetParam();
  FencePtr f = allocFence();
  Resv resv;
  ASSERT_NO_FATAL_FAILURE(lockAndAdd(resv, f, usage));
  resv.unlock();
  const std::vector<FencePtr> fences = resv.getFences(usage);
  ASSERT_EQ(fences.size(), 1U) << "get_fences returned unexpected fence";
  EXPECT_EQ(fences[0], f) << "get_fences returned unexpected fence";
  f->signal();
}

INSTANTIATE_TEST_SUITE_P(Usage, DmaResv,
                         testing::Values(ResvUsage::Kernel, ResvUsage::Write, ResvUsage::Read,
                                         ResvUsage::Bookkeep),
                         [](const testing::TestParamInfo<ResvUsage>& info) {
                           return std::string(toString(info.param));
                         });

}  // namespace
}  // namespace zbuf
