// ctest-labels: concurrency
// Several contexts in one process (uapi/context.h): each is its own kernel, with its own files
// and device nodes; an fd of one is a foreign fd to the other (the real system call answers);
// Context::current() follows the innermost Scope of the calling thread.
#include "zbuf/uapi/context.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "uapi/uapi_helpers.h"
#include "zbuf/uapi/calls.h"
#include "zbuf/uapi/linux_uapi.h"

namespace zbuf::uapi {
namespace {

using zbuf::testing::installSystemBuffer;

TEST(Contexts, EachHasItsOwnFiles) {
  auto a = Context::create();
  auto b = Context::create();
  UniqueFd inA = installSystemBuffer(*a);
  auto syncInB = b->installSyncFile(Fence::stub());
  ASSERT_TRUE(syncInB.ok());
  EXPECT_EQ(a->files().size(), 1U);
  EXPECT_EQ(b->files().size(), 1U);
  EXPECT_EQ(a->files().list()[0].kind, "dmabuf");
  EXPECT_EQ(b->files().list()[0].kind, "sync_file");
}

TEST(Contexts, AnFdOfOneIsForeignToTheOther) {
  auto a = Context::create();
  auto b = Context::create();
  UniqueFd buffer = installSystemBuffer(*a);
  auto sync = a->installSyncFile(Fence::stub());
  ASSERT_TRUE(sync.ok());
  EXPECT_EQ(b->lookup(buffer.get()).value(), nullptr);
  EXPECT_EQ(b->bufferFromFd(buffer.get()).code(), EINVAL);
  EXPECT_EQ(b->syncFileFence(sync->get()).code(), EINVAL);
  // To `b` the buffer fd is what it really is, a memfd: the real ioctl answers ENOTTY.
  dma_buf_sync s{DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ};
  EXPECT_EQ(b->ioctl(buffer.get(), DMA_BUF_IOCTL_SYNC, &s).code(), ENOTTY);
  EXPECT_TRUE(a->ioctl(buffer.get(), DMA_BUF_IOCTL_SYNC, &s).ok());
  EXPECT_EQ(b->fdPath(buffer.get()).value().rfind("/memfd:", 0), 0U);
  EXPECT_EQ(a->fdPath(buffer.get()).value(), "/dmabuf:");
  // A sync file of `a` is not one `b` can import.
  UniqueFd inB = installSystemBuffer(*b);
  dma_buf_import_sync_file imp{DMA_BUF_SYNC_READ, sync->get()};
  EXPECT_EQ(b->ioctl(inB.get(), DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &imp).code(), EINVAL);
  UniqueFd inA = installSystemBuffer(*a);
  EXPECT_TRUE(a->ioctl(inA.get(), DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &imp).ok());
  // Closing through the other context still closes the fd (close(2)), and its owner notices.
  ASSERT_TRUE(b->close(std::move(buffer)).ok());
  EXPECT_EQ(a->files().size(), 2U);  // inA and the sync file
}

TEST(Contexts, EachHasItsOwnNodes) {
  auto a = Context::create();
  auto b = Context::create();
  for (const auto* ctx : {a.get(), b.get()}) {
    auto nodes = ctx->nodes();
    EXPECT_NE(std::find(nodes.begin(), nodes.end(), "/dev/dma_heap/system"), nodes.end());
    EXPECT_NE(std::find(nodes.begin(), nodes.end(), "/dev/udmabuf"), nodes.end());
  }
  const NodeOpen open = [](Context& ctx, int /*flags*/) {
    return ctx.installSyncFile(Fence::stub());
  };
  ASSERT_TRUE(a->addNode("/dev/zbuf-test", open).ok());
  EXPECT_TRUE(a->open("/dev/zbuf-test", O_RDONLY).ok());
  EXPECT_EQ(b->open("/dev/zbuf-test", O_RDONLY).code(), ENOENT);
  EXPECT_EQ(a->addNode("/dev/zbuf-test", {}).code(), EEXIST);
  EXPECT_EQ(a->addNode("relative", {}).code(), EINVAL);
  EXPECT_TRUE(a->removeNode("/dev/zbuf-test"));
  EXPECT_FALSE(a->removeNode("/dev/zbuf-test"));
  EXPECT_EQ(a->open("/dev/zbuf-test", O_RDONLY).code(), ENOENT);
  EXPECT_EQ(a->open("/dev/dma_heap/cma", O_RDONLY).code(), ENOENT);
}

TEST(Contexts, AHeapOfOneAllocatesIntoThatOne) {
  auto a = Context::create();
  auto b = Context::create();
  auto heap = a->open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(heap.ok());
  dma_heap_allocation_data data{};
  data.len = 4096;
  data.fd_flags = O_RDWR | O_CLOEXEC;
  ASSERT_TRUE(a->ioctl(heap->get(), DMA_HEAP_IOCTL_ALLOC, &data).ok());
  UniqueFd buffer = UniqueFd::adopt(static_cast<int>(data.fd));
  EXPECT_TRUE(a->bufferFromFd(buffer.get()).ok());
  EXPECT_EQ(b->bufferFromFd(buffer.get()).code(), EINVAL);
  // b does not know a's heap fd either: to b it is a memfd, whose ioctl is ENOTTY.
  data.fd = 0;
  EXPECT_EQ(b->ioctl(heap->get(), DMA_HEAP_IOCTL_ALLOC, &data).code(), ENOTTY);
}

TEST(Contexts, CurrentFollowsTheInnermostScope) {
  auto a = Context::create();
  auto b = Context::create();
  EXPECT_EQ(&Context::current(), &Context::embedded());
  {
    const Context::Scope sa(*a);
    EXPECT_EQ(&Context::current(), a.get());
    {
      const Context::Scope sb(*b);
      EXPECT_EQ(&Context::current(), b.get());
      // The free functions of calls.h go to the current context.
      auto sync = b->installSyncFile(Fence::stub());
      ASSERT_TRUE(sync.ok());
      EXPECT_EQ(uapi::lseek(sync->get(), 0, SEEK_SET).code(), ESPIPE);  // b's sync file
    }
    EXPECT_EQ(&Context::current(), a.get());
    // Another thread starts with the embedded context.
    const Context* seen = nullptr;
    std::thread t([&] { seen = &Context::current(); });
    t.join();
    EXPECT_EQ(seen, &Context::embedded());
  }
  EXPECT_EQ(&Context::current(), &Context::embedded());
}

}  // namespace
}  // namespace zbuf::uapi
