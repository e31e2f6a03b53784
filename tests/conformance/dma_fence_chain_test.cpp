// Mirrors drivers/dma-buf/st-dma-fence-chain.c: one test per kernel scenario, same name.
// ctest-labels: concurrency
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "support/mock_fences.h"
#include "support/thread_state.h"
#include "zbuf/core/fence_chain.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;

constexpr unsigned kChainSize = 4 << 10;  // CHAIN_SZ

using testing_support::FenceChains;
using testing_support::mockChain;
using testing_support::MockFence;
using testing_support::seqnoInc;
std::uint64_t seqnoInc2(unsigned i) {
  return 2 * i + 2;
}

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

}  // namespace
}  // namespace zbuf
