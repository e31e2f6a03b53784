// Heap allocation through device fds and the kernel's structs: behaviour and every errno
// (reference sections 6 and 12).
#include "zbuf/uapi/heap.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/dma-heap.h>
#include <sys/mman.h>

#include <cstring>
#include <vector>

#include "zbuf/base/sys.h"
#include "zbuf/core/buffer.h"
#include "zbuf/uapi/calls.h"
#include "zbuf/uapi/dma_buf.h"
#include "zbuf/uapi/udmabuf.h"

namespace zbuf::uapi {
namespace {

UniqueFd systemHeap() {
  auto fd = openHeap("system");
  EXPECT_TRUE(fd.ok());
  return fd.ok() ? std::move(*fd) : UniqueFd();
}

int allocErrno(dma_heap_allocation_data data) {
  UniqueFd heap = systemHeap();
  auto r = ioctl(heap.get(), DMA_HEAP_IOCTL_ALLOC, &data);
  if (r.ok()) {
    UniqueFd::adopt(static_cast<int>(data.fd)).reset();
  }
  return r.code();
}

TEST(UapiHeap, OpenUnknownHeapIsEnoent) {
  EXPECT_EQ(openHeap("no-such-heap").code(), ENOENT);
  EXPECT_TRUE(openHeap("system").ok());
}

TEST(UapiHeap, AllocWithKernelStructGivesAPageRoundedBuffer) {
  UniqueFd heap = systemHeap();
  dma_heap_allocation_data data{};
  data.len = 1;
  data.fd_flags = O_RDWR | O_CLOEXEC;
  auto r = ioctl(heap.get(), DMA_HEAP_IOCTL_ALLOC, &data);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  UniqueFd buf = UniqueFd::adopt(static_cast<int>(data.fd));
  EXPECT_EQ(*size(buf.get()), sys::pageSize());
  EXPECT_EQ(*sys::getFdFlags(buf.get()) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(*sys::getFileFlags(buf.get()) & O_ACCMODE, O_RDWR);
  EXPECT_EQ(Context::current().bufferFromFd(buf.get()).value()->exporterName(), "system");
}

TEST(UapiHeap, FdFlagsSetCloexecAndAccessMode) {
  auto noCloexec = allocate("system", 4096, O_RDWR);
  ASSERT_TRUE(noCloexec.ok());
  EXPECT_EQ(*sys::getFdFlags(noCloexec->get()) & FD_CLOEXEC, 0);
  auto readOnly = allocate("system", 4096, O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(readOnly.ok());
  EXPECT_EQ(*sys::getFileFlags(readOnly->get()) & O_ACCMODE, O_RDONLY);
}

TEST(UapiHeap, LenZeroIsEinval) {
  dma_heap_allocation_data data{};
  data.fd_flags = O_RDWR;
  EXPECT_EQ(allocErrno(data), EINVAL);
}

TEST(UapiHeap, NonZeroInputFdIsEinval) {
  dma_heap_allocation_data data{};
  data.len = 4096;
  data.fd = 3;
  data.fd_flags = O_RDWR;
  EXPECT_EQ(allocErrno(data), EINVAL);
}

TEST(UapiHeap, ExtraFdFlagsAreEinval) {
  dma_heap_allocation_data data{};
  data.len = 4096;
  data.fd_flags = O_RDWR | O_NONBLOCK;
  EXPECT_EQ(allocErrno(data), EINVAL);
}

TEST(UapiHeap, HeapFlagsAreEinval) {
  dma_heap_allocation_data data{};
  data.len = 4096;
  data.fd_flags = O_RDWR;
  data.heap_flags = 1;
  EXPECT_EQ(allocErrno(data), EINVAL);
}

TEST(UapiHeap, MoreThanTheMachineCanBackIsEnomem) {
  dma_heap_allocation_data data{};
  data.len = 1ULL << 50;
  data.fd_flags = O_RDWR;
  EXPECT_EQ(allocErrno(data), ENOMEM);
}

TEST(UapiHeap, UnknownHeapIoctlIsEinvalAndNullIsEfault) {
  UniqueFd heap = systemHeap();
  dma_heap_allocation_data data{};
  EXPECT_EQ(ioctl(heap.get(), iocNumber(kIocRead | kIocWrite, 'H', 1, 24), &data).code(), EINVAL);
  EXPECT_EQ(ioctl(heap.get(), DMA_HEAP_IOCTL_ALLOC, nullptr).code(), EFAULT);
  EXPECT_EQ(heapAlloc(heap.get(), nullptr).code(), EFAULT);
}

TEST(UapiHeap, AShorterStructIsZeroExtendedLikeTheKernel) {
  UniqueFd heap = systemHeap();
  // An old 16-byte layout {len, fd, fd_flags}: heap_flags reads as 0.
  std::uint64_t old[2] = {8192, 0};
  auto r = ioctl(heap.get(), iocNumber(kIocRead | kIocWrite, 'H', 0, 16), old);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  UniqueFd buf = UniqueFd::adopt(static_cast<int>(old[1] & 0xffffffffU));
  EXPECT_EQ(*size(buf.get()), 8192U);
}

TEST(UapiHeap, AllocOnAnotherFdIsEnotty) {
  auto memfd = sys::memfdCreate("x", MFD_CLOEXEC);
  ASSERT_TRUE(memfd.ok());
  DmaHeapAllocationData data{};
  data.len = 4096;
  EXPECT_EQ(heapAlloc(memfd->get(), &data).code(), ENOTTY);
  auto udmabuf = openUdmabuf();
  ASSERT_TRUE(udmabuf.ok());
  EXPECT_EQ(heapAlloc(udmabuf->get(), &data).code(), ENOTTY);
}

}  // namespace
}  // namespace zbuf::uapi
