// The emulated IOMMU: a sorted map from IOVA to host range; translate finds the range that
// contains the first byte and checks that the whole access fits in it (accesses never span two
// ranges, like a segment's DMA never spans two IOVA mappings). A non-coherent device's range
// points at its cache lines and remembers the memory behind them.
#include "zbuf/core/iommu.h"

#include <fmt/format.h>

#include "zbuf/base/sys.h"

namespace zbuf {

Result<std::uint64_t> Iommu::map(std::span<std::byte> host, DmaDirection dir) {
  if (host.empty()) {
    return Error(EINVAL, "iommu_map", "empty host range");
  }
  const std::uint64_t page = sys::pageSize();
  const auto addr = reinterpret_cast<std::uintptr_t>(host.data());
  const std::uint64_t inPage = addr & (page - 1);
  const std::uint64_t span = (inPage + host.size() + page - 1) & ~(page - 1);
  const MutexLocker lock(mutex_);
  const std::uint64_t iova = next_ + inPage;
  next_ += span + page;  // one unmapped guard page after each range
  ranges_.emplace(iova, Range{host.data(), host.size(), dir});
  return iova;
}

Result<std::uint64_t> Iommu::mapCached(std::span<std::byte> lines, std::span<std::byte> memory,
                                       std::byte* clean, DmaDirection dir) {
  if (lines.size() != memory.size() || clean == nullptr) {
    return Error(EINVAL, "iommu_map",
                 fmt::format("cache lines ({} bytes) do not match the memory ({} bytes)",
                             lines.size(), memory.size()));
  }
  auto iova = map(lines, dir);
  if (!iova.ok()) {
    return iova;
  }
  const MutexLocker lock(mutex_);
  Range& r = ranges_.at(*iova);
  r.memory = memory.data();
  r.clean = clean;
  return iova;
}

Result<std::map<std::uint64_t, Iommu::Range>::const_iterator> Iommu::findLocked(
    std::uint64_t iova, std::uint64_t length) const {
  auto it = ranges_.upper_bound(iova);
  if (it == ranges_.begin()) {
    ++faults_;
    return Error(EFAULT, "iommu_translate",
                 fmt::format("IOMMU fault: IOVA {:#x} is unmapped", iova));
  }
  --it;
  const std::uint64_t offset = iova - it->first;
  const Range& r = it->second;
  if (offset >= r.length || length > r.length - offset) {
    ++faults_;
    return Error(EFAULT, "iommu_translate",
                 fmt::format("IOMMU fault: IOVA {:#x}+{:#x} runs outside the mapping {:#x}+{:#x}",
                             iova, length, it->first, r.length));
  }
  return std::map<std::uint64_t, Range>::const_iterator(it);
}

Result<Iommu::CachedRange> Iommu::cachedRange(std::uint64_t iova, std::uint64_t length) const {
  const MutexLocker lock(mutex_);
  ZBUF_ASSIGN_OR_RETURN(auto it, findLocked(iova, length));
  const Range& r = it->second;
  if (r.memory == nullptr) {
    return Error(EINVAL, "dma_sync_sg",
                 fmt::format("IOVA {:#x} is a coherent mapping: it has no cache", iova));
  }
  const std::uint64_t offset = iova - it->first;
  const auto n = static_cast<std::size_t>(length);
  return CachedRange{{r.host + offset, n}, {r.memory + offset, n}, {r.clean + offset, n}};
}

Result<void> Iommu::unmap(std::uint64_t iova) {
  const MutexLocker lock(mutex_);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  if (ranges_.erase(iova) == 0) {
    return Error(EINVAL, "iommu_unmap", fmt::format("IOVA {:#x} is not mapped", iova));
  }
  return {};
}

Result<std::span<std::byte>> Iommu::translate(std::uint64_t iova, std::uint64_t length,
                                              bool write) const {
  const MutexLocker lock(mutex_);
  ZBUF_ASSIGN_OR_RETURN(auto it, findLocked(iova, length));
  const std::uint64_t offset = iova - it->first;
  const Range& r = it->second;
  if (write && r.dir == DmaDirection::ToDevice) {
    ++faults_;
    return Error(
        EPERM, "iommu_translate",
        fmt::format("IOMMU fault: device write to IOVA {:#x}, mapped to-device (read only)", iova));
  }
  if (!write && r.dir == DmaDirection::FromDevice) {
    ++faults_;
    return Error(
        EPERM, "iommu_translate",
        fmt::format("IOMMU fault: device read of IOVA {:#x}, mapped from-device (write only)",
                    iova));
  }
  return std::span<std::byte>(r.host + offset, static_cast<std::size_t>(length));
}

std::size_t Iommu::mappedRanges() const {
  const MutexLocker lock(mutex_);
  return ranges_.size();
}

std::uint64_t Iommu::faults() const {
  const MutexLocker lock(mutex_);
  return faults_;
}

}  // namespace zbuf
