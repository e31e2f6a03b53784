// PageRun: the physical page model. A buffer's memory is a list of physically contiguous runs,
// each with where the CPU sees it and its modelled physical address, in one modelled physical
// address space; sg_table.h merges runs into the segments a device maps.
//
// Thread-safety: reservePhysical() is thread-safe; the rest are pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

// One physically contiguous run of a buffer's memory (one page, or several pages known to be
// adjacent): where the CPU sees it and its modelled physical address.
struct PageRun {
  std::byte* host;
  std::uint64_t length;
  std::uint64_t physAddress;
};

// The modelled physical address space: disjoint ranges handed out from 4 GiB upwards, never
// reused (so heap memory is beyond a 32-bit DMA mask, as high memory often is). Thread-safe.
[[nodiscard]] std::uint64_t reservePhysical(std::uint64_t bytes, std::uint64_t align) noexcept;

// The page model for memory whose pages are not physically contiguous: `host` cut into
// `pageSize` pages, page i at physBase + 2 * i * pageSize (every other frame, so no two pages
// are adjacent and each page becomes its own segment, split further only by the device's
// maximum segment size). physBase should come from reservePhysical(2 * host.size(), pageSize).
[[nodiscard]] std::vector<PageRun> scatteredPageRuns(std::span<std::byte> host,
                                                     std::uint64_t pageSize,
                                                     std::uint64_t physBase);

}  // namespace zbuf
#pragma GCC visibility pop
