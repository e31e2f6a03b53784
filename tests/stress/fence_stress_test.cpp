// Stress: signalling races callback add/remove on other threads. Every callback either runs
// exactly once, or is removed (removeCallback() returned true) and never runs; never both,
// never twice. Bounded rounds, so the test ends on a loaded machine too.
// ctest-labels: concurrency
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <random>
#include <thread>
#include <vector>

#include "zbuf/core/fence.h"
#include "zbuf/core/fence_array.h"
#include "zbuf/core/fence_chain.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;

struct CountingCb : FenceCallback {
  CountingCb() : FenceCallback(&call) {}
  static void call(Fence& /*f*/, FenceCallback& cb) {
    static_cast<CountingCb&>(cb).runs.fetch_add(1, std::memory_order_relaxed);
  }
  std::atomic<int> runs{0};
  bool added = false;
  bool removed = false;
};

constexpr int kRounds = 1500;
constexpr int kAdders = 2;
constexpr int kCallbacksPerAdder = 16;

// Checks every node of one round; returns the number of broken promises.
//
// A signalled fence does not mean its callbacks have finished: the signalled bit is set before
// they run, and a chain signals on its worker thread, so wait() can return while that thread
// still walks the list. As with dma_fence_remove_callback, a node may be inspected and freed
// only once it was removed or removeCallback() returns false (the signaller runs callbacks
// under the fence lock, which removeCallback takes): that is what makes `runs` final here.
int checkNodes(Fence& fence, std::vector<CountingCb>& nodes) {
  int bad = 0;
  for (auto& n : nodes) {
    if (n.added && !n.removed) {
      bad += fence.removeCallback(n) ? 1 : 0;  // signalled: nothing can still be queued
    }
    const int runs = n.runs.load();
    if (!n.added) {
      bad += runs != 0 || n.removed ? 1 : 0;  // ENOENT: never runs, cannot be removed
    } else if (n.removed) {
      bad += runs != 0 ? 1 : 0;
    } else {
      bad += runs != 1 ? 1 : 0;
    }
  }
  return bad;
}

// Runs `rounds` rounds: makeFence() builds the round's fence, the adders add and remove
// callbacks on it, and signalRound() signals it, all at the same time.
template <typename MakeFence, typename SignalRound>
void race(MakeFence makeFence, SignalRound signalRound) {
  std::barrier sync(kAdders + 2);
  FencePtr fence;
  std::vector<std::vector<CountingCb>> nodes(kAdders);
  std::atomic<int> bad{0};
  std::atomic<long> removed{0};
  std::atomic<long> ran{0};

  auto adder = [&](int id) {
    std::mt19937 rng(id + 1);
    for (int round = 0; round < kRounds; ++round) {
      sync.arrive_and_wait();  // fence and nodes ready
      for (auto& n : nodes[id]) {
        n.added = fence->addCallback(n).ok();
        if (n.added && rng() % 2 == 0) {
          n.removed = fence->removeCallback(n);
        }
      }
      sync.arrive_and_wait();  // round done
    }
  };
  auto signaller = [&] {
    for (int round = 0; round < kRounds; ++round) {
      sync.arrive_and_wait();
      signalRound(*fence, round);
      sync.arrive_and_wait();
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kAdders; ++i) {
    threads.emplace_back(adder, i);
  }
  threads.emplace_back(signaller);
  for (int round = 0; round < kRounds; ++round) {
    fence = makeFence();
    for (auto& list : nodes) {
      list = std::vector<CountingCb>(kCallbacksPerAdder);
    }
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    // All three are done: the fence has signalled (the signaller waited for it), though its
    // callbacks may still be running on the chain worker; checkNodes() waits for them.
    for (auto& list : nodes) {
      bad += checkNodes(*fence, list);
      for (auto& n : list) {
        removed += n.removed ? 1 : 0;
        ran += n.runs.load();
      }
    }
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(bad.load(), 0);
  // The race must really have gone both ways at least once.
  EXPECT_GT(removed.load(), 0);
  EXPECT_GT(ran.load(), 0);
}

TEST(FenceStress, SignalRacesCallbackAddAndRemove) {
  auto timeline = Timeline::create("stress", "plain");
  race([&] { return FencePtr(timeline->createFence()); },
       [](Fence& f, int round) {
         for (int spin = 0; spin < round % 64; ++spin) {
           std::this_thread::yield();  // signal at a varying point of the adders' work
         }
         EXPECT_TRUE(f.signal());
       });
}

TEST(FenceStress, ArraySignalledByMembersOnTwoThreadsRacesCallbacks) {
  auto timeline = Timeline::create("stress", "members");
  std::vector<FencePtr> members;
  race(
      [&] {
        members = {timeline->createFence(), timeline->createFence()};
        auto a = FenceArray::create(members, Timeline::allocateContexts(1), 1, false);
        return FencePtr(*a);
      },
      [&](Fence& f, int round) {
        std::thread other([&] { members[round % 2]->signal(); });
        members[(round + 1) % 2]->signal();
        other.join();
        EXPECT_TRUE(f.isSignaled());  // by the last member, or found by polling
      });
}

TEST(FenceStress, ChainSignalRacesCallbacks) {
  auto timeline = Timeline::create("stress", "links");
  std::vector<FencePtr> links;
  race(
      [&] {
        links = {timeline->createFence(), timeline->createFence(), timeline->createFence()};
        FencePtr chain;
        for (std::size_t i = 0; i < links.size(); ++i) {
          chain = *FenceChain::create(chain, links[i], i + 1);
        }
        return chain;
      },
      [&](Fence& f, int round) {
        for (std::size_t i = 0; i < links.size(); ++i) {
          links[(i + round) % links.size()]->signal();
        }
        // The chain signals on its worker thread: wait for it (bounded).
        auto r = f.waitTimeout(5s);
        EXPECT_TRUE(r.ok() && r->count() > 0);
      });
}

}  // namespace
}  // namespace zbuf
