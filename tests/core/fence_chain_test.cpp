// ctest-labels: concurrency
#include "zbuf/core/fence_chain.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <vector>

#include "support/mock_fences.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;

using testing_support::FenceChains;
using testing_support::mockChain;
using testing_support::MockFence;
using testing_support::seqnoInc;

// --- chain rules beyond the selftest scenarios ---------------------------------------------------

TEST(DmaFenceChain, NodeRulesContextSeqnoAndNames) {
  auto f1 = std::make_shared<MockFence>();
  auto f2 = std::make_shared<MockFence>();
  auto f3 = std::make_shared<MockFence>();
  auto c1 = FenceChain::from(mockChain(nullptr, f1, 5));
  EXPECT_EQ(c1->driverName(), "dma_fence_chain");
  EXPECT_EQ(c1->timelineName(), "unbound");
  EXPECT_TRUE(c1->seqno64());
  EXPECT_EQ(c1->seqno(), 5U);
  EXPECT_EQ(c1->prevSeqno(), 0U);
  EXPECT_NE(c1->context(), 0U);
  // Later seqno on a chain: same context, prevSeqno recorded.
  auto c2 = FenceChain::from(mockChain(c1, f2, 9));
  EXPECT_EQ(c2->context(), c1->context());
  EXPECT_EQ(c2->prevSeqno(), 5U);
  EXPECT_EQ(c2->prev(), c1);
  EXPECT_EQ(c2->fence(), f2);
  // Not later: fresh context, seqno = max(prev, requested).
  auto c3 = FenceChain::from(mockChain(c2, f3, 3));
  EXPECT_NE(c3->context(), c2->context());
  EXPECT_EQ(c3->seqno(), 9U);
  EXPECT_EQ(c3->prevSeqno(), 0U);
  // Prev not a chain: fresh context, the requested seqno as is.
  auto c4 = FenceChain::from(mockChain(f1, f2, 2));
  EXPECT_NE(c4->context(), c1->context());
  EXPECT_EQ(c4->seqno(), 2U);
  // 64-bit seqnos: no 32-bit wrap-around.
  auto big = FenceChain::from(mockChain(c2, f3, (1ULL << 32) + 1));
  EXPECT_EQ(big->context(), c2->context());
  EXPECT_TRUE(Fence::isLater(*big, *c2));
  for (auto& f : {f1, f2, f3}) {
    f->signal();
  }
}

TEST(DmaFenceChain, RefusesChainAsContainedFence) {
  auto f = std::make_shared<MockFence>();
  auto c1 = mockChain(nullptr, f, 1);
  auto r = FenceChain::create(nullptr, c1, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), EINVAL);
  EXPECT_EQ(FenceChain::create(nullptr, nullptr, 2).code(), EINVAL);
  f->signal();
}

TEST(DmaFenceChain, FindSeqnoRefusesNonChainAndFutureSeqno) {
  FencePtr plain = std::make_shared<MockFence>();
  auto r = FenceChain::findSeqno(plain, 1);
  EXPECT_EQ(r.code(), EINVAL);
  EXPECT_TRUE(FenceChain::findSeqno(plain, 0).ok());  // 0 is a no-op even for non-chains
  FenceChains fc(3, seqnoInc);
  FencePtr fence = fc.tail;
  EXPECT_EQ(FenceChain::findSeqno(fence, 4).code(), EINVAL);
  EXPECT_EQ(fence, fc.tail);
  plain->signal();
}

TEST(DmaFenceChain, CallbackRunsOnceWhenTheWholeChainSignals) {
  FenceChains fc(8, seqnoInc);
  std::atomic<int> calls{0};
  FenceCallbackFn cb([&](Fence&) { ++calls; });
  ASSERT_TRUE(fc.tail->addCallback(cb).ok());
  for (unsigned i = 0; i + 1 < fc.fences.size(); ++i) {
    fc.fences[i]->signal();
  }
  EXPECT_FALSE(fc.tail->isSignaled());
  fc.fences.back()->signal();
  ASSERT_TRUE(fc.tail->waitTimeout(5s).ok());
  EXPECT_TRUE(fc.tail->isSignaledFlag());
  // wait() may return once the signalled bit is set, while the chain worker still runs the
  // callbacks under the fence lock; removeCallback takes that lock (and reports whether ours
  // never ran).
  EXPECT_FALSE(fc.tail->removeCallback(cb));
  EXPECT_EQ(calls.load(), 1);
}

TEST(DmaFenceChain, ReleasingALongChainDoesNotRecurse) {
  std::vector<FencePtr> fences;
  FencePtr tail;
  for (unsigned i = 0; i < 50000; ++i) {
    fences.push_back(std::make_shared<MockFence>());
    tail = mockChain(tail, fences.back(), i + 1);
  }
  tail.reset();  // a recursive release would overflow the stack here
  for (auto& f : fences) {
    f->signal();
  }
}

