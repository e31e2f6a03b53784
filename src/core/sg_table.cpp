// Scatter-gather tables: merging page runs into segments and mapping them into a device's
// emulated IOMMU. The cost of a mapping is one IOMMU range per segment, so it grows with the
// segment count, as dma_map_sg's does with the number of entries.
#include "zbuf/core/sg_table.h"

#include <fmt/format.h>

#include <atomic>
#include <cstring>

#include "zbuf/base/log.h"
#include "zbuf/core/device.h"
#include "zbuf/core/device_cache.h"

namespace zbuf {

ZBUF_LOG_CATEGORY(SgTable);

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
  std::shared_ptr<DeviceCache> cache;
  if (!device.coherent()) {
    std::uint64_t total = 0;
    for (const PageRun& run : runs) {
      total += run.length;
    }
    ZBUF_ASSIGN_OR_RETURN(auto c, DeviceCache::create(total));
    cache = std::move(c);
  }
  std::vector<SgSegment> segments;
  segments.reserve(countSegments(runs, maxSeg));
  Result<void> failure;
  std::uint64_t offset = 0;  // of the segment in the mapping (and in the cache)
  forEachSegment(runs, maxSeg, [&](std::byte* host, std::uint64_t length) {
    if (!failure.ok()) {
      return;
    }
    const std::span<std::byte> memory(host, static_cast<std::size_t>(length));
    Result<std::uint64_t> iova = 0;
    if (cache) {
      const std::span<std::byte> lines = cache->lines(offset, length);
      const std::span<std::byte> clean = cache->cleanImage(offset, length);
      std::memcpy(lines.data(), host, lines.size());  // mapping fills the cache
      std::memcpy(clean.data(), host, clean.size());
      iova = device.iommu().mapCached(lines, memory, clean.data(), dir);
    } else {
      iova = device.iommu().map(memory, dir);
    }
    if (!iova.ok()) {
      failure = std::move(iova).error();
      return;
    }
    segments.push_back({*iova, length});
    offset += length;
  });
  SgTable table(std::move(segments), dir, std::move(cache));
  if (!failure.ok()) {
    unmapSgTable(device, table);
    return std::move(failure).error();
  }
  return table;
}

namespace {

// Runs `walk(range)` on every segment of a cached table, with the cache's mutex held. Returns
// the lines the walks copied.
template <typename F>
std::uint64_t walkCached(const Device& device, const SgTable& table, F&& walk) noexcept {
  const MutexLocker guard(table.cache()->mutex());
  std::uint64_t lines = 0;
  for (const SgSegment& s : table.segments()) {
    auto range = device.iommu().cachedRange(s.dmaAddress, s.length);
    if (!range.ok()) {
      log(LogSgTable, LogLevel::Warn, "device {}: sync of segment {:#x}+{:#x} skipped: {}",
          device.name(), s.dmaAddress, s.length, range.error().describe());
      continue;
    }
    lines += walk(*range);
    // Each entry's maintenance ends with a barrier (dma_sync_sg: a dsb per entry on arm64).
    table.cache()->barrier();
  }
  return lines;
}

}  // namespace

void syncSgTableForDevice(const Device& device, const SgTable& table,
                          DmaDirection /*dir*/) noexcept {
  if (!table.cache()) {
    return;  // coherent: nothing to maintain
  }
  const std::uint64_t lines = walkCached(device, table, [](const Iommu::CachedRange& r) {
    return DeviceCache::fill(r.lines, r.clean, r.memory);
  });
  table.cache()->countFill(lines);
}

void syncSgTableForCpu(const Device& device, const SgTable& table, DmaDirection dir) noexcept {
  if (!table.cache() || dir == DmaDirection::ToDevice ||
      table.direction() == DmaDirection::ToDevice) {
    return;  // coherent, or nothing the device can have written
  }
  const std::uint64_t lines = walkCached(device, table, [](const Iommu::CachedRange& r) {
    return DeviceCache::writeBack(r.lines, r.clean, r.memory);
  });
  table.cache()->countWriteBack(lines);
}

void unmapSgTable(Device& device, SgTable& table) noexcept {
  syncSgTableForCpu(device, table, table.direction());  // unmapping implies a sync for the CPU
  for (const SgSegment& s : table.segments()) {
    (void)device.iommu().unmap(s.dmaAddress);
  }
  table.clear();
}

}  // namespace zbuf
