// ctest-labels: concurrency
//
// Stress for reservation locking and lock-free readers:
//  - Writers lock random sets of reservation objects in random order with acquire contexts and
//    the EDEADLK back-off protocol, and add a fence to each object they hold, for a fixed
//    number of rounds. A watchdog bounds the run (a deadlock fails the test instead of hanging
//    it), and every fence added must be found afterwards (no lost fence).
//  - Readers walk and snapshot objects without the lock while writers add and signal; every
//    snapshot must be one the object really had.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "zbuf/core/resv.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;

// Runs `threads` bodies and waits for all of them, at most `limit`: past it the process aborts
// with a message (a deadlock must fail the run, not hang CI).
void runBounded(std::vector<std::function<void()>> bodies, std::chrono::seconds limit) {
  std::mutex m;
  std::condition_variable cv;
  std::size_t finished = 0;
  std::vector<std::thread> threads;
  for (auto& body : bodies) {
    threads.emplace_back([&, body = std::move(body)] {
      body();
      const std::lock_guard lk(m);
      ++finished;
      cv.notify_all();
    });
  }
  {
    std::unique_lock lk(m);
    if (!cv.wait_for(lk, limit, [&] { return finished == bodies.size(); })) {
      std::fprintf(stderr, "resv stress: %zu of %zu threads still running after %llds: deadlock\n",
                   bodies.size() - finished, bodies.size(), static_cast<long long>(limit.count()));
      std::abort();
    }
  }
  for (auto& t : threads) {
    t.join();
  }
}

// A fence on a context of its own, so that adding it never replaces another unsignalled one.
FencePtr freshFence() {
  return Timeline::create("stress", "tl")->createFence();
}

struct LockAllStats {
  unsigned deaths = 0;
};

// Locks every object of `set` under `ctx` with the back-off protocol. Returns with all held.
void lockAll(const std::vector<Resv*>& set, WwAcquireCtx& ctx, LockAllStats& stats) {
  Resv* contended = nullptr;
  std::vector<Resv*> held;
  for (;;) {
    held.clear();
    if (contended != nullptr) {
      contended->lockSlow(ctx);
      held.push_back(contended);
    }
    Resv* died = nullptr;
    for (Resv* r : set) {
      if (r == contended) {
        continue;
      }
      auto res = r->lock(&ctx);
      if (res.code() == EDEADLK) {
        died = r;
        break;
      }
      ASSERT_TRUE(res.ok()) << res.error().describe();
      held.push_back(r);
    }
    if (died == nullptr) {
      return;
    }
    ++stats.deaths;
    for (Resv* r : held) {
      r->unlock();
    }
    ASSERT_EQ(ctx.held(), 0U);
    contended = died;
  }
}

