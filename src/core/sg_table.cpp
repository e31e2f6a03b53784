// Scatter-gather tables: merging page runs into segments and mapping them into a device's
// emulated IOMMU. The cost of a mapping is one IOMMU range per segment, so it grows with the
// segment count, as dma_map_sg's does with the number of entries.
#include "zbuf/core/sg_table.h"

#include <fmt/format.h>

#include <atomic>

#include "zbuf/core/device.h"

namespace zbuf {

const char* toString(DmaDirection dir) noexcept {
  switch (dir) {
    case DmaDirection::Bidirectional:
      return "bidirectional";
    case DmaDirection::ToDevice:
      return "to-device";
    case DmaDirection::FromDevice:
      return "from-device";
  }
  return "?";
}

std::uint64_t SgTable::totalLength() const noexcept {
  std::uint64_t total = 0;
  for (const SgSegment& s : segments_) {
    total += s.length;
  }
  return total;
}

namespace {

// Calls emit(host, length) for every merged segment.
template <typename F>
void forEachSegment(std::span<const PageRun> runs, std::uint64_t maxSegmentSize, F&& emit) {
  std::byte* host = nullptr;
  std::uint64_t phys = 0;
  std::uint64_t length = 0;
  for (const PageRun& run : runs) {
    std::uint64_t offset = 0;
    while (offset < run.length) {
      std::byte* h = run.host + offset;
      const std::uint64_t p = run.physAddress + offset;
      const std::uint64_t remaining = run.length - offset;
      const bool adjacent = length > 0 && host + length == h && phys + length == p;
      if (adjacent && length < maxSegmentSize) {
        const std::uint64_t take = std::min(remaining, maxSegmentSize - length);
        length += take;
        offset += take;
        continue;
      }
      if (length > 0) {
        emit(host, length);
      }
      host = h;
      phys = p;
      length = std::min(remaining, maxSegmentSize);
      offset += length;
    }
  }
  if (length > 0) {
    emit(host, length);
  }
}

}  // namespace

std::uint64_t reservePhysical(std::uint64_t bytes, std::uint64_t align) noexcept {
  static std::atomic<std::uint64_t> next{1ULL << 32};
  if (align == 0) {
    align = 1;
  }
  std::uint64_t cur = next.load();
  for (;;) {
    const std::uint64_t base = (cur + align - 1) / align * align;
    if (next.compare_exchange_weak(cur, base + bytes)) {
      return base;
    }
  }
}

std::vector<PageRun> scatteredPageRuns(std::span<std::byte> host, std::uint64_t pageSize,
                                       std::uint64_t physBase) {
  std::vector<PageRun> runs;
  runs.reserve((host.size() + pageSize - 1) / pageSize);
  for (std::uint64_t off = 0, i = 0; off < host.size(); off += pageSize, ++i) {
    runs.push_back({host.data() + off, std::min<std::uint64_t>(pageSize, host.size() - off),
                    physBase + 2 * i * pageSize});
  }
  return runs;
}

std::size_t countSegments(std::span<const PageRun> runs, std::uint64_t maxSegmentSize) noexcept {
  std::size_t n = 0;
  forEachSegment(runs, maxSegmentSize == 0 ? 1 : maxSegmentSize,
                 [&](std::byte*, std::uint64_t) { ++n; });
  return n;
}

Result<SgTable> mapPageRuns(Device& device, std::span<const PageRun> runs, DmaDirection dir) {
  if (runs.empty()) {
    return Error(EINVAL, "dma_map_sgtable",
                 fmt::format("device {}: nothing to map (no pages)", device.name()));
  }
  for (const PageRun& run : runs) {
    if (run.length == 0 || run.physAddress + run.length - 1 > device.dmaMask() ||
        run.physAddress + run.length - 1 < run.physAddress) {
      return Error(EINVAL, "dma_map_sgtable",
                   fmt::format("device {}: memory at {:#x}+{:#x} is beyond its DMA mask {:#x}; "
                               "DMA-BUF memory is never bounce-buffered",
                               device.name(), run.physAddress, run.length, device.dmaMask()));
    }
  }
  const std::uint64_t maxSeg = device.maxSegmentSize() == 0 ? 1 : device.maxSegmentSize();
  if (!device.scatterGather()) {
    const std::size_t n = countSegments(runs, maxSeg);
    if (n > 1) {
      return Error(EINVAL, "dma_map_sgtable",
                   fmt::format("device {} takes one contiguous segment, the buffer needs {}",
                               device.name(), n));
    }
  }
  std::vector<SgSegment> segments;
  segments.reserve(countSegments(runs, maxSeg));
  Result<void> failure;
  forEachSegment(runs, maxSeg, [&](std::byte* host, std::uint64_t length) {
    if (!failure.ok()) {
      return;
    }
    auto iova = device.iommu().map({host, static_cast<std::size_t>(length)}, dir);
    if (!iova.ok()) {
      failure = std::move(iova).error();
      return;
    }
    segments.push_back({*iova, length});
  });
  SgTable table(std::move(segments), dir);
  if (!failure.ok()) {
    unmapSgTable(device, table);
    return std::move(failure).error();
  }
  return table;
}

void unmapSgTable(Device& device, SgTable& table) noexcept {
  for (const SgSegment& s : table.segments()) {
    (void)device.iommu().unmap(s.dmaAddress);
  }
  table.clear();
}

}  // namespace zbuf
