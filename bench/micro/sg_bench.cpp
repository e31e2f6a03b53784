// Scatter-gather cost against buffer size, 4 KiB pages against 2 MiB pages:
//  - BM_MapUnmap: segment count and the cost of map + unmap of an attachment (one IOMMU range
//    per segment), for a device that takes segments up to 4 GiB (dma_set_max_seg_size(UINT_MAX)
//    as most scatter-gather DMA engines do);
//  - BM_CpuAccess: begin + end CPU access while a non-coherent device has the buffer mapped
//    (the heap walks every page run, like dma_sync_sg_for_cpu/device walk every entry).
// 4 KiB pages come from the system heap. 2 MiB pages come from the huge-page heap when the
// machine has enough free huge pages ("hugetlb" in the label); otherwise from
// HugePageHeap::allocateModelled ("modelled"): ordinary memory with a 2 MiB page list, through
// the same exporter and mapping code.
#include <benchmark/benchmark.h>

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

void sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t size = 64 << 10; size <= (256LL << 20); size *= 4) {
    b->Arg(size);
  }
}

BENCHMARK_CAPTURE(BM_MapUnmap, pages4k, false)->Apply(sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_MapUnmap, pages2m, true)->Apply(sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_CpuAccess, pages4k, false)->Apply(sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_CpuAccess, pages2m, true)->Apply(sizes)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace zbuf