TEST(ResvStress, WaitDieLockingOfRandomSetsLosesNoFence) {
  constexpr int kObjects = 8;
  constexpr int kThreads = 4;
  constexpr int kRounds = 250;
  std::vector<std::unique_ptr<Resv>> objects;
  for (int i = 0; i < kObjects; ++i) {
    objects.push_back(std::make_unique<Resv>());
  }
  // Per object, the fences added to it (guarded by that object's lock).
  std::vector<std::vector<FencePtr>> added(kObjects);
  std::atomic<unsigned> deaths{0};
  std::atomic<unsigned> adds{0};

  std::vector<std::function<void()>> bodies;
  for (int t = 0; t < kThreads; ++t) {
    bodies.emplace_back([&, t] {
      std::mt19937 rng(1234 + t);
      std::vector<int> order(kObjects);
      std::iota(order.begin(), order.end(), 0);
      LockAllStats stats;
      for (int round = 0; round < kRounds; ++round) {
        std::shuffle(order.begin(), order.end(), rng);
        const int count = 2 + static_cast<int>(rng() % 4);  // 2..5 objects, random order
        std::vector<Resv*> set;
        for (int i = 0; i < count; ++i) {
          set.push_back(objects[order[i]].get());
        }
        WwAcquireCtx ctx(reservationWwClass());
        lockAll(set, ctx, stats);
        ctx.done();
        for (int i = 0; i < count; ++i) {
          Resv& r = *objects[order[i]];
          ASSERT_TRUE(r.reserveFencesLocked(1).ok());
          FencePtr f = freshFence();
          r.addFenceLocked(f, static_cast<ResvUsage>(rng() % 4));
          added[order[i]].push_back(std::move(f));
          adds.fetch_add(1);
        }
        if (round % 8 == 0) {
          std::this_thread::yield();  // hold the set a little longer: more contention
        }
        for (Resv* r : set) {
          r->unlock();
        }
        ASSERT_EQ(ctx.held(), 0U);
      }
      deaths.fetch_add(stats.deaths);
    });
  }
  runBounded(std::move(bodies), 60s);

  unsigned seen = 0;
  for (int i = 0; i < kObjects; ++i) {
    // Nothing was signalled and every fence has its own context: nothing was replaced.
    const auto entries = objects[i]->entries(ResvUsage::Bookkeep);
    ASSERT_EQ(entries.size(), added[i].size()) << "object " << i;
    std::set<const Fence*> present;
    for (const auto& e : entries) {
      present.insert(e.fence.get());
    }
    for (const auto& f : added[i]) {
      EXPECT_TRUE(present.count(f.get()) == 1) << "lost fence on object " << i;
    }
    seen += static_cast<unsigned>(entries.size());
    for (const auto& f : added[i]) {
      f->signal();
    }
    EXPECT_TRUE(objects[i]->testSignaled(ResvUsage::Bookkeep));
  }
  EXPECT_EQ(seen, adds.load());
  EXPECT_EQ(adds.load(), [&] {
    unsigned n = 0;
    for (const auto& a : added) {
      n += static_cast<unsigned>(a.size());
    }
    return n;
  }());
  RecordProperty("adds", static_cast<int>(adds.load()));
  RecordProperty("edeadlk_backoffs", static_cast<int>(deaths.load()));
  std::printf("adds %u, EDEADLK back-offs %u\n", adds.load(), deaths.load());
}

// Usage is a function of the context, so a reader can tell a torn (fence, usage) pair.
ResvUsage usageFor(const Fence& f) {
  return static_cast<ResvUsage>(f.context() % 4);
}

TEST(ResvStress, SnapshotsDuringAppendsArePrefixes) {
  // One writer appends (never replaces: nothing signals); a reader's snapshot must always be a
  // prefix of the final list, in order, with the right usages.
  constexpr int kFences = 600;
  Resv resv;
  std::vector<FencePtr> fences;
  for (int i = 0; i < kFences; ++i) {
    fences.push_back(freshFence());
  }
  std::atomic<bool> done{false};
  std::atomic<bool> readerStarted{false};
  std::atomic<unsigned> snapshots{0};
  std::atomic<unsigned> bad{0};
  runBounded({[&] {
                while (!readerStarted.load()) {
                  std::this_thread::yield();
                }
                for (std::size_t i = 0; i < fences.size(); ++i) {
                  if (i % 16 == 0) {
                    std::this_thread::yield();  // let the reader in on a busy machine
                  }
                  ASSERT_TRUE(resv.lock().ok());
                  ASSERT_TRUE(resv.reserveFencesLocked(1).ok());  // grows now and then
                  resv.addFenceLocked(fences[i], usageFor(*fences[i]));
                  resv.unlock();
                }
                done.store(true);
              },
              [&] {
                readerStarted.store(true);
                do {
                  const auto e = resv.entries(ResvUsage::Bookkeep);
                  for (std::size_t i = 0; i < e.size(); ++i) {
                    if (e[i].fence != fences[i] || e[i].usage != usageFor(*fences[i])) {
                      bad.fetch_add(1);
                    }
                  }
                  const auto g = resv.getFences(ResvUsage::Read);
                  std::size_t j = 0;
                  for (const auto& f : g) {
                    while (j < fences.size() && fences[j] != f) {
                      ++j;
                    }
                    if (j == fences.size() || usageFor(*f) > ResvUsage::Read) {
                      bad.fetch_add(1);
                    }
                  }
                  snapshots.fetch_add(1);
                } while (!done.load());
              }},
             60s);
  EXPECT_EQ(bad.load(), 0U);
  EXPECT_GT(snapshots.load(), 0U);
  EXPECT_EQ(resv.size(), static_cast<std::size_t>(kFences));
  for (const auto& f : fences) {
    f->signal();
  }
}

