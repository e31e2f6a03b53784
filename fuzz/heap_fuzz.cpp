// Target heap: /dev/dma_heap/system and /dev/dma_heap/hugepage: DMA_HEAP_IOCTL_ALLOC with every
// field fuzzed (and, as dma_heap_ioctl allows, any size and direction of request nr 0), any
// other number, read/write; the buffers it makes are then used as dma-bufs.
#include <array>
#include <cstring>

#include "common_ops.h"

namespace zbuf::fuzz {
namespace {

using namespace zbuf::uapi;

DmaHeapAllocationData gIn{};  // the argument as the kernel copies it in (zero-extended)

std::size_t inSize(unsigned cmd) {
  const std::size_t size = (cmd >> 16) & 0x3fffU;
  return ((cmd >> 30) & kIocWrite) != 0 ? std::min(size, sizeof(DmaHeapAllocationData)) : 0;
}
std::size_t outSize(unsigned cmd) {
  const std::size_t size = (cmd >> 16) & 0x3fffU;
  return ((cmd >> 30) & kIocRead) != 0 ? size : 0;
}

void check(Session& s, const IoctlCall& call, const Result<long>& r) {
  if (call.target.kind != Kind::Heap || !r.ok()) {
    return;
  }
  if ((call.cmd & 0xff) != 0) {
    fail("heap ioctl nr {} succeeded; dma_heap_ioctl says EINVAL", call.cmd & 0xff);
  }
  const std::uint64_t page = sys::pageSize();
  if (gIn.fd != 0 || gIn.heapFlags != 0 || (gIn.fdFlags & ~(O_CLOEXEC | O_ACCMODE)) != 0 ||
      gIn.len == 0 || gIn.len > ~std::uint64_t{0} - (page - 1)) {
    fail(
        "DMA_HEAP_IOCTL_ALLOC len {} fd {} fd_flags {:#x} heap_flags {:#x} succeeded; the kernel "
        "says EINVAL",
        gIn.len, gIn.fd, gIn.fdFlags, gIn.heapFlags);
  }
  if (outSize(call.cmd) < 12 || call.arg == nullptr) {
    return;  // the fd was not copied out: the caller cannot close it (as in the kernel)
  }
  DmaHeapAllocationData out{};
  std::memcpy(&out, call.arg, std::min(outSize(call.cmd), sizeof out));
  const int fd = static_cast<int>(out.fd);
  expectReturnedFd(s, fd, Kind::DmaBuf, (gIn.fdFlags & O_CLOEXEC) != 0, "DMA_HEAP_IOCTL_ALLOC");
  auto size = s.ctx().lseek(fd, 0, SEEK_END);
  const std::uint64_t want = (gIn.len + page - 1) / page * page;
  if (!size.ok() || static_cast<std::uint64_t>(*size) < want) {
    fail("DMA_HEAP_IOCTL_ALLOC of {} bytes made a buffer of {}", gIn.len, size.ok() ? *size : -1);
  }
  auto flags = sys::getFileFlags(fd);
  if (!flags.ok() || (*flags & O_ACCMODE) != static_cast<int>(gIn.fdFlags & O_ACCMODE)) {
    fail("DMA_HEAP_IOCTL_ALLOC with fd_flags {:#x} gave an fd of flags {:#x}", gIn.fdFlags,
         flags.ok() ? *flags : -1);
  }
}

Rules rules() {
  Rules r;
  r.requests = {{kDmaHeapIoctlAlloc, sizeof(DmaHeapAllocationData)},
                {kDmaBufIoctlSync, sizeof(DmaBufSync)},
                {kDmaBufIoctlExportSyncFile, sizeof(DmaBufExportSyncFile)}};
  r.ioctlErrnos = kernelIoctlErrnos;
  r.rwErrnos = kernelRwErrnos;
  r.returnedFd = kernelReturnedFd;
  r.ioctlCheck = check;
  r.fixUp = [](Session& /*s*/, IoctlCall& call, Input& /*in*/) {
    if (call.target.kind == Kind::Heap && (call.cmd & 0xff) == 0) {
      // Keep real allocations small (the harness must not exhaust the machine); the lengths
      // within a page of 2^64 stay as they are.
      std::uint64_t len = 0;
      std::memcpy(&len, call.arg, sizeof len);
      if (len > (64U << 20) && len <= ~std::uint64_t{0} - 8192) {
        len %= 64U << 20;
        std::memcpy(call.arg, &len, sizeof len);
      }
    }
  };
  r.before = [](Session& s, IoctlCall& call) {
    if (call.target.kind == Kind::Heap && (call.cmd & 0xff) == 0) {
      // ALLOC installs the fd whether or not it is copied out; an fd the caller never learns
      // cannot be closed, so the request always reads back at least the fd.
      call.cmd |= kIocRead << 30;
      if (((call.cmd >> 16) & 0x3fff) < 12) {
        call.cmd = (call.cmd & ~(0x3fffU << 16)) | (24U << 16);
      }
    }
    gIn = DmaHeapAllocationData{};
    if (call.arg != nullptr) {
      std::memcpy(&gIn, call.arg, inSize(call.cmd));
    }
    return beforeSync(s, call);
  };
  r.extraOps = 1;
  r.extra = [](Session& s, std::uint8_t /*op*/, Input& in) {
    static constexpr std::array<std::pair<const char*, Kind>, 2> kNodes{
        {{"/dev/dma_heap/system", Kind::Heap}, {"/dev/dma_heap/hugepage", Kind::Heap}}};
    openNode(s, in, kNodes);
  };
  return r;
}

}  // namespace
}  // namespace zbuf::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace zbuf::fuzz;
  Session s(rules());
  auto heap = s.ctx().open("/dev/dma_heap/system", O_RDONLY | O_NONBLOCK);
  if (!heap.ok()) {
    fail("open /dev/dma_heap/system: {}", heap.error().describe());
  }
  s.track(std::move(*heap), Kind::Heap);
  Input in(data, size);
  s.run(in);
  s.finish();
  return 0;
}
