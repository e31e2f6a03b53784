// ctest-labels: concurrency
// A sync file as an fd (the kernel's sync_file_fops through the fd-level calls): finding its
// fence (sync_file_get_fence) through any fd of it, read EINVAL without consuming the wake-up,
// lseek ESPIPE, poll POLLIN only once signalled, and how long it lives behind its fds.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <array>
#include <atomic>
#include <thread>
#include <vector>

#include "uapi/uapi_helpers.h"
#include "zbuf/uapi/context.h"

namespace zbuf::uapi {
namespace {

using namespace std::chrono_literals;

class SyncFileFd : public ::testing::Test {
 protected:
  short pollFd(int fd, short events = POLLIN | POLLOUT) {
    std::array<struct pollfd, 1> fds{{{fd, events, 0}}};
    auto n = ctx->poll(fds, 0);
    EXPECT_TRUE(n.ok());
    return fds[0].revents;
  }

  ContextPtr ctx = Context::create();
  Context::Scope scope{*ctx};
};

TEST_F(SyncFileFd, ItsFenceIsFoundThroughEveryFdOfIt) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto fd = ctx->installSyncFile(fence);
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(ctx->syncFileFence(fd->get()).value(), fence);
  auto dup = sys::dup(fd->get());
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ(ctx->syncFileFence(dup->get()).value(), fence);
  auto file = ctx->lookup(fd->get());
  ASSERT_TRUE(file.ok() && *file);
  EXPECT_TRUE((*file)->is(syncFileOperations()));
  fence->signal();
}

TEST_F(SyncFileFd, AnythingElseIsEinvalAsTheKernelSays) {
  auto memfd = sys::memfdCreate("not-a-sync-file", MFD_CLOEXEC);
  ASSERT_TRUE(memfd.ok());
  EXPECT_EQ(ctx->syncFileFence(memfd->get()).code(), EINVAL);
  auto efd = sys::eventfd(0, EFD_CLOEXEC);
  ASSERT_TRUE(efd.ok());
  EXPECT_EQ(ctx->syncFileFence(efd->get()).code(), EINVAL);
  auto pipe = sys::pipe();  // a pipe, like a sync file's backing, but not one of the context's
  ASSERT_TRUE(pipe.ok());
  EXPECT_EQ(ctx->syncFileFence(pipe->first.get()).code(), EINVAL);
  EXPECT_EQ(ctx->syncFileFence(pipe->second.get()).code(), EINVAL);
  EXPECT_EQ(ctx->syncFileFence(-1).code(), EINVAL);
  UniqueFd buffer = zbuf::testing::installSystemBuffer(*ctx);
  EXPECT_EQ(ctx->syncFileFence(buffer.get()).code(), EINVAL);
  // A closed sync file fd is no longer one.
  auto fd = ctx->installSyncFile(Fence::stub());
  ASSERT_TRUE(fd.ok());
  const int number = fd->get();
  ASSERT_TRUE(ctx->close(std::move(*fd)).ok());
  EXPECT_EQ(ctx->syncFileFence(number).code(), EINVAL);
}

TEST_F(SyncFileFd, ReadIsEinvalAndConsumesNothing) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto fd = ctx->installSyncFile(fence);
  ASSERT_TRUE(fd.ok());
  fence->signal();
  std::array<std::byte, 8> buf{};
  EXPECT_EQ(ctx->read(fd->get(), buf).code(), EINVAL);
  EXPECT_EQ(ctx->read(fd->get(), buf).code(), EINVAL);
  // Still readable, through the context and through poll(2) itself.
  EXPECT_EQ(pollFd(fd->get()), POLLIN);
  EXPECT_EQ(sys::pollOne(fd->get(), POLLIN, 0ms).value(), POLLIN);
}

TEST_F(SyncFileFd, WriteIsEbadfOnItsReadOnlyDescription) {
  auto fd = ctx->installSyncFile(Fence::stub());
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(*sys::getFileFlags(fd->get()) & O_ACCMODE, O_RDONLY);
  std::array<std::byte, 1> one{};
  EXPECT_EQ(ctx->write(fd->get(), one).code(), EBADF);
}