// --- more of the header's rules ------------------------------------------------------------------

TEST(FenceChain, FromIsChainAndContained) {
  FencePtr plain = std::make_shared<MockFence>();
  FencePtr chain = mockChain(nullptr, plain, 1);
  EXPECT_TRUE(FenceChain::isChain(*chain));
  EXPECT_FALSE(FenceChain::isChain(*plain));
  EXPECT_EQ(FenceChain::from(plain), nullptr);
  EXPECT_EQ(FenceChain::from(*plain), nullptr);
  EXPECT_EQ(FenceChain::from(chain).get(), chain.get());
  const Fence& constChain = *chain;
  EXPECT_EQ(FenceChain::from(constChain), FenceChain::from(*chain));
  EXPECT_EQ(FenceChain::contained(chain), plain);
  EXPECT_EQ(FenceChain::contained(plain), plain);
  EXPECT_EQ(FenceChain::contained(nullptr), nullptr);
  plain->signal();
}

TEST(FenceChain, WalkCollectsSignalledLinks) {
  FenceChains fc(3, seqnoInc);
  FencePtr c1 = fc.chains[0];
  FencePtr c2 = fc.chains[1];
  FencePtr c3 = fc.chains[2];
  EXPECT_EQ(FenceChain::walk(c3), c2);
  EXPECT_EQ(FenceChain::walk(c1), nullptr) << "the end of the chain";
  EXPECT_EQ(FenceChain::walk(fc.fences[0]), nullptr) << "not a chain";
  EXPECT_EQ(FenceChain::walk(nullptr), nullptr);
  fc.fences[1]->signal();  // c2's fence
  EXPECT_EQ(FenceChain::walk(c3), c1) << "c2 signalled: skipped";
  EXPECT_EQ(FenceChain::from(c3)->prev(), c1) << "and unlinked";
  EXPECT_EQ(FenceChain::from(c2)->prev(), c1) << "c2 itself keeps its link";
  fc.fences[0]->signal();
  EXPECT_EQ(FenceChain::walk(c3), nullptr) << "everything before c3 signalled";
  EXPECT_EQ(FenceChain::from(c3)->prev(), nullptr);
}

TEST(FenceChain, ANodeSignalsWhenEveryFenceBackAlongTheChainHas) {
  auto f1 = std::make_shared<MockFence>();
  auto f2 = std::make_shared<MockFence>();
  FencePtr c1 = mockChain(nullptr, f1, 1);
  FencePtr c2 = mockChain(c1, f2, 2);
  f2->signal();
  EXPECT_FALSE(c2->isSignaled()) << "f1, further back, has not signalled";
  EXPECT_FALSE(c1->isSignaled());
  f1->signal();
  EXPECT_TRUE(c1->isSignaled());
  EXPECT_TRUE(c2->isSignaled());
}

TEST(FenceChain, APlainPrevIsPartOfTheChain) {
  auto prev = std::make_shared<MockFence>();
  auto f = std::make_shared<MockFence>();
  FencePtr c = mockChain(prev, f, 1);
  EXPECT_EQ(FenceChain::from(c)->prev(), prev);
  f->signal();
  EXPECT_FALSE(c->isSignaled()) << "the plain prev has not signalled";
  EXPECT_EQ(FenceChain::walk(c), prev);
  prev->signal();
  EXPECT_TRUE(c->isSignaled());
  EXPECT_EQ(FenceChain::walk(c), nullptr);
}

TEST(FenceChain, FindSeqnoZeroLeavesTheFence) {
  FenceChains fc(3, seqnoInc);
  FencePtr fence = fc.tail;
  ASSERT_TRUE(FenceChain::findSeqno(fence, 0).ok());
  EXPECT_EQ(fence, fc.tail);
  FencePtr null;
  EXPECT_TRUE(FenceChain::findSeqno(null, 0).ok());
  EXPECT_EQ(FenceChain::findSeqno(null, 1).code(), EINVAL);
}

TEST(FenceChain, FindSeqnoOfAllSignalledIsNull) {
  FenceChains fc(4, seqnoInc);
  for (unsigned i = 0; i < 3; ++i) {
    fc.fences[i]->signal();
  }
  FencePtr fence = fc.tail;
  ASSERT_TRUE(FenceChain::findSeqno(fence, 3).ok());
  EXPECT_EQ(fence, nullptr) << "seqnos 1..3 have signalled";
  fence = fc.tail;
  ASSERT_TRUE(FenceChain::findSeqno(fence, 4).ok());
  EXPECT_EQ(fence, fc.tail) << "seqno 4 still has to signal";
}

}  // namespace
}  // namespace zbuf
