#include "zbuf/core/fence_unwrap.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "support/mock_fences.h"
#include "zbuf/core/fence_array.h"
#include "zbuf/core/fence_chain.h"

namespace zbuf {
namespace {

using testing_support::expectLeaves;
using testing_support::merge;
using testing_support::mockArray;
using testing_support::mockChain;
using testing_support::MockFence;
using testing_support::mockFence;

// --- merge rules beyond the selftest scenarios --------------------------------------------------

TEST(DmaFenceUnwrap, MergeOfSignalledFencesIsAPrivateStubWithTheLatestTimestamp) {
  auto f1 = mockFence();
  auto f2 = mockFence();
  f1->signalWithTimestamp(1000);
  f2->signalWithTimestamp(5000);
  auto m = merge({f1, f2});
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->isSignaledFlag());
  EXPECT_NE(m, Fence::stub());
  EXPECT_EQ(m->context(), 0U);
  EXPECT_EQ(m->driverName(), "stub");
  EXPECT_EQ(m->timestampNs(), 5000U);
}

TEST(DmaFenceUnwrap, MergeDropsSignalledAndReturnsTheOnlyPendingFence) {
  auto f1 = mockFence();
  auto f2 = mockFence();
  f1->signal();
  EXPECT_EQ(merge({f1, f2}), f2);
  f2->signal();
}

TEST(DmaFenceUnwrap, MergedArrayHasFreshContextAndSeqnoOne) {
  auto f1 = mockFence();
  auto f2 = mockFence();
  auto m = merge({f1, f2});
  ASSERT_TRUE(FenceArray::isArray(*m));
  EXPECT_EQ(m->seqno(), 1U);
  EXPECT_GT(m->context(), f2->context());
  EXPECT_FALSE(FenceArray::from(m)->signalOnAny());
  f1->signal();
  f2->signal();
}

TEST(DmaFenceUnwrap, MergeRefusesNull) {
  const FencePtr fences[] = {mockFence(), nullptr};
  EXPECT_EQ(mergeFences(fences).code(), EINVAL);
  fences[0]->signal();
}

TEST(DmaFenceUnwrap, UnwrapSkipsSignalledChainLinks) {
  auto f1 = mockFence();
  auto f2 = mockFence();
  auto c1 = mockChain(nullptr, f1);
  auto c2 = mockChain(c1, f2);
  f1->signal();
  expectLeaves(c2, {f2});
  f2->signal();
}

// --- more of the header's rules ------------------------------------------------------------------

TEST(FenceUnwrap, APlainFenceUnwrapsToItselfAndNullToNothing) {
  auto f = mockFence();
  FenceUnwrapCursor c;
  EXPECT_EQ(c.first(f), f);
  EXPECT_EQ(c.next(), nullptr);
  EXPECT_EQ(c.first(nullptr), nullptr);
  EXPECT_TRUE(unwrapFences(nullptr).empty());
  expectLeaves(f, {f});
  f->signal();
}

TEST(FenceUnwrap, ChainsAreVisitedFromTheHeadAndArraysMemberByMember) {
  auto f1 = mockFence();
  auto f2 = mockFence();
  auto f3 = mockFence();
  auto c1 = mockChain(nullptr, f1);
  auto c2 = mockChain(c1, mockArray({f2, f3}));
  expectLeaves(c2, {f2, f3, f1});
  // The cursor gives the same sequence.
  std::vector<FencePtr> seen;
  FenceUnwrapCursor c;
  for (FencePtr f = c.first(c2); f; f = c.next()) {
    seen.push_back(f);
  }
  EXPECT_EQ(seen, (std::vector<FencePtr>{f2, f3, f1}));
  for (auto& f : {f1, f2, f3}) {
    f->signal();
  }
}

TEST(FenceUnwrap, DuplicatesAreKept) {
  auto f = mockFence();
  auto c1 = mockChain(nullptr, f);
  auto c2 = mockChain(c1, f);
  expectLeaves(c2, {f, f});
  f->signal();
}

TEST(FenceUnwrap, AChainWithAPlainPrevEndsWithThatFence) {
  auto prev = mockFence();
  auto f = mockFence();
  expectLeaves(mockChain(prev, f), {f, prev});
  prev->signal();
  f->signal();
}

TEST(FenceUnwrap, MergeOfNothingIsASignalledPrivateStub) {
  auto r = mergeFences({});
  ASSERT_TRUE(r.ok());
  ASSERT_NE(*r, nullptr);
  EXPECT_TRUE((*r)->isSignaledFlag());
  EXPECT_NE(*r, Fence::stub());
}

TEST(FenceUnwrap, MergeOfOnePendingFenceIsThatFence) {
  auto f = mockFence();
  EXPECT_EQ(merge({f}), f);
  // Also when it comes wrapped, with signalled company.
  auto done = mockFence();
  done->signal();
  EXPECT_EQ(merge({mockArray({done, f})}), f);
  f->signal();
}

TEST(FenceUnwrap, MergeFlattensChainsAndDropsTheirSignalledLinks) {
  auto f1 = mockFence();
  auto f2 = mockFence();
  auto f3 = mockFence();
  auto chain = mockChain(mockChain(nullptr, f1), f2);
  f1->signal();
  auto m = merge({chain, f3});
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(FenceArray::isArray(*m));
  auto leaves = unwrapFences(m);
  std::vector<FencePtr> want{f2, f3};
  std::sort(leaves.begin(), leaves.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(leaves, want);
  f2->signal();
  EXPECT_FALSE(m->isSignaled()) << "signal on all";
  f3->signal();
  EXPECT_TRUE(m->isSignaled());
}

}  // namespace
}  // namespace zbuf
