// The shared memfd-backed exporter. map/unmap go through mapPageRuns (one IOMMU range per
// segment). Coherency as the system heap and udmabuf (FunctionFS v5, patch 2/6) do it:
// begin/end device access sync the importer's table for the device / for the CPU; begin/end
// CPU access sync every live mapping of a non-coherent device for the CPU / for the device
// (docs/coherency.md). Coherent devices' tables have no cache: their syncs cost nothing.
#include "memfd_buffer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/memfd.h>
#include <sys/mman.h>

#include "zbuf/base/sys.h"
#include "zbuf/core/fence.h"

namespace zbuf::heap_detail {
namespace {

MemfdBuffer& dataOf(Buffer& buffer) {
  return *static_cast<MemfdBuffer*>(buffer.priv());
}

// Syncs every live non-coherent mapping of `buffer` for the CPU or for the devices.
void syncCachedMappings(Buffer& buffer, DmaDirection dir, bool forCpu) {
  MemfdBuffer& data = dataOf(buffer);
  const MutexLocker lock(data.cachedMutex);
  for (const CachedMapping& m : data.cached) {
    if (forCpu) {
      syncSgTableForCpu(*m.device, m.table, dir);
    } else {
      syncSgTableForDevice(*m.device, m.table, dir);
    }
  }
}

ExporterOps makeOps(bool udmabuf) {
  ExporterOps ops;
  ops.map = [](Attachment& a, DmaDirection dir) -> Result<SgTable> {
    MemfdBuffer& data = dataOf(a.buffer());
    auto table = mapPageRuns(a.device(), data.runs, dir);
    if (table.ok() && table->cache()) {
      const MutexLocker lock(data.cachedMutex);
      data.cached.push_back({a.devicePtr(), *table});
    }
    return table;
  };
  ops.unmap = [](Attachment& a, SgTable& table, DmaDirection /*dir*/) {
    if (table.cache()) {
      MemfdBuffer& data = dataOf(a.buffer());
      const MutexLocker lock(data.cachedMutex);
      std::erase_if(data.cached,
                    [&](const CachedMapping& m) { return m.table.cache() == table.cache(); });
    }
    unmapSgTable(a.device(), table);
  };
  ops.release = [](Buffer& /*buffer*/) {
    // The memory goes with the MemfdBuffer (the buffer's priv) and the memfds it holds.
  };
  // udmabuf's begin_udmabuf / end_udmabuf: the importer's own table.
  ops.beginDeviceAccess = [](Attachment& a, const SgTable& table, DmaDirection dir) {
    syncSgTableForDevice(a.device(), table, dir);
    return Result<void>{};
  };
  ops.endDeviceAccess = [](Attachment& a, const SgTable& table, DmaDirection dir) {
    syncSgTableForCpu(a.device(), table, dir);
    return Result<void>{};
  };
  ops.beginCpuAccess = [](Buffer& b, DmaDirection dir) -> Result<void> {
    dataOf(b).cpuAccessBegun.store(true);
    // Wait for the implicit fences first (the core waits again, at no cost): writing back
    // before a device finished writing would hand the CPU a half-written block.
    const bool write = dir != DmaDirection::FromDevice;
    ZBUF_TRY(b.resv().waitTimeout(usageRw(write), Fence::kWaitForever));
    syncCachedMappings(b, dir, /*forCpu=*/true);
    return {};
  };
  if (udmabuf) {
    ops.endCpuAccess = [](Buffer& b, DmaDirection dir) -> Result<void> {
      if (!dataOf(b).cpuAccessBegun.load()) {
        return Error(EINVAL, "udmabuf_end_cpu_access",
                     fmt::format("buffer {}: end of CPU access before any begin", b.inode()));
      }
      syncCachedMappings(b, dir, /*forCpu=*/false);
      return {};
    };
  } else {
    ops.endCpuAccess = [](Buffer& b, DmaDirection dir) -> Result<void> {
      syncCachedMappings(b, dir, /*forCpu=*/false);
      return {};
    };
  }
  ops.mmap = [](Buffer& b, std::uint64_t pageOffset, std::uint64_t length, int prot,
                int flags) -> Result<sys::Mapping> {
    return mapMemfdRanges(dataOf(b), pageOffset * sys::pageSize(), length, prot, flags);
  };
  ops.vmap = [](Buffer& b) -> Result<std::span<std::byte>> {
    MemfdBuffer& d = dataOf(b);
    return std::span<std::byte>(d.host.data(), d.size);
  };
  ops.vunmap = [](Buffer& /*b*/, std::span<std::byte> /*map*/) {};
  return ops;
}

Error hugePagesError(std::uint64_t bytes, const char* op) {
  return Error(ENOMEM, op,
               fmt::format("no {} free 2 MiB huge pages for {} bytes; reserve them as root with "
                           "`echo N > /proc/sys/vm/nr_hugepages`",
                           (bytes + kHugePage - 1) / kHugePage, bytes));
}

}  // namespace

Result<UniqueFd> createSealedMemfd(const char* name, std::uint64_t size, unsigned extraFlags) {
  ZBUF_ASSIGN_OR_RETURN(auto fd,
                        sys::memfdCreate(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | extraFlags));
  ZBUF_TRY(sys::ftruncate(fd.get(), static_cast<off_t>(size)));
  ZBUF_TRY(sys::addSeals(fd.get(), F_SEAL_SHRINK | F_SEAL_GROW));
  return fd;
}

Result<SharedFd> bufferFdFor(const SharedFd& memfd, int fdFlags) {
  if ((fdFlags & O_ACCMODE) != O_RDONLY) {
    return memfd;
  }
  const std::string path = fmt::format("/proc/self/fd/{}", memfd.get());
  ZBUF_ASSIGN_OR_RETURN(auto ro, sys::open(path.c_str(), O_RDONLY));
  return SharedFd::adopt(std::move(ro));
}

Result<sys::Mapping> mapMemfdRanges(const MemfdBuffer& buffer, std::uint64_t offset,
                                    std::uint64_t length, int prot, int flags) {
  const int type = flags & MAP_TYPE;
  if (type == MAP_PRIVATE && buffer.udmabufRules) {
    // udmabuf_mmap: (vm_flags & VM_SHARED) == 0 is EINVAL.
    return Error(EINVAL, "udmabuf_mmap", "MAP_PRIVATE: a udmabuf mapping must be shared");
  }
  if (type != MAP_SHARED && type != MAP_SHARED_VALIDATE && type != MAP_PRIVATE) {
    return Error(EINVAL, "dma_buf_mmap", fmt::format("map type {:#x}", type));
  }
  if (length == 0 || offset + length > buffer.size) {
    return Error(
        EINVAL, "dma_buf_mmap",
        fmt::format("range {}+{} is outside the buffer of {} bytes", offset, length, buffer.size));
  }
  // One range covers it all: one mmap (the system heap, the huge-page heap, most udmabufs).
  std::uint64_t start = 0;
  for (const MemfdRange& r : buffer.ranges) {
    if (offset >= start && offset + length <= start + r.size) {
      auto m = sys::mmap(length, prot, flags, r.memfd.get(),
                         static_cast<off_t>(r.offset + (offset - start)));
      if (!m.ok() && m.code() == ENOMEM && r.pageSize == kHugePage) {
        return hugePagesError(length, "mmap");
      }
      return m;
    }
    start += r.size;
  }
  // Several ranges: reserve the address range, then map each piece over it.
  ZBUF_ASSIGN_OR_RETURN(auto region,
                        sys::mmap(length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  start = 0;
  std::uint64_t done = 0;
  for (const MemfdRange& r : buffer.ranges) {
    const std::uint64_t end = start + r.size;
    const std::uint64_t from = std::max(start, offset);
    const std::uint64_t to = std::min(end, offset + length);
    if (from < to) {
      ZBUF_TRY(sys::mmapFixed(region.data() + done, to - from, prot, flags, r.memfd.get(),
                              static_cast<off_t>(r.offset + (from - start))));
      done += to - from;
    }
    start = end;
  }
  return region;
}

Result<std::shared_ptr<MemfdBuffer>> buildMemfdBuffer(std::vector<MemfdRange> ranges,
                                                      bool udmabufRules) {
  auto data = std::make_shared<MemfdBuffer>();
  data->udmabufRules = udmabufRules;
  for (const MemfdRange& r : ranges) {
    if (r.pageSize == kHugePage &&
        (ranges.size() > 1 || r.offset % kHugePage != 0 || r.size % kHugePage != 0)) {
      return Error(EINVAL, "udmabuf_create",
                   "zbuf maps hugetlb memfds with mmap: a hugetlb range must be alone and 2 MiB "
                   "aligned in offset and size");
    }
    data->size += r.size;
  }
  data->ranges = std::move(ranges);
  ZBUF_ASSIGN_OR_RETURN(auto host,
                        mapMemfdRanges(*data, 0, data->size, PROT_READ | PROT_WRITE, MAP_SHARED));
  data->host = std::move(host);
  // The page model: every range cut into its pages, each page its own physical frame.
  std::uint64_t at = 0;
  for (const MemfdRange& r : data->ranges) {
    const std::uint64_t phys = reservePhysical(2 * r.size, r.pageSize);
    auto runs = scatteredPageRuns({data->host.data() + at, r.size}, r.pageSize, phys);
    data->runs.insert(data->runs.end(), runs.begin(), runs.end());
    at += r.size;
  }
  return data;
}

std::shared_ptr<const ExporterOps> heapExporterOps() {
  static const auto ops = std::make_shared<const ExporterOps>(makeOps(false));
  return ops;
}

std::shared_ptr<const ExporterOps> udmabufExporterOps() {
  static const auto ops = std::make_shared<const ExporterOps>(makeOps(true));
  return ops;
}

}  // namespace zbuf::heap_detail
