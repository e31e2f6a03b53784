// zbuf's types over the real kernel's objects (uapi/kernel_objects.h): what a host without real
// dma-bufs can check, the refusals. The lane (tests/lane/kernel_lane_test.cpp, KernelObjects.*)
// wraps a real heap buffer and a real sync file on Debian's 6.12 and lets the emulated ADC fill
// the real buffer.
#include "zbuf/uapi/kernel_objects.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/memfd.h>

#include "zbuf/base/sys.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"

namespace zbuf::uapi {
namespace {

TEST(KernelObjects, LinksTellTheKernelsFiles) {
  EXPECT_TRUE(isKernelDmaBufLink("/dmabuf:"));
  EXPECT_TRUE(isKernelDmaBufLink("/dmabuf:frame-7"));
  EXPECT_TRUE(isKernelDmaBufLink("anon_inode:dmabuf"));  // before Linux 5.x's dmabuf names
  EXPECT_FALSE(isKernelDmaBufLink("/memfd:dmabuf (deleted)"));
  EXPECT_FALSE(isKernelDmaBufLink("anon_inode:sync_file"));
  EXPECT_TRUE(isKernelSyncFileLink("anon_inode:sync_file"));
  EXPECT_FALSE(isKernelSyncFileLink("pipe:[1234]"));
}

TEST(KernelObjects, OrdinaryFilesAreNeitherBuffersNorSyncFiles) {
  auto pipe = sys::pipe();
  ASSERT_TRUE(pipe.ok());
  auto memfd = sys::memfdCreate("not-a-dmabuf", MFD_CLOEXEC);
  ASSERT_TRUE(memfd.ok());
  for (const int fd : {pipe->first.get(), memfd->get()}) {
    EXPECT_EQ(wrapKernelDmaBuf(fd).code(), EINVAL) << fd;
    EXPECT_EQ(wrapKernelSyncFile(fd).code(), EINVAL) << fd;
  }
  constexpr int kClosed = 988;
  ASSERT_LT(::fcntl(kClosed, F_GETFD), 0);
  EXPECT_EQ(wrapKernelDmaBuf(kClosed).code(), EBADF);
  EXPECT_EQ(wrapKernelSyncFile(kClosed).code(), EBADF);
}

TEST(KernelObjects, TheContextsFallThroughRefusesWhatIsNotTheKernels) {
  auto ctx = Context::create();
  auto other = Context::create();
  auto pipe = sys::pipe();
  ASSERT_TRUE(pipe.ok());
  EXPECT_EQ(ctx->bufferFromFd(pipe->first.get()).code(), EINVAL);
  EXPECT_EQ(ctx->syncFileFence(pipe->first.get()).code(), EINVAL);
  // A buffer of another emulated kernel is a foreign fd, and no kernel dma-buf either.
  auto heap = other->open("/dev/dma_heap/system", O_RDONLY);
  ASSERT_TRUE(heap.ok());
  DmaHeapAllocationData data{};
  data.len = 4096;
  data.fdFlags = O_RDWR | O_CLOEXEC;
  ASSERT_TRUE(other->ioctl(heap->get(), kDmaHeapIoctlAlloc, &data).ok());
  const int buf = static_cast<int>(data.fd);
  EXPECT_EQ(ctx->bufferFromFd(buf).code(), EINVAL);
  EXPECT_TRUE(other->bufferFromFd(buf).ok());
  EXPECT_FALSE(isKernelDmaBuf(*other->bufferFromFd(buf).value()));
  (void)other->close(buf);
}

}  // namespace
}  // namespace zbuf::uapi
