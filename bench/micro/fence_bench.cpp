// Fence micro-benchmarks:
//  - BM_SignalToCallback: addCallback + signal, the callback running in the signaller (ns/op);
//  - BM_SignalToWaiterWake: signal -> the return of Fence::wait() in a sleeping thread;
//  - BM_FutexWake: the same hand-off with a raw futex: the machine's floor for the above.
// The wake benchmarks report p50 and p99 in ns as counters (wake_p50_ns, wake_p99_ns); the
// waiter is put to sleep (30 us of quiet) before each wake, so the figure includes the
// scheduler's wake-up of a sleeping thread, as a pipeline stage waiting for a buffer sees it.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "zbuf/base/sys.h"
#include "zbuf/core/fence.h"
#include "zbuf/core/fence_array.h"

namespace zbuf {
namespace {

void BM_SignalToCallback(benchmark::State& state) {
  auto timeline = Timeline::create("bench", "cb");
  constexpr std::size_t kPool = 4096;
  std::vector<std::shared_ptr<TimelineFence>> pool;
  std::size_t next = kPool;
  std::uint64_t calls = 0;
  FenceCallbackFn cb([&](Fence&) { ++calls; });
  for (auto _ : state) {
    if (next == kPool) {
      state.PauseTiming();
      pool.clear();
      for (std::size_t i = 0; i < kPool; ++i) {
        pool.push_back(timeline->createFence());
      }
      next = 0;
      state.ResumeTiming();
    }
    Fence& f = *pool[next++];
    (void)f.addCallback(cb);
    f.signal();
  }
  benchmark::DoNotOptimize(calls);
  state.SetItemsProcessed(static_cast<std::int64_t>(calls));
}
BENCHMARK(BM_SignalToCallback);

void BM_ArrayOfFourSignalToCallback(benchmark::State& state) {
  auto timeline = Timeline::create("bench", "array");
  std::uint64_t calls = 0;
  FenceCallbackFn cb([&](Fence&) { ++calls; });
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<FencePtr> members;
    for (int i = 0; i < 4; ++i) {
      members.push_back(timeline->createFence());
    }
    auto array = *FenceArray::create(members, Timeline::allocateContexts(1), 1, false);
    state.ResumeTiming();
    (void)array->addCallback(cb);
    for (auto& m : members) {
      m->signal();
    }
  }
  benchmark::DoNotOptimize(calls);
}
BENCHMARK(BM_ArrayOfFourSignalToCallback);

// One sleeping waiter, woken once per iteration; the latency of each wake is recorded.
template <typename Arm, typename Wait, typename Wake>
void measureWake(benchmark::State& state, Arm arm, Wait wait, Wake wake) {
  std::atomic<std::uint64_t> go{0};
  std::atomic<std::uint64_t> armed{0};
  std::atomic<std::uint64_t> done{0};
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> wakeNs{0};
  std::thread waiter([&] {
    std::uint64_t seen = 0;
    for (;;) {
      std::uint64_t g;
      while ((g = go.load(std::memory_order_acquire)) == seen && !stop.load()) {
        std::this_thread::yield();  // 2 shared cores: do not starve the other side
      }
      if (stop.load()) {
        return;
      }
      seen = g;
      armed.store(g, std::memory_order_release);
      wait();
      wakeNs.store(sys::monotonicNs(), std::memory_order_relaxed);
      done.store(g, std::memory_order_release);
    }
  });
  std::vector<std::uint64_t> samples;
  samples.reserve(static_cast<std::size_t>(state.max_iterations));
  std::uint64_t gen = 0;
  for (auto _ : state) {
    state.PauseTiming();
    arm();
    ++gen;
    go.store(gen, std::memory_order_release);
    while (armed.load(std::memory_order_acquire) != gen) {
      std::this_thread::yield();
    }
    const std::uint64_t quietUntil = sys::monotonicNs() + 30'000;  // let it fall asleep
    while (sys::monotonicNs() < quietUntil) {
    }
    state.ResumeTiming();
    const std::uint64_t t0 = sys::monotonicNs();
    wake();
    while (done.load(std::memory_order_acquire) != gen) {
      std::this_thread::yield();
    }
    samples.push_back(wakeNs.load(std::memory_order_relaxed) - t0);
  }
  stop = true;
  waiter.join();
  std::sort(samples.begin(), samples.end());
  if (!samples.empty()) {
    state.counters["wake_p50_ns"] = static_cast<double>(samples[samples.size() / 2]);
    state.counters["wake_p99_ns"] = static_cast<double>(samples[samples.size() * 99 / 100]);
  }
}

void BM_SignalToWaiterWake(benchmark::State& state) {
  auto timeline = Timeline::create("bench", "wake");
  std::shared_ptr<TimelineFence> fence;
  measureWake(
      state, [&] { fence = timeline->createFence(); }, [&] { (void)fence->wait(); },
      [&] { fence->signal(); });
}
BENCHMARK(BM_SignalToWaiterWake)->Iterations(500)->UseRealTime();

void BM_FutexWake(benchmark::State& state) {
  std::atomic<std::uint32_t> word{0};
  measureWake(
      state, [&] { word.store(0); },
      [&] {
        while (word.load(std::memory_order_acquire) == 0) {
          (void)sys::futexWait(word, 0, std::nullopt);
        }
      },
      [&] {
        word.store(1, std::memory_order_release);
        sys::futexWake(word, 1);
      });
}
BENCHMARK(BM_FutexWake)->Iterations(500)->UseRealTime();

}  // namespace
}  // namespace zbuf
