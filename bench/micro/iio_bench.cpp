// fileio versus DMABUF on the emulated ADC at unlimited sample rate: the IIO DMABUF cover
// letter's experiment (iio_rwdev -b 4096 [-B] cf-ad9361-lpc: fileio 116 MiB/s, DMABUF
// 475 MiB/s), for block sizes 16 KiB to 4 MiB, in
//  - benchmark mode: the hardware neither generates nor checks, the application does not look
//    at the data (iio_rwdev -B): what is measured is the cost of getting a block;
//  - data mode: the ADC writes the pattern into every block and the application checks every
//    byte.
// fileio: read() of one block per iteration (the device's ring of 4 blocks, memcpy out).
// DMABUF: 4 system-heap buffers attached; per iteration the application waits for the next
// one with the poll equivalent (POLLIN), brackets its access with SYNC START/END (READ),
// as libiio does, and enqueues it again.
// Counters: MiB/s (real time) and the application's CPU seconds per GiB moved (process CPU
// minus the emulated hardware threads: zbuf::cpu::split()). docs/iio.md has the figures and
// the command.
#include <benchmark/benchmark.h>
#include <poll.h>
#include <sys/mman.h>

#include <chrono>
#include <vector>

#include "zbuf/base/hw_thread.h"
#include "zbuf/devices/iio/iio_buffer_file.h"
#include "zbuf/devices/iio/iio_device.h"
#include "zbuf/heaps/system_heap.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/dma_buf.h"

namespace zbuf::iio {
namespace {

constexpr unsigned kBlocks = 4;
constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = kMiB * 1024.0;

std::shared_ptr<IioDevice> makeAdc(std::uint64_t block, dma::DataMode mode) {
  IioDeviceConfig config;
  config.name = "cf-ad9361-lpc";
  config.mode = mode;
  config.fileioBlocks = kBlocks;
  config.length = kBlocks * block / config.format.frameBytes();
  return std::move(IioDevice::create(config).value());
}

void report(benchmark::State& state, std::uint64_t bytes, cpu::Split before,
            std::uint64_t mismatches) {
  const cpu::Split after = cpu::split();
  const double app = std::chrono::duration<double>(after.application - before.application).count();
  const double hw = std::chrono::duration<double>(after.hardware - before.hardware).count();
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["MiB/s"] =
      benchmark::Counter(static_cast<double>(bytes) / kMiB, benchmark::Counter::kIsRate);
  state.counters["appCpuS/GiB"] = app / (static_cast<double>(bytes) / kGiB);
  state.counters["hwCpuS/GiB"] = hw / (static_cast<double>(bytes) / kGiB);
  if (mismatches != 0) {
    state.SkipWithError("pattern mismatch");
  }
}

void BM_Fileio(benchmark::State& state, dma::DataMode mode) {
  const auto block = static_cast<std::uint64_t>(state.range(0));
  auto adc = makeAdc(block, mode);
  auto file = std::move(adc->openBuffer(0).value());
  PatternChecker checker(adc->format(), PatternKind::Ramp);
  std::vector<std::byte> out(block);
  if (!file->buffer().enable().ok()) {
    state.SkipWithError("enable failed");
    return;
  }
  std::uint64_t offset = 0;
  std::uint64_t mismatches = 0;
  const cpu::Split before = cpu::split();
  for (auto _ : state) {
    std::uint64_t got = 0;
    while (got < block) {
      auto r = file->read(std::span(out).subspan(got));
      if (!r.ok()) {
        state.SkipWithError("read failed");
        return;
      }
      got += *r;
    }
    if (mode == dma::DataMode::Data) {
      mismatches += checker.countMismatches(out, offset);
    }
    benchmark::DoNotOptimize(out.data());
    offset += block;
  }
  report(state, offset, before, mismatches);
  file->buffer().disable();
}

void BM_Dmabuf(benchmark::State& state, dma::DataMode mode) {
  const auto block = static_cast<std::uint64_t>(state.range(0));
  auto adc = makeAdc(block, mode);
  auto file = std::move(adc->openBuffer(0).value());
  PatternChecker checker(adc->format(), PatternKind::Ramp);
  std::vector<BufferPtr> bufs;
  std::vector<sys::Mapping> maps;
  for (unsigned i = 0; i < kBlocks; ++i) {
    bufs.push_back(std::move(SystemHeap::instance()->allocate(block).value()));
    maps.push_back(
        std::move(bufs.back()->mmap(0, block, PROT_READ | PROT_WRITE, MAP_SHARED).value()));
    if (!file->attach(bufs.back()).ok()) {
      state.SkipWithError("attach failed");
      return;
    }
  }
  if (!file->buffer().enable().ok()) {
    state.SkipWithError("enable failed");
    return;
  }
  for (auto& b : bufs) {
    (void)file->enqueue(*b, block);
  }
  std::uint64_t offset = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t n = 0;
  const cpu::Split before = cpu::split();
  for (auto _ : state) {
    const unsigned i = n++ % kBlocks;
    const int fd = bufs[i]->fd().get();
    auto ready = uapi::pollBuffer(fd, POLLIN, std::chrono::milliseconds(-1));
    if (!ready.ok() || (*ready & POLLIN) == 0) {
      state.SkipWithError("poll failed");
      return;
    }
    (void)uapi::sync(fd, uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRead);
    if (mode == dma::DataMode::Data) {
      mismatches += checker.countMismatches(maps[i].bytes(), offset);
    }
    (void)uapi::sync(fd, uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRead);
    if (!file->enqueue(*bufs[i], block).ok()) {
      state.SkipWithError("enqueue failed");
      return;
    }
    offset += block;
  }
  report(state, offset, before, mismatches);
  file->buffer().disable();
}

void sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t kib : {16, 64, 256, 1024, 4096}) {
    b->Arg(kib * 1024);
  }
  b->UseRealTime()->MinTime(0.2)->Unit(benchmark::kMicrosecond);
}

BENCHMARK_CAPTURE(BM_Fileio, benchmark, dma::DataMode::Benchmark)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Dmabuf, benchmark, dma::DataMode::Benchmark)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Fileio, data, dma::DataMode::Data)->Apply(sizes);
BENCHMARK_CAPTURE(BM_Dmabuf, data, dma::DataMode::Data)->Apply(sizes);

}  // namespace
}  // namespace zbuf::iio