TEST_F(SyncFileFd, LseekIsEspipeAndMmapEnodev) {
  auto fd = ctx->installSyncFile(Fence::stub());
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(ctx->lseek(fd->get(), 0, SEEK_SET).code(), ESPIPE);
  EXPECT_EQ(ctx->lseek(fd->get(), 0, SEEK_END).code(), ESPIPE);
  EXPECT_EQ(ctx->mmap(fd->get(), 4096, PROT_READ, MAP_SHARED).code(), ENODEV);
}

TEST_F(SyncFileFd, PollIsPollinOnlyOnceSignalledAndNeverPollout) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto fd = ctx->installSyncFile(fence);
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(pollFd(fd->get()), 0);
  EXPECT_EQ(pollFd(fd->get(), POLLOUT), 0);
  std::thread signaller([&] { fence->signal(); });
  std::array<struct pollfd, 1> fds{{{fd->get(), POLLIN | POLLOUT, 0}}};
  EXPECT_EQ(ctx->poll(fds, 10'000).value(), 1);
  signaller.join();
  EXPECT_EQ(fds[0].revents, POLLIN);
  EXPECT_EQ(pollFd(fd->get(), POLLOUT), 0);
}

TEST_F(SyncFileFd, FdPathAndFstatAreTheAnonInodes) {
  auto fd = ctx->installSyncFile(Fence::stub());
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(ctx->fdPath(fd->get()).value(), "anon_inode:sync_file");
  auto st = ctx->fstat(fd->get());
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, 0U);
  EXPECT_NE(ctx->fdinfo(fd->get()).value().find("flags:\t02000000\n"), std::string::npos)
      << ctx->fdinfo(fd->get()).value();
}

TEST_F(SyncFileFd, ADupKeepsTheFileAliveThroughClose) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto fd = ctx->installSyncFile(fence);
  ASSERT_TRUE(fd.ok());
  auto dup = sys::dup(fd->get());
  ASSERT_TRUE(dup.ok());
  ASSERT_TRUE(ctx->close(std::move(*fd)).ok());
  ASSERT_TRUE(ctx->syncFileFence(dup->get()).ok());
  fence->signal();
  EXPECT_EQ(pollFd(dup->get()), POLLIN);
  const long refs = fence.use_count();
  dup->reset();  // close(2)
  EXPECT_EQ(ctx->files().size(), 0U);
  EXPECT_EQ(fence.use_count(), refs - 1);
}

// The old registry's "pruned and bounded" rule, as the file table's: every file closed with
// close(2) is released, and the table returns to empty.
TEST_F(SyncFileFd, PlainlyClosedFilesAreAllReleased) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  for (int i = 0; i < 1000; ++i) {
    auto fd = ctx->installSyncFile(fence);
    ASSERT_TRUE(fd.ok());
    // fd closes here with close(2), behind the context's back.
  }
  EXPECT_EQ(ctx->files().size(), 0U);
  EXPECT_EQ(fence.use_count(), 1);
  fence->signal();
}

TEST_F(SyncFileFd, SignallingAfterEveryFdClosedIsHarmless) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  { auto fd = ctx->installSyncFile(fence); }
  // Whether or not the file was released yet, the wake-up write must not raise SIGPIPE.
  fence->signal();
  EXPECT_EQ(ctx->files().size(), 0U);
}

TEST_F(SyncFileFd, ConcurrentInstallSignalPollAndClose) {
  auto tl = Timeline::create("drv", "tl");
  std::atomic<int> woken{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      const Context::Scope inThread(*ctx);
      for (int i = 0; i < 100; ++i) {
        auto fence = tl->createFence();
        auto fd = ctx->installSyncFile(fence);
        ASSERT_TRUE(fd.ok());
        std::thread signaller([&] { fence->signal(); });
        std::array<struct pollfd, 1> fds{{{fd->get(), POLLIN, 0}}};
        auto n = ctx->poll(fds, 10'000);
        signaller.join();
        if (n.ok() && *n == 1 && fds[0].revents == POLLIN) {
          ++woken;
        }
        ASSERT_TRUE(ctx->close(std::move(*fd)).ok());
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(woken.load(), 200);
  EXPECT_EQ(ctx->files().size(), 0U);
}

}  // namespace
}  // namespace zbuf::uapi
