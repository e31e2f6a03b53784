// Scatter-gather cost against buffer size, 4 KiB pages against 2 MiB pages:
//  - BM_MapUnmap: segment count and the cost of map + unmap of an attachment (one IOMMU range
//    per segment), for a device that takes segments up to 4 GiB (dma_set_max_seg_size(UINT_MAX)
//    as most scatter-gather DMA engines do);
//  - BM_CpuAccess: begin + end CPU access while a non-coherent device has the buffer mapped
//    and nothing changed (the heap syncs the device's table: a walk of every segment's lines,
//    like dma_sync_sg_for_cpu/device walk every entry);
// and the sync cost of a non-coherent device (docs/coherency.md), on a from-device mapping:
//  - BM_DeviceBlockCycle: one block of an ADC-like device, as the IIO emulation brackets it:
//    begin device access (fill: the memory did not change), the device rewrites every line
//    (timing paused), end device access (write back every line);
//  - BM_SyncUnchanged: begin + end device access when neither side changed anything: the
//    walk alone (one IOMMU look-up, a compare pass and a barrier per segment);
//  - BM_CpuBracket: SYNC START|READ + END|READ after the device rewrote the block (write back
//    on START, a fill walk on END), through the heap's every-mapping sync.
// 4 KiB pages come from the system heap. 2 MiB pages come from the huge-page heap when the
// machine has enough free huge pages ("hugetlb" in the label); otherwise from
// HugePageHeap::allocateModelled ("modelled"): ordinary memory with a 2 MiB page list, through
// the same exporter and mapping code.
#include <benchmark/benchmark.h>

#include <cstring>

#include "zbuf/core/buffer.h"
#include "zbuf/heaps/huge_page_heap.h"
#include "zbuf/heaps/system_heap.h"

