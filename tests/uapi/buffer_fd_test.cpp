// How long a buffer lives behind the fds the uAPI hands out (uapi/buffer_fd.h).
#include "zbuf/uapi/buffer_fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <vector>

#include "uapi/uapi_helpers.h"
#include "zbuf/core/sync_file.h"
#include "zbuf/heaps/system_heap.h"

namespace zbuf::uapi {
namespace {

std::weak_ptr<Buffer> weakOf(int fd) {
  return testing::bufferOf(fd);
}

TEST(UapiBufferFd, TheBufferLivesWhileItsFdIsOpen) {
  UniqueFd fd = testing::allocateBuffer();
  auto weak = weakOf(fd.get());
  (void)pruneBuffers();
  EXPECT_FALSE(weak.expired());
  EXPECT_TRUE(Buffer::fromFd(fd.get()).ok());
  close(std::move(fd));
  EXPECT_TRUE(weak.expired());
}

TEST(UapiBufferFd, ADupKeepsItThroughCloseAndAPlainCloseIsPruned) {
  UniqueFd fd = testing::allocateBuffer();
  auto weak = weakOf(fd.get());
  auto dup = sys::dup(fd.get());
  ASSERT_TRUE(dup.ok());
  close(std::move(fd));
  EXPECT_FALSE(weak.expired());
  EXPECT_TRUE(Buffer::fromFd(dup->get()).ok());
  dup->reset();  // close(2) without telling the uAPI
  EXPECT_FALSE(weak.expired());
  EXPECT_GE(pruneBuffers(), 1U);
  EXPECT_TRUE(weak.expired());
}

TEST(UapiBufferFd, AMappingKeepsTheMemoryButNotTheBuffer) {
  UniqueFd fd = testing::allocateBuffer();
  auto weak = weakOf(fd.get());
  auto map = mmap(fd.get(), 4096, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(map.ok());
  close(std::move(fd));
  EXPECT_TRUE(weak.expired());
  std::memcpy(map->data(), "still", 5);  // the pages stay mapped
  EXPECT_EQ(std::memcmp(map->data(), "still", 5), 0);
}

TEST(UapiBufferFd, TheTableStaysBounded) {
  (void)pruneBuffers();
  const std::size_t before = heldBufferCount();
  for (int i = 0; i < 200; ++i) {
    UniqueFd fd = testing::allocateBuffer();
    // closed without telling the uAPI
  }
  EXPECT_LE(heldBufferCount(), 2 * before + 64);
  (void)pruneBuffers();
  EXPECT_EQ(heldBufferCount(), before);
}

TEST(UapiBufferFd, InstallChecksFlags) {
  auto buffer = SystemHeap::instance()->allocate(4096);
  ASSERT_TRUE(buffer.ok());
  EXPECT_EQ(installBuffer(*buffer, O_RDWR | O_NONBLOCK).code(), EINVAL);
  EXPECT_EQ(installBuffer(nullptr).code(), EINVAL);
  auto ro = installBuffer(*buffer, O_RDONLY);
  ASSERT_TRUE(ro.ok());
  EXPECT_EQ(*sys::getFileFlags(ro->get()) & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(*sys::getFdFlags(ro->get()) & FD_CLOEXEC, 0);
  EXPECT_EQ(*Buffer::fromFd(ro->get()), *buffer);
  close(std::move(*ro));
}

TEST(UapiBufferFd, CloseAlsoReleasesSyncFiles) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto file = SyncFile::create(fence);
  ASSERT_TRUE(file.ok());
  const long refs = fence.use_count();
  close(std::move(*file));
  EXPECT_EQ(fence.use_count(), refs - 1);
  fence->signal();
  close(UniqueFd());  // nothing to close: no effect
}

}  // namespace
}  // namespace zbuf::uapi
