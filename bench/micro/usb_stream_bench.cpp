// IIO ADC -> USB IN endpoint -> host, fileio (two copies) versus zero-copy DMABUF, at unlimited
// link speed and at the USB 3 model, for block sizes 64 KiB .. 4 MiB: the experiment of the
// FunctionFS DMABUF cover letter (127 vs 274 MiB/s on a ZCU102). Also IIO -> application in
// benchmark mode at 1 MiB (the later 20x target). One benchmark iteration = one Pipeline run
// of a fixed byte count; the time is the run's own wall time.
//
// Counters: MiB/s (bytes that reached the host / wall time), app_cpu_s_per_GiB (process CPU
// minus the emulated hardware threads' CPU, per GiB), hw_cpu_s_per_GiB, mismatches, errors.
//
// Run: build/release/bench/bench_usb_stream_bench --benchmark_repetitions=5
//        --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include "zbuf/stream/pipeline.h"

namespace zbuf {
namespace {

void runStream(benchmark::State& state, StreamPath path, StreamMode mode, LinkSpeed link,
               bool benchmarkMode) {
  StreamConfig c;
  c.path = path;
  c.blockBytes = static_cast<std::uint64_t>(state.range(0));
  c.blocks = 4;
  c.link = link;
  c.benchmark = benchmarkMode;
  // Enough blocks for a stable figure, little enough to keep a run short.
  const std::uint64_t total = link == LinkSpeed::Usb3 ? (128ULL << 20) : (1ULL << 30);
  c.bytes = std::max<std::uint64_t>(total, 16 * c.blockBytes);
  auto pipeline = Pipeline::create(c);
  if (!pipeline.ok()) {
    state.SkipWithError(pipeline.error().describe().c_str());
    return;
  }
  double mib = 0;
  double app = 0;
  double hw = 0;
  double mismatches = 0;
  double errors = 0;
  for (auto _ : state) {
    auto r = pipeline->run(mode);
    if (!r.ok()) {
      state.SkipWithError(r.error().describe().c_str());
      return;
    }
    state.SetIterationTime(r->seconds);
    mib = r->mibPerS;
    app = r->appCpuSPerGib;
    hw = r->hwCpuSPerGib;
    mismatches = static_cast<double>(r->mismatches);
    errors = static_cast<double>(r->errors);
    state.SetBytesProcessed(state.bytes_processed() + static_cast<std::int64_t>(r->bytes));
  }
  state.counters["MiB/s"] = mib;
  state.counters["app_cpu_s_per_GiB"] = app;
  state.counters["hw_cpu_s_per_GiB"] = hw;
  state.counters["mismatches"] = mismatches;
  state.counters["errors"] = errors;
}

void blockSizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t kib : {64, 256, 1024, 4096}) {
    b->Arg(kib * 1024);
  }
  b->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);
}

void IioToUsbFileioUnlimited(benchmark::State& s) {
  runStream(s, StreamPath::IioToUsb, StreamMode::Fileio, LinkSpeed::Unlimited, false);
}
void IioToUsbDmabufUnlimited(benchmark::State& s) {
  runStream(s, StreamPath::IioToUsb, StreamMode::Dmabuf, LinkSpeed::Unlimited, false);
}
void IioToUsbFileioUsb3(benchmark::State& s) {
  runStream(s, StreamPath::IioToUsb, StreamMode::Fileio, LinkSpeed::Usb3, false);
}
void IioToUsbDmabufUsb3(benchmark::State& s) {
  runStream(s, StreamPath::IioToUsb, StreamMode::Dmabuf, LinkSpeed::Usb3, false);
}
void IioToAppFileioBenchmarkMode(benchmark::State& s) {
  runStream(s, StreamPath::IioToApp, StreamMode::Fileio, LinkSpeed::Unlimited, true);
}
void IioToAppDmabufBenchmarkMode(benchmark::State& s) {
  runStream(s, StreamPath::IioToApp, StreamMode::Dmabuf, LinkSpeed::Unlimited, true);
}

BENCHMARK(IioToUsbFileioUnlimited)->Apply(blockSizes);
BENCHMARK(IioToUsbDmabufUnlimited)->Apply(blockSizes);
BENCHMARK(IioToUsbFileioUsb3)->Apply(blockSizes);
BENCHMARK(IioToUsbDmabufUsb3)->Apply(blockSizes);
BENCHMARK(IioToAppFileioBenchmarkMode)
    ->Arg(1 << 20)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);
BENCHMARK(IioToAppDmabufBenchmarkMode)
    ->Arg(1 << 20)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

}  // namespace
}  // namespace zbuf