TEST(ResvStress, UnlockedReaderWhileWritersAddAndSignal) {
  constexpr int kWriters = 2;
  constexpr int kRoundsPerWriter = 1500;
  Resv resv;
  std::mutex allMutex;
  std::set<const Fence*> all;  // every fence ever added (guarded by allMutex)
  std::vector<FencePtr> keep;  // keeps them alive, so pointers stay unique
  std::atomic<int> writersLeft{kWriters};
  std::atomic<unsigned> walks{0};
  std::atomic<unsigned> restarts{0};
  std::atomic<unsigned> bad{0};
  std::atomic<bool> readerStarted{false};

  std::vector<std::function<void()>> bodies;
  for (int w = 0; w < kWriters; ++w) {
    bodies.emplace_back([&, w] {
      while (!readerStarted.load()) {
        std::this_thread::yield();
      }
      std::mt19937 rng(99 + w);
      std::vector<FencePtr> pending;
      for (int round = 0; round < kRoundsPerWriter; ++round) {
        FencePtr f = freshFence();
        {
          const std::lock_guard lk(allMutex);
          all.insert(f.get());
          keep.push_back(f);
        }
        ASSERT_TRUE(resv.lock().ok());
        ASSERT_TRUE(resv.reserveFencesLocked(1).ok());
        resv.addFenceLocked(f, usageFor(*f));  // replaces a signalled entry when there is one
        resv.unlock();
        pending.push_back(std::move(f));
        // Signal some of the pending fences, in random order.
        while (pending.size() > 48 || (!pending.empty() && rng() % 3 == 0)) {
          const std::size_t i = rng() % pending.size();
          pending[i]->signal();
          pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));
        }
      }
      for (auto& f : pending) {
        f->signal();
      }
      writersLeft.fetch_sub(1);
    });
  }
  bodies.emplace_back([&] {
    readerStarted.store(true);
    do {
      Resv::UnlockedIter it(resv, ResvUsage::Read);
      std::set<const Fence*> walk;
      for (FencePtr f = it.first(); f; f = it.next()) {
        if (it.isRestarted()) {
          if (!walk.empty()) {
            restarts.fetch_add(1);  // started over in the middle: drop what was gathered
          }
          walk.clear();
        }
        bool known = false;
        {
          const std::lock_guard lk(allMutex);
          known = all.count(f.get()) == 1;
        }
        if (!known || it.usage() != usageFor(*f) || it.usage() > ResvUsage::Read ||
            !walk.insert(f.get()).second) {
          bad.fetch_add(1);  // unknown fence, torn usage, usage above the query, or duplicate
        }
      }
      (void)resv.testSignaled(ResvUsage::Bookkeep);
      (void)resv.waitTimeout(ResvUsage::Kernel, 0ns);
      walks.fetch_add(1);
    } while (writersLeft.load() > 0);
  });
  runBounded(std::move(bodies), 60s);
  EXPECT_EQ(bad.load(), 0U);
  EXPECT_GT(walks.load(), 0U);
  EXPECT_TRUE(resv.testSignaled(ResvUsage::Bookkeep));
  auto w = resv.waitTimeout(ResvUsage::Bookkeep, 0ns);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*w, 1ns);
  // Signalled entries were reused: far fewer entries than fences added.
  EXPECT_LT(resv.size(), static_cast<std::size_t>(kWriters * kRoundsPerWriter));
  std::printf("walks %u, restarts with state dropped %u, final entries %zu\n", walks.load(),
              restarts.load(), resv.size());
}

}  // namespace
}  // namespace zbuf