namespace zbuf {
namespace {

struct Setup {
  BufferPtr buffer;
  AttachmentPtr attachment;
  const char* label = "";
};

Setup makeBuffer(benchmark::State& state, bool hugePages, bool coherent) {
  const auto size = static_cast<std::uint64_t>(state.range(0));
  Setup s;
  Result<BufferPtr> b = Error(EINVAL, "bench");
  if (!hugePages) {
    b = SystemHeap::instance()->allocate(size);
    s.label = "4KiB system";
  } else if (HugePageHeap::freeHugePages() * HugePageHeap::kPageSize >= size) {
    b = HugePageHeap::instance()->allocate(size);
    s.label = "2MiB hugetlb";
  } else {
    b = HugePageHeap::instance()->allocateModelled(size);
    s.label = "2MiB modelled";
  }
  if (!b.ok()) {
    state.SkipWithError(b.error().describe().c_str());
    return s;
  }
  s.buffer = std::move(*b);
  auto dev =
      Device::create({.name = "bench", .coherent = coherent, .maxSegmentSize = 0xffffffffULL});
  auto a = s.buffer->attach(dev);
  if (!a.ok()) {
    state.SkipWithError(a.error().describe().c_str());
    return s;
  }
  s.attachment = std::move(*a);
  return s;
}

void BM_MapUnmap(benchmark::State& state, bool hugePages) {
  Setup s = makeBuffer(state, hugePages, true);
  if (!s.attachment) {
    return;
  }
  std::size_t segments = 0;
  for (auto _ : state) {
    auto t = s.attachment->mapUnlocked(DmaDirection::Bidirectional);
    if (!t.ok()) {
      state.SkipWithError(t.error().describe().c_str());
      break;
    }
    segments = t->segmentCount();
    s.attachment->unmapUnlocked(*t, DmaDirection::Bidirectional);
  }
  state.counters["segments"] = static_cast<double>(segments);
  state.counters["ns_per_segment"] = benchmark::Counter(
      static_cast<double>(segments),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetLabel(s.label);
}

void BM_CpuAccess(benchmark::State& state, bool hugePages) {
  Setup s = makeBuffer(state, hugePages, /*coherent=*/false);
  if (!s.attachment) {
    return;
  }
  auto mapped = MappedAttachment::create(s.attachment, DmaDirection::Bidirectional);
  if (!mapped.ok()) {
    state.SkipWithError(mapped.error().describe().c_str());
    return;
  }
  for (auto _ : state) {
    if (!s.buffer->beginCpuAccess(DmaDirection::Bidirectional).ok() ||
        !s.buffer->endCpuAccess(DmaDirection::Bidirectional).ok()) {
      state.SkipWithError("cpu access failed");
      break;
    }
  }
  state.counters["segments"] = static_cast<double>(mapped->table().segmentCount());
  state.SetLabel(s.label);
}

// A buffer mapped from-device for a non-coherent device (unmapped on scope exit).
struct Mapped {
  Setup setup;
  SgTable table;
  std::shared_ptr<Device> device;
  AttachmentPtr attachment;
  BufferPtr buffer;
  const char* label = "";
  Mapped() = default;
  Mapped(const Mapped&) = delete;
  Mapped& operator=(const Mapped&) = delete;
  Mapped(Mapped&&) = default;
  Mapped& operator=(Mapped&&) = default;
  ~Mapped() {
    if (attachment && !table.empty()) {
      attachment->unmapUnlocked(table, table.direction());
    }
  }
};

Mapped makeMapped(benchmark::State& state, bool hugePages) {
  Mapped m;
  m.setup = makeBuffer(state, hugePages, /*coherent=*/false);
  if (!m.setup.attachment) {
    return m;
  }
  auto t = m.setup.attachment->mapUnlocked(DmaDirection::FromDevice);
  if (!t.ok()) {
    state.SkipWithError(t.error().describe().c_str());
    return m;
  }
  m.table = std::move(*t);
  m.attachment = m.setup.attachment;
  m.device = m.attachment->devicePtr();
  m.buffer = m.setup.buffer;
  m.label = m.setup.label;
  return m;
}

// The device rewrites every byte it sees (a new block), through its IOMMU.
void deviceWritesEverything(const Mapped& s, unsigned char value) {
  for (const SgSegment& seg : s.table.segments()) {
    auto host = s.device->iommu().translate(seg.dmaAddress, seg.length, true);
    if (host.ok()) {
      std::memset(host->data(), value, host->size());
    }
  }
}

void counters(benchmark::State& state, const Mapped& s) {
  const auto segments = static_cast<double>(s.table.segmentCount());
  state.counters["segments"] = segments;
  state.counters["ns_per_segment"] = benchmark::Counter(
      segments, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
  state.SetLabel(s.label);
}

void BM_DeviceBlockCycle(benchmark::State& state, bool hugePages) {
  Mapped s = makeMapped(state, hugePages);
  if (!s.attachment) {
    return;
  }
  unsigned char value = 0;
  for (auto _ : state) {
    if (!s.attachment->beginDeviceAccess(s.table, DmaDirection::FromDevice).ok()) {
      state.SkipWithError("begin device access failed");
      break;
    }
    state.PauseTiming();
    deviceWritesEverything(s, ++value);
    state.ResumeTiming();
    if (!s.attachment->endDeviceAccess(s.table, DmaDirection::FromDevice).ok()) {
      state.SkipWithError("end device access failed");
      break;
    }
  }
  counters(state, s);
}

void BM_SyncUnchanged(benchmark::State& state, bool hugePages) {
  Mapped s = makeMapped(state, hugePages);
  if (!s.attachment) {
    return;
  }
  for (auto _ : state) {
    if (!s.attachment->beginDeviceAccess(s.table, DmaDirection::FromDevice).ok() ||
        !s.attachment->endDeviceAccess(s.table, DmaDirection::FromDevice).ok()) {
      state.SkipWithError("device access failed");
      break;
    }
  }
  counters(state, s);
}

void BM_CpuBracket(benchmark::State& state, bool hugePages) {
  Mapped s = makeMapped(state, hugePages);
  if (!s.attachment) {
    return;
  }
  unsigned char value = 0;
  for (auto _ : state) {
    state.PauseTiming();
    deviceWritesEverything(s, ++value);
    state.ResumeTiming();
    if (!s.buffer->beginCpuAccess(DmaDirection::FromDevice).ok() ||
        !s.buffer->endCpuAccess(DmaDirection::FromDevice).ok()) {
      state.SkipWithError("cpu access failed");
      break;
    }
  }
  counters(state, s);
}

void sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t size = 64 << 10; size <= (256LL << 20); size *= 4) {
    b->Arg(size);
  }
}

BENCHMARK_CAPTURE(BM_MapUnmap, pages4k, false)->Apply(sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_MapUnmap, pages2m, true)->Apply(sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_CpuAccess, pages4k, false)->Apply(sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_CpuAccess, pages2m, true)->Apply(sizes)->Unit(benchmark::kMicrosecond);

// Up to 64 MiB: the sync benchmarks copy the buffer, and keep two more copies in the cache.
void syncSizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t size = 64 << 10; size <= (64LL << 20); size *= 4) {
    b->Arg(size);
  }
}

BENCHMARK_CAPTURE(BM_DeviceBlockCycle, pages4k, false)
    ->Apply(syncSizes)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_DeviceBlockCycle, pages2m, true)
    ->Apply(syncSizes)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_SyncUnchanged, pages4k, false)
    ->Apply(syncSizes)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_SyncUnchanged, pages2m, true)->Apply(syncSizes)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_CpuBracket, pages4k, false)->Apply(syncSizes)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_CpuBracket, pages2m, true)->Apply(syncSizes)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace zbuf
