// Udmabuf: the kernel's checks in the kernel's order (alignment and limits over the whole
// list first, then the total, then each memfd's type and seals, then its size), then one
// buffer over the caller's memfd ranges.
#include "zbuf/heaps/udmabuf.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include "memfd_buffer.h"

namespace zbuf {
namespace {

constexpr std::uint64_t kHugePage = 2ULL << 20;
constexpr const char* kOp = "udmabuf_create";

// check_memfd_seals: EBADFD unless an open memfd (shmem or hugetlbfs, answering F_GET_SEALS);
// EINVAL unless F_SEAL_SHRINK is set and F_SEAL_WRITE / F_SEAL_FUTURE_WRITE are not.
Result<sys::FileStat> checkMemfd(int fd) {
  if (fd < 0) {
    return Error(EBADFD, kOp, fmt::format("fd {} is not an open memfd", fd));
  }
  auto st = sys::fstat(fd);
  if (!st.ok()) {
    return Error(EBADFD, kOp, fmt::format("fd {} is not an open memfd", fd));
  }
  auto seals = sys::getSeals(fd);
  if (!S_ISREG(st->mode) || !seals.ok()) {
    return Error(EBADFD, kOp, fmt::format("fd {} is not a memfd (shmem or hugetlbfs)", fd));
  }
  if ((*seals & F_SEAL_SHRINK) == 0) {
    return Error(EINVAL, kOp, fmt::format("memfd {} lacks F_SEAL_SHRINK", fd));
  }
  if ((*seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) != 0) {
    return Error(EINVAL, kOp,
                 fmt::format("memfd {} is sealed against writing (F_SEAL_WRITE or "
                             "F_SEAL_FUTURE_WRITE)",
                             fd));
  }
  return *st;
}

}  // namespace

Result<BufferPtr> Udmabuf::create(int memfd, unsigned flags, std::uint64_t offset,
                                  std::uint64_t size) const {
  const UdmabufItem item{memfd, offset, size};
  return createList(flags, {&item, 1});
}

Result<BufferPtr> Udmabuf::createList(unsigned flags, std::span<const UdmabufItem> items) const {
  if (items.size() > config_.listLimit) {
    return Error(EINVAL, kOp,
                 fmt::format("{} items exceed list_limit {}", items.size(), config_.listLimit));
  }
  const std::uint64_t page = sys::pageSize();
  const std::uint64_t pageLimit = (config_.sizeLimitMb << 20) / page;
  std::uint64_t pages = 0;
  for (const UdmabufItem& it : items) {
    if (it.offset % page != 0 || it.size % page != 0) {
      return Error(EINVAL, kOp,
                   fmt::format("offset {} and size {} must be multiples of the page size {}",
                               it.offset, it.size, page));
    }
    pages += it.size / page;
    if (pages > pageLimit) {
      return Error(EINVAL, kOp,
                   fmt::format("total size exceeds size_limit_mb {} MiB", config_.sizeLimitMb));
    }
  }
  if (pages == 0) {
    return Error(EINVAL, kOp, "total size 0 (an empty list or zero-sized ranges)");
  }
  std::vector<heap_detail::MemfdRange> ranges;
  for (const UdmabufItem& it : items) {
    ZBUF_ASSIGN_OR_RETURN(auto st, checkMemfd(it.memfd));
    if (it.offset > st.size || it.size > st.size - it.offset) {
      return Error(EINVAL, kOp,
                   fmt::format("range {}+{} runs past the end of memfd {} ({} bytes)", it.offset,
                               it.size, it.memfd, st.size));
    }
    ZBUF_ASSIGN_OR_RETURN(auto dup, SharedFd::duplicate(it.memfd));
    const std::uint64_t pageSize = st.blockSize == kHugePage ? kHugePage : page;
    ranges.push_back({std::move(dup), it.offset, it.size, pageSize});
  }
  const std::uint64_t total = pages * page;
  ZBUF_ASSIGN_OR_RETURN(auto data, heap_detail::buildMemfdBuffer(std::move(ranges), true));
  // The identity fd: the buffer's own file, of the buffer's size, sealed so that nobody
  // mistakes it for the memory (writes and writable mappings are refused).
  ZBUF_ASSIGN_OR_RETURN(auto identity, heap_detail::createSealedMemfd("zbuf:udmabuf", total, 0));
  ZBUF_TRY(sys::addSeals(identity.get(), F_SEAL_WRITE | F_SEAL_SEAL));
  (void)flags;  // UDMABUF_FLAGS_CLOEXEC concerns the fd the uAPI hands out; others ignored
  ExportInfo info;
  info.exporterName = std::string(kExporterName);
  info.ops = heap_detail::udmabufExporterOps();
  info.size = total;
  info.flags = O_RDWR;
  info.fd = SharedFd::adopt(std::move(identity));
  info.priv = std::move(data);
  return Buffer::exportBuffer(std::move(info));
}

}  // namespace zbuf
