// Private to the heaps: MemfdBuffer, a buffer made of ranges of memfds (the system heap's own
// memfd, the huge-page heap's hugetlb memfd, the caller's memfds for udmabuf), the exporter
// operations they share, and the memfds and fds behind them. The allocation checks are in
// heap_allocation.h, the memory limit in backable_memory.h.
//
// The memory is mapped once into the process at export (the "kernel mapping": vmap and the
// CPU side of the page runs); the page runs follow the page model of sg_table.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "zbuf/base/mutex.h"
#include "zbuf/base/shared_fd.h"
#include "zbuf/base/sys.h"
#include "zbuf/core/buffer.h"

namespace zbuf::heap_detail {

inline constexpr std::uint64_t kHugePage = 2ULL << 20;  // a hugetlb memfd's page

struct MemfdRange {
  SharedFd memfd;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::uint64_t pageSize = 4096;  // 4 KiB, or 2 MiB for hugetlb memfds
};

// A live mapping of a non-coherent device (the system heap's attachment list entry with its
// table): the CPU-access ops sync every one of them.
struct CachedMapping {
  std::shared_ptr<Device> device;
  SgTable table;  // a copy: the same IOVAs and the same cache as the importer's table
};

struct MemfdBuffer {
  std::vector<MemfdRange> ranges;
  std::uint64_t size = 0;
  sys::Mapping host;          // every range, mapped once, in order
  std::vector<PageRun> runs;  // the page model over `host`
  bool udmabufRules = false;  // udmabuf: end_cpu_access before any begin is EINVAL
  std::atomic<bool> cpuAccessBegun{false};
  Mutex cachedMutex;
  // Live mappings of non-coherent devices.
  std::vector<CachedMapping> cached ZBUF_GUARDED_BY(cachedMutex);
};

// Maps the ranges once and builds the page runs. EINVAL for ranges the host cannot map
// (hugetlb ranges not 2 MiB aligned, hugetlb ranges in a list); ENOMEM (with how to reserve
// huge pages) when a hugetlb mapping cannot get its pages.
[[nodiscard]] Result<std::shared_ptr<MemfdBuffer>> buildMemfdBuffer(std::vector<MemfdRange> ranges,
                                                                    bool udmabufRules);

// Maps [offset, offset + length) of the buffer. MAP_PRIVATE is a private copy-on-write
// mapping (as 6.12's system heap gives), except for udmabuf, which refuses it (EINVAL).
[[nodiscard]] Result<sys::Mapping> mapMemfdRanges(const MemfdBuffer& buffer, std::uint64_t offset,
                                                  std::uint64_t length, int prot, int flags);

// One ExporterOps instance per exporter kind (their addresses identify the exporter).
[[nodiscard]] std::shared_ptr<const ExporterOps> heapExporterOps();
[[nodiscard]] std::shared_ptr<const ExporterOps> udmabufExporterOps();

// A new sealed-size memfd of `size` bytes (MFD_ALLOW_SEALING, plus `extraFlags`), sealed
// against shrinking and growing.
[[nodiscard]] Result<UniqueFd> createSealedMemfd(const char* name, std::uint64_t size,
                                                 unsigned extraFlags);

// The fd a heap buffer is represented by: the memfd itself, or a read-only reopening of it for
// an O_RDONLY allocation (same inode, so the file table finds it).
[[nodiscard]] Result<SharedFd> bufferFdFor(const SharedFd& memfd, int fdFlags);

}  // namespace zbuf::heap_detail
