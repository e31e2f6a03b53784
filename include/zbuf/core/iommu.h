// Iommu: a device's emulated IOMMU (device.h: every Device has its own): IOVA ranges mapped to
// host memory ranges.
//
// IOVAs are handed out page-granular and never reused while the IOMMU lives; each range is
// followed by an unmapped guard page, so an access that runs past a segment faults instead of
// reaching the next one. An IOVA keeps the host address's offset within its page.
// Thread-safety: thread-safe (mutex_ guards the ranges).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>

#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/core/sg_table.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class Iommu {
 public:
  static constexpr std::uint64_t kIovaBase = 1ULL << 32;

  Iommu() = default;
  Iommu(const Iommu&) = delete;
  Iommu& operator=(const Iommu&) = delete;
  ~Iommu() = default;

  // Maps `host` (one contiguous host range) and returns its IOVA. Page-granular. EINVAL for an
  // empty range.
  [[nodiscard]] Result<std::uint64_t> map(std::span<std::byte> host, DmaDirection dir);
  // Maps a non-coherent device's view of `memory`: translate() hands out `lines` (the device's
  // cache, same length as `memory`), and cachedRange() finds all three again for the syncs.
  // EINVAL for an empty range or lengths that differ.
  [[nodiscard]] Result<std::uint64_t> mapCached(std::span<std::byte> lines,
                                                std::span<std::byte> memory, std::byte* clean,
                                                DmaDirection dir);
  struct CachedRange {
    std::span<std::byte> lines;   // what the device sees
    std::span<std::byte> memory;  // what the CPU sees
    std::span<std::byte> clean;   // the lines' clean image
  };
  // The cached range [iova, iova + length) (no direction check: this is cache maintenance,
  // not a device access). EFAULT if any byte is unmapped, EINVAL if the range is not cached.
  [[nodiscard]] Result<CachedRange> cachedRange(std::uint64_t iova, std::uint64_t length) const;
  // Unmaps the range that starts at `iova` (as returned by map). EINVAL if unknown.
  [[nodiscard]] Result<void> unmap(std::uint64_t iova);
  // Host memory for [iova, iova + length): EFAULT if any byte is unmapped (an IOMMU fault),
  // EPERM if `write` is requested on a ToDevice mapping or a read on a FromDevice one.
  [[nodiscard]] Result<std::span<std::byte>> translate(std::uint64_t iova, std::uint64_t length,
                                                       bool write) const;
  // Number of live IOVA ranges.
  [[nodiscard]] std::size_t mappedRanges() const;
  // Incremented by every unmap (lock-free read): a translation made at generation G is still
  // valid while generation() == G, so a device may cache it (an IOTLB; devices/dma does).
  [[nodiscard]] std::uint64_t generation() const noexcept {
    return generation_.load(std::memory_order_acquire);
  }
  // Number of translate() calls that failed (faults and direction violations).
  [[nodiscard]] std::uint64_t faults() const;

 private:
  struct Range {
    std::byte* host = nullptr;  // what the device reaches: the memory, or a device's cache lines
    std::uint64_t length = 0;
    DmaDirection dir = DmaDirection::Bidirectional;
    std::byte* memory = nullptr;  // cached ranges: the memory behind the lines
    std::byte* clean = nullptr;   // cached ranges: the lines' clean image
  };
  // The range holding [iova, iova + length), mutex_ held; EFAULT (counted) if there is none.
  [[nodiscard]] Result<std::map<std::uint64_t, Range>::const_iterator> findLocked(
      std::uint64_t iova, std::uint64_t length) const ZBUF_REQUIRES(mutex_);
  mutable Mutex mutex_;
  std::map<std::uint64_t, Range> ranges_ ZBUF_GUARDED_BY(mutex_);
  // IOVAs start high so a host pointer is never an IOVA.
  std::uint64_t next_ ZBUF_GUARDED_BY(mutex_) = kIovaBase;
  mutable std::uint64_t faults_ = 0;
  std::atomic<std::uint64_t> generation_{0};  // written under mutex_
};

}  // namespace zbuf
#pragma GCC visibility pop
