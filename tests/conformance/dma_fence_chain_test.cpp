// Mirrors drivers/dma-buf/st-dma-fence-chain.c: one test per kernel scenario, same name.
// ctest-labels: concurrency
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "support/thread_state.h"
#include "zbuf/core/fence_chain.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;

constexpr unsigned kChainSize = 4 << 10;  // CHAIN_SZ

class MockFence final : public Fence {
 public:
  MockFence() : Fence(0, 0) {}  // the selftest's mock fences all use context 0, seqno 0
  std::string_view driverName() const override { return "mock"; }
  std::string_view timelineName() const override { return "mock"; }
};

FencePtr mockChain(FencePtr prev, FencePtr fence, std::uint64_t seqno) {
  auto r = FenceChain::create(std::move(prev), std::move(fence), seqno);
  EXPECT_TRUE(r.ok());
  return *r;
}

std::uint64_t seqnoInc(unsigned i) {
  return i + 1;
}
std::uint64_t seqnoInc2(unsigned i) {
  return 2 * i + 2;
}

struct FenceChains {
  FenceChains(unsigned count, std::uint64_t (*seqnoFn)(unsigned)) {
    for (unsigned i = 0; i < count; ++i) {
      fences.push_back(std::make_shared<MockFence>());
      chains.push_back(mockChain(tail, fences.back(), seqnoFn(i)));
      tail = chains.back();
    }
  }
  ~FenceChains() {
    for (auto& f : fences) {
      f->signal();
    }
  }
  std::vector<FencePtr> fences;
  std::vector<FencePtr> chains;
  FencePtr tail;
};

TEST(DmaFenceChain, sanitycheck) {
  auto f = std::make_shared<MockFence>();
  auto chain = mockChain(nullptr, f, 1);
  ASSERT_NE(chain, nullptr);
  f->signal();
  EXPECT_TRUE(chain->isSignaled());
}

TEST(DmaFenceChain, find_seqno) {
  FenceChains fc(64, seqnoInc);
  FencePtr fence = fc.tail;
  ASSERT_TRUE(FenceChain::findSeqno(fence, 0).ok());
  EXPECT_EQ(fence, fc.tail);  // 0 is a no-op

  for (unsigned i = 0; i < fc.chains.size(); ++i) {
    fence = fc.tail;
    ASSERT_TRUE(FenceChain::findSeqno(fence, i + 1).ok()) << "find_seqno(" << i + 1 << ")";
    ASSERT_EQ(fence, fc.chains[i]) << "incorrect fence reported by find_seqno(" << i + 1 << ")";

    ASSERT_TRUE(FenceChain::findSeqno(fence, i + 1).ok()) << "finding self";
    ASSERT_EQ(fence, fc.chains[i]) << "incorrect fence reported by find self";

    FencePtr future = fence;
    auto r = FenceChain::findSeqno(future, i + 2);
    ASSERT_FALSE(r.ok()) << "no error for the future fence " << i + 2;
    EXPECT_EQ(r.code(), EINVAL);

    ASSERT_TRUE(FenceChain::findSeqno(fence, i).ok()) << "error for the previous fence";
    if (i > 0) {
      ASSERT_EQ(fence, fc.chains[i - 1]);
    }
  }
}

TEST(DmaFenceChain, find_signaled) {
  FenceChains fc(2, seqnoInc);
  fc.fences[0]->signal();
  FencePtr fence = fc.tail;
  ASSERT_TRUE(FenceChain::findSeqno(fence, 1).ok());
  // Completed: either nothing to wait for, or the node itself.
  EXPECT_TRUE(fence == nullptr || fence == fc.chains[0]);
}

TEST(DmaFenceChain, find_out_of_order) {
  FenceChains fc(3, seqnoInc);
  fc.fences[1]->signal();
  FencePtr fence = fc.tail;
  ASSERT_TRUE(FenceChain::findSeqno(fence, 2).ok());
  // Point 2 waits for fence 1 too, which is pending: chain 1 is garbage-collected on the way.
  EXPECT_EQ(fence, fc.chains[0]);
}

