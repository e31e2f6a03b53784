// Reservation object costs: adding a fence and testing for completion with 1, 16 and 256
// fences in the object, and wait-die locking of 8 objects in random order (lock all, unlock
// all, per iteration) by 1 and 2 threads. docs/locking.md has the figures and the command.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "zbuf/core/resv.h"

namespace zbuf {
namespace {

// An object holding `n` unsignalled fences of distinct contexts, the last one `own`.
struct Filled {
  explicit Filled(int n) {
    (void)resv.lock();
    (void)resv.reserveFencesLocked(static_cast<unsigned>(n));
    for (int i = 0; i < n - 1; ++i) {
      others.push_back(Timeline::create("bench", "other")->createFence());
      resv.addFenceLocked(others.back(), ResvUsage::Read);
    }
    resv.addFenceLocked(own, ResvUsage::Write);
    resv.unlock();
  }
  ~Filled() {
    own->signal();
    for (auto& f : others) {
      f->signal();
    }
  }
  Filled(const Filled&) = delete;
  Filled& operator=(const Filled&) = delete;

  Resv resv;
  std::vector<FencePtr> others;
  FencePtr own = Timeline::create("bench", "own")->createFence();
};

// lock, reserve one slot, add (re-adding `own`: it replaces its own entry after scanning the
// others, so the object keeps n fences), unlock.
void BM_ResvAdd(benchmark::State& state) {
  Filled obj(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    (void)obj.resv.lock();
    (void)obj.resv.reserveFencesLocked(1);
    obj.resv.addFenceLocked(obj.own, ResvUsage::Write);
    obj.resv.unlock();
  }
  state.counters["fences"] = static_cast<double>(obj.resv.size());
}
BENCHMARK(BM_ResvAdd)->Arg(1)->Arg(16)->Arg(256);

// testSignaled(BOOKKEEP) when every fence has signalled: the whole list is walked (the worst
// case; with a pending fence the walk stops at the first one).
void BM_ResvTestSignaled(benchmark::State& state) {
  Filled obj(static_cast<int>(state.range(0)));
  obj.own->signal();
  for (auto& f : obj.others) {
    f->signal();
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(obj.resv.testSignaled(ResvUsage::Bookkeep));
  }
}
BENCHMARK(BM_ResvTestSignaled)->Arg(1)->Arg(16)->Arg(256);

// getFences(BOOKKEEP) with every fence pending: a snapshot of n references.
void BM_ResvGetFences(benchmark::State& state) {
  Filled obj(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto v = obj.resv.getFences(ResvUsage::Bookkeep);
    benchmark::DoNotOptimize(v.data());
  }
}
BENCHMARK(BM_ResvGetFences)->Arg(1)->Arg(16)->Arg(256);

// Eight objects shared by the benchmark threads.
std::array<Resv, 8>& sharedObjects() {
  static std::array<Resv, 8> objects;
  return objects;
}

// Lock all 8 objects in a random order under one acquire context with the EDEADLK back-off
// protocol, then unlock all. Counter "backoffs": EDEADLK back-offs per round.
void BM_WwLock8Random(benchmark::State& state) {
  auto& objects = sharedObjects();
  std::mt19937 rng(static_cast<unsigned>(state.thread_index()) + 1U);
  std::array<Resv*, 8> order{};
  for (std::size_t i = 0; i < order.size(); ++i) {
    order[i] = &objects[i];
  }
  std::int64_t backoffs = 0;
  std::array<Resv*, 8> held{};
  for (auto _ : state) {
    std::shuffle(order.begin(), order.end(), rng);
    WwAcquireCtx ctx(reservationWwClass());
    Resv* contended = nullptr;
    std::size_t n = 0;
    for (bool retry = true; retry;) {
      retry = false;
      n = 0;
      if (contended != nullptr) {
        contended->lockSlow(ctx);
        held[n++] = contended;
      }
      for (Resv* r : order) {
        if (r == contended) {
          continue;
        }
        if (r->lock(&ctx).code() == EDEADLK) {
          for (std::size_t i = 0; i < n; ++i) {
            held[i]->unlock();
          }
          contended = r;
          retry = true;
          ++backoffs;
          break;
        }
        held[n++] = r;
      }
    }
    ctx.done();
    for (std::size_t i = 0; i < n; ++i) {
      held[i]->unlock();
    }
  }
  state.counters["backoffs"] =
      benchmark::Counter(static_cast<double>(backoffs), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_WwLock8Random)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace zbuf
