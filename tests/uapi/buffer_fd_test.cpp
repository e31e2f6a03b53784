// dma_buf_fd and dma_buf_get on a context (uapi/context.h: installBuffer, bufferFromFd): the
// flags an fd gets, finding the buffer again through any fd of it, and the basic lifetime rule
// (the buffer lives while an fd refers to it). Every way of closing: lifetime_test.cpp.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <vector>

#include "core/fake_exporter.h"
#include "uapi/uapi_helpers.h"
#include "zbuf/heaps/system_heap.h"
#include "zbuf/uapi/context.h"

namespace zbuf::uapi {
namespace {

class UapiBufferFd : public ::testing::Test {
 protected:
  ContextPtr ctx = Context::create();
  Context::Scope scope{*ctx};
};

BufferPtr systemBuffer(std::uint64_t size = 4096) {
  auto buffer = SystemHeap::instance()->allocate(size);
  EXPECT_TRUE(buffer.ok());
  return buffer.ok() ? *buffer : nullptr;
}

TEST_F(UapiBufferFd, TheBufferLivesWhileItsFdIsOpen) {
  UniqueFd fd = zbuf::testing::allocateBuffer();
  std::weak_ptr<Buffer> weak = zbuf::testing::bufferOf(fd.get());
  (void)ctx->files().reap();  // the heap device's file, closed by allocateBuffer
  EXPECT_EQ(ctx->files().size(), 1U);
  EXPECT_FALSE(weak.expired());
  EXPECT_TRUE(ctx->bufferFromFd(fd.get()).ok());
  ASSERT_TRUE(ctx->close(std::move(fd)).ok());
  EXPECT_TRUE(weak.expired());
}

TEST_F(UapiBufferFd, BufferFromFdFindsTheBufferThroughEveryFdOfIt) {
  BufferPtr buffer = systemBuffer();
  auto fd = ctx->installBuffer(buffer);
  ASSERT_TRUE(fd.ok()) << fd.error().describe();
  EXPECT_EQ(ctx->bufferFromFd(fd->get()).value(), buffer);
  auto dup = sys::dup(fd->get());
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ(ctx->bufferFromFd(dup->get()).value(), buffer);
  auto second = ctx->installBuffer(buffer, O_RDONLY | O_CLOEXEC);  // another description
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(ctx->bufferFromFd(second->get()).value(), buffer);
  EXPECT_EQ(ctx->files().size(), 1U);  // one file per buffer, whatever the descriptions
}

TEST_F(UapiBufferFd, BufferFromFdErrors) {
  EXPECT_EQ(ctx->bufferFromFd(-1).code(), EBADF);
  auto memfd = sys::memfdCreate("not-a-buffer", MFD_CLOEXEC);
  ASSERT_TRUE(memfd.ok());
  EXPECT_EQ(ctx->bufferFromFd(memfd->get()).code(), EINVAL);
  const int closed = memfd->get();
  memfd->reset();
  EXPECT_EQ(ctx->bufferFromFd(closed).code(), EBADF);
  // The buffer's own memfd is not a dma-buf fd: only installed descriptions are.
  BufferPtr buffer = systemBuffer();
  EXPECT_EQ(ctx->bufferFromFd(buffer->fd().get()).code(), EINVAL);
  // A sync file is not a buffer.
  auto sync = ctx->installSyncFile(Fence::stub());
  ASSERT_TRUE(sync.ok());
  EXPECT_EQ(ctx->bufferFromFd(sync->get()).code(), EINVAL);
}

TEST_F(UapiBufferFd, AReleasedFileIsNotFoundAgain) {
  BufferPtr buffer = systemBuffer();
  auto fd = ctx->installBuffer(buffer);
  ASSERT_TRUE(fd.ok());
  // Another fd of the same inode made behind the context's back, kept past the release.
  auto raw = sys::dup(buffer->fd().get());
  ASSERT_TRUE(raw.ok());
  ASSERT_TRUE(ctx->close(std::move(*fd)).ok());
  EXPECT_EQ(ctx->files().size(), 0U);
  EXPECT_EQ(ctx->bufferFromFd(raw->get()).code(), EINVAL);
  // Installing again makes a new file for the same buffer.
  auto again = ctx->installBuffer(buffer);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(ctx->bufferFromFd(again->get()).value(), buffer);
}

TEST_F(UapiBufferFd, InstallChecksFlags) {
  BufferPtr buffer = systemBuffer();
  EXPECT_EQ(ctx->installBuffer(buffer, O_RDWR | O_NONBLOCK).code(), EINVAL);
  EXPECT_EQ(ctx->installBuffer(nullptr).code(), EINVAL);
  auto ro = ctx->installBuffer(buffer, O_RDONLY);
  ASSERT_TRUE(ro.ok());
  EXPECT_EQ(*sys::getFileFlags(ro->get()) & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(*sys::getFdFlags(ro->get()) & FD_CLOEXEC, 0);
  EXPECT_EQ(*ctx->bufferFromFd(ro->get()), buffer);
  auto rw = ctx->installBuffer(buffer, O_RDWR | O_CLOEXEC);
  ASSERT_TRUE(rw.ok());
  EXPECT_EQ(*sys::getFileFlags(rw->get()) & O_ACCMODE, O_RDWR);
  EXPECT_EQ(*sys::getFdFlags(rw->get()) & FD_CLOEXEC, FD_CLOEXEC);
  ASSERT_TRUE(ctx->close(std::move(*ro)).ok());
  ASSERT_TRUE(ctx->close(std::move(*rw)).ok());
}

TEST_F(UapiBufferFd, TwoBuffersOnOneMemfdAreRefused) {
  // A file is found by its inode, so one memfd cannot stand for two buffers (the kernel makes
  // a new file per dma_buf_export).
  auto counters = std::make_shared<test::FakeCounters>();
  auto firstInfo = test::fakeInfo(counters);
  SharedFd memfd = firstInfo.fd;
  auto first = Buffer::exportBuffer(std::move(firstInfo));
  ASSERT_TRUE(first.ok());
  auto info = test::fakeInfo(counters);
  info.fd = memfd;
  auto second = Buffer::exportBuffer(std::move(info));
  ASSERT_TRUE(second.ok());
  auto fd = ctx->installBuffer(*first);
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(ctx->installBuffer(*second).code(), EBUSY);
}

}  // namespace
}  // namespace zbuf::uapi