TEST(DmaFenceChain, find_gap) {
  FenceChains fc(64, seqnoInc2);
  for (unsigned i = 0; i < fc.chains.size(); ++i) {
    FencePtr fence = fc.tail;
    ASSERT_TRUE(FenceChain::findSeqno(fence, 2 * i + 1).ok());
    ASSERT_EQ(fence, fc.chains[i]) << "find_seqno(" << 2 * i + 1 << ")";
    ASSERT_TRUE(FenceChain::findSeqno(fence, 2 * i + 2).ok());
    ASSERT_EQ(fence, fc.chains[i]) << "find self " << 2 * i + 2;
  }
}

TEST(DmaFenceChain, find_race) {
  FenceChains fc(kChainSize, seqnoInc);
  std::atomic<int> errors{0};
  auto body = [&](unsigned seed) {
    std::mt19937 rng(seed);
    for (int round = 0; round < 1000; ++round) {
      FencePtr fence = fc.tail;
      const auto seqno = static_cast<std::uint64_t>(rng() % fc.chains.size() + 1);
      if (!FenceChain::findSeqno(fence, seqno).ok()) {
        ++errors;
        return;
      }
      // We can only find ourselves if we are on the fence we were looking for.
      if (fence != nullptr && fence->seqno() == seqno &&
          !FenceChain::findSeqno(fence, seqno).ok()) {
        ++errors;
        return;
      }
      fc.fences[rng() % (fc.fences.size() - 1)]->signal();
    }
  };
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < 2; ++i) {
    threads.emplace_back(body, i + 1);
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(errors.load(), 0);
}

TEST(DmaFenceChain, signal_forward) {
  FenceChains fc(64, seqnoInc);
  for (unsigned i = 0; i < fc.chains.size(); ++i) {
    fc.fences[i]->signal();
    ASSERT_TRUE(fc.chains[i]->isSignaled()) << "chain[" << i << "] not signaled";
    if (i + 1 < fc.chains.size()) {
      ASSERT_FALSE(fc.chains[i + 1]->isSignaled()) << "chain[" << i + 1 << "] is signaled";
    }
  }
}

TEST(DmaFenceChain, signal_backward) {
  FenceChains fc(64, seqnoInc);
  for (unsigned i = fc.chains.size(); i-- > 0;) {
    fc.fences[i]->signal();
    if (i > 0) {
      ASSERT_FALSE(fc.chains[i]->isSignaled()) << "chain[" << i << "] is signaled";
    }
  }
  for (unsigned i = 0; i < fc.chains.size(); ++i) {
    ASSERT_TRUE(fc.chains[i]->isSignaled()) << "chain[" << i << "] was not signaled";
  }
}

// Waits on the tail from another thread while `signalAll` signals every fence.
template <typename SignalAll>
void waitWhileSignalling(FenceChains& fc, SignalAll signalAll) {
  Result<Fence::Duration> result = Fence::Duration::zero();
  testing_support::ThreadMark waiting;
  std::thread waiter([&] {
    waiting.mark();
    result = fc.tail->waitTimeout(10s);
  });
  // yield_to(tsk): the waiter has armed its callbacks once it sleeps.
  (void)waiting.waitUntilAsleep();
  signalAll();
  waiter.join();
  ASSERT_TRUE(result.ok());
  EXPECT_GT(result->count(), 0) << "the wait on the chain timed out";
  EXPECT_TRUE(fc.tail->isSignaledFlag());
}

TEST(DmaFenceChain, wait_forward) {
  FenceChains fc(kChainSize, seqnoInc);
  waitWhileSignalling(fc, [&] {
    for (auto& f : fc.fences) {
      f->signal();
    }
  });
}

TEST(DmaFenceChain, wait_backward) {
  FenceChains fc(kChainSize, seqnoInc);
  waitWhileSignalling(fc, [&] {
    for (auto it = fc.fences.rbegin(); it != fc.fences.rend(); ++it) {
      (*it)->signal();
    }
  });
}

TEST(DmaFenceChain, wait_random) {
  FenceChains fc(kChainSize, seqnoInc);
  std::vector<FencePtr> shuffled = fc.fences;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(42));
  waitWhileSignalling(fc, [&] {
    for (auto& f : shuffled) {
      f->signal();
    }
  });
}

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

}  // namespace
}  // namespace zbuf
