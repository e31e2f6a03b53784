// ctest-labels: concurrency
#include "zbuf/core/sync_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "zbuf/base/sys.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;

short pollNow(int fd, short events = POLLIN | POLLOUT) {
  auto r = sys::pollOne(fd, events, 0ms);
  EXPECT_TRUE(r.ok());
  return r.valueOr(short{-1});
}

// A fence whose deadline hint can be observed.
class DeadlineFence final : public Fence {
 public:
  DeadlineFence() : Fence(Timeline::allocateContexts(1), 1) {}
  std::string_view driverName() const override { return "deadline-driver"; }
  std::string_view timelineName() const override { return "deadline-timeline"; }
  std::atomic<std::uint64_t> deadline{0};

 protected:
  void onDeadline(std::uint64_t deadlineNs) override { deadline = deadlineNs; }
};

TEST(SyncFile, CreateWithoutFenceIsEinval) {
  auto r = SyncFile::create(nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), EINVAL);
}

TEST(SyncFile, PollReportsPollinOnlyOnceSignalledAndNeverPollout) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto fd = SyncFile::create(fence);
  ASSERT_TRUE(fd.ok()) << fd.error().describe();
  EXPECT_EQ(pollNow(fd->get()), 0);
  fence->signal();
  EXPECT_EQ(pollNow(fd->get()), POLLIN);
  // Stays readable: nobody consumes the wake-up.
  EXPECT_EQ(pollNow(fd->get()), POLLIN);
  EXPECT_EQ(pollNow(fd->get(), POLLOUT), 0);
}

TEST(SyncFile, AlreadySignalledFenceIsReadableAtOnce) {
  auto fd = SyncFile::create(Fence::stub());
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(pollNow(fd->get()), POLLIN);
}

TEST(SyncFile, FdIsCloseOnExecAndReadOnly) {
  auto fd = SyncFile::create(Fence::stub());
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(*sys::getFdFlags(fd->get()) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(*sys::getFileFlags(fd->get()) & O_ACCMODE, O_RDONLY);
}

TEST(SyncFile, SignalFromAnotherThreadWakesPoll) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto fd = SyncFile::create(fence);
  ASSERT_TRUE(fd.ok());
  std::thread signaller([&] {
    std::this_thread::sleep_for(5ms);
    fence->signal();
  });
  auto r = sys::pollOne(fd->get(), POLLIN, 5000ms);
  signaller.join();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, POLLIN);
}

TEST(SyncFile, GetFenceReturnsTheFenceAlsoThroughADup) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto fd = SyncFile::create(fence);
  ASSERT_TRUE(fd.ok());
  auto got = SyncFile::getFence(fd->get());
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, fence);
  auto dup = sys::dup(fd->get());
  ASSERT_TRUE(dup.ok());
  auto viaDup = SyncFile::getFence(dup->get());
  ASSERT_TRUE(viaDup.ok());
  EXPECT_EQ(*viaDup, fence);
  fence->signal();
}

TEST(SyncFile, GetFenceOnAnythingElseIsEinval) {
  auto memfd = sys::memfdCreate("not-a-sync-file", MFD_CLOEXEC);
  ASSERT_TRUE(memfd.ok());
  EXPECT_EQ(SyncFile::getFence(memfd->get()).code(), EINVAL);
  auto efd = sys::eventfd(0, 0);
  ASSERT_TRUE(efd.ok());
  EXPECT_EQ(SyncFile::getFence(efd->get()).code(), EINVAL);
  auto foreign = sys::pipe();
  ASSERT_TRUE(foreign.ok());
  EXPECT_EQ(SyncFile::getFence(foreign->first.get()).code(), EINVAL);
  EXPECT_EQ(SyncFile::getFence(foreign->second.get()).code(), EINVAL);
  EXPECT_EQ(SyncFile::getFence(-1).code(), EINVAL);
  EXPECT_EQ(SyncFile::fromFd(-1).code(), EINVAL);
  // A closed sync file fd is no longer one.
  auto fd = SyncFile::create(Fence::stub());
  ASSERT_TRUE(fd.ok());
  const int number = fd->get();
  SyncFile::close(std::move(*fd));
  EXPECT_EQ(SyncFile::getFence(number).code(), EINVAL);
}

TEST(SyncFile, GeneratedNameIsDriverTimelineContextSeqno) {
  auto tl = Timeline::create("drv", "tl");
  auto fence = tl->createFence(7);
  auto fd = SyncFile::create(fence);
  ASSERT_TRUE(fd.ok());
  auto file = SyncFile::fromFd(fd->get());
  ASSERT_TRUE(file.ok());
  EXPECT_EQ((*file)->name(), fmt::format("drv-tl{}-7", tl->context()));
  fence->signal();
}

TEST(SyncFile, NamesAreCutTo31Characters) {
  auto tl = Timeline::create(std::string(40, 'd'), "tl");
  auto fence = tl->createFence();
  auto fd = SyncFile::create(fence);
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ((*SyncFile::fromFd(fd->get()))->name(), std::string(31, 'd'));
  auto named = SyncFile::create(fence, std::string(40, 'n'));
  ASSERT_TRUE(named.ok());
  EXPECT_EQ((*SyncFile::fromFd(named->get()))->name(), std::string(31, 'n'));
  auto nul = SyncFile::create(fence, std::string_view("ab\0cd", 5));
  ASSERT_TRUE(nul.ok());
  EXPECT_EQ((*SyncFile::fromFd(nul->get()))->name(), "ab");
  fence->signal();
}

TEST(SyncFile, InfoReportsStatusTimestampAndNames) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto fd = SyncFile::create(fence);
  ASSERT_TRUE(fd.ok());
  auto file = *SyncFile::fromFd(fd->get());
  auto pending = file->info(true);
  EXPECT_EQ(pending.numFences, 1U);
  ASSERT_EQ(pending.fences.size(), 1U);
  EXPECT_EQ(pending.status, 0);
  EXPECT_EQ(pending.fences[0].status, 0);
  EXPECT_EQ(pending.fences[0].timestampNs, 0U);
  EXPECT_EQ(pending.fences[0].objName, "tl");
  EXPECT_EQ(pending.fences[0].driverName, "drv");
  EXPECT_EQ(file->info(false).status, 0);
  EXPECT_TRUE(file->info(false).fences.empty());
  EXPECT_EQ(file->info(false).numFences, 1U);

  fence->signalWithTimestamp(12345);
  auto done = file->info(true);
  EXPECT_EQ(done.status, 1);
  EXPECT_EQ(done.fences[0].status, 1);
  EXPECT_EQ(done.fences[0].timestampNs, 12345U);
  EXPECT_EQ(file->info(false).status, 1);
}

TEST(SyncFile, InfoStatusCarriesTheError) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  fence->setError(-EIO);
  fence->signal();
  auto fd = SyncFile::create(fence);
  ASSERT_TRUE(fd.ok());
  auto file = *SyncFile::fromFd(fd->get());
  EXPECT_EQ(file->info(true).status, -EIO);
  EXPECT_EQ(file->info(true).fences[0].status, -EIO);
  EXPECT_EQ(file->info(false).status, -EIO);
}

TEST(SyncFile, SetDeadlineForwardsTheHint) {
  auto fence = std::make_shared<DeadlineFence>();
  auto fd = SyncFile::create(fence);
  ASSERT_TRUE(fd.ok());
  (*SyncFile::fromFd(fd->get()))->setDeadline(424242);
  EXPECT_EQ(fence->deadline.load(), 424242U);
  fence->signal();
}

TEST(SyncFile, MergeWithSomethingElseIsEnoent) {
  auto fd = SyncFile::create(Fence::stub());
  ASSERT_TRUE(fd.ok());
  auto memfd = sys::memfdCreate("other", MFD_CLOEXEC);
  ASSERT_TRUE(memfd.ok());
  auto file = *SyncFile::fromFd(fd->get());
  EXPECT_EQ(file->merge("m", memfd->get()).code(), ENOENT);
  EXPECT_EQ(file->merge("m", -1).code(), ENOENT);
}

TEST(SyncFile, MergeOfTheSameFenceIsThatFenceWithTheGivenName) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto fd = SyncFile::create(fence);
  ASSERT_TRUE(fd.ok());
  auto merged = (*SyncFile::fromFd(fd->get()))->merge("merged", fd->get());
  ASSERT_TRUE(merged.ok()) << merged.error().describe();
  auto file = *SyncFile::fromFd(merged->get());
  EXPECT_EQ(file->fence(), fence);
  EXPECT_EQ(file->name(), "merged");
  EXPECT_EQ(file->info(false).numFences, 1U);
  EXPECT_EQ(pollNow(merged->get()), 0);
  fence->signal();
  EXPECT_EQ(pollNow(merged->get()), POLLIN);
}

TEST(SyncFile, MergeOfTwoTimelinesWaitsForBoth) {
  auto a = Timeline::create("drv", "a")->createFence();
  auto b = Timeline::create("drv", "b")->createFence();
  auto fa = SyncFile::create(a);
  auto fb = SyncFile::create(b);
  ASSERT_TRUE(fa.ok() && fb.ok());
  auto merged = (*SyncFile::fromFd(fa->get()))->merge("", fb->get());
  ASSERT_TRUE(merged.ok());
  auto file = *SyncFile::fromFd(merged->get());
  auto info = file->info(true);
  ASSERT_EQ(info.numFences, 2U);
  EXPECT_EQ(info.fences[0].objName, "a");
  EXPECT_EQ(info.fences[1].objName, "b");
  a->signal();
  EXPECT_EQ(pollNow(merged->get()), 0);
  EXPECT_EQ(file->info(true).status, 0);
  b->signal();
  EXPECT_EQ(pollNow(merged->get()), POLLIN);
  EXPECT_EQ(file->info(true).status, 1);
}

TEST(SyncFile, MergeOfSignalledFencesIsASignalledStubWithTheLatestTimestamp) {
  auto a = Timeline::create("drv", "a")->createFence();
  auto b = Timeline::create("drv", "b")->createFence();
  a->signalWithTimestamp(100);
  b->signalWithTimestamp(200);
  auto fa = SyncFile::create(a);
  auto fb = SyncFile::create(b);
  ASSERT_TRUE(fa.ok() && fb.ok());
  auto merged = (*SyncFile::fromFd(fa->get()))->merge("done", fb->get());
  ASSERT_TRUE(merged.ok());
  auto file = *SyncFile::fromFd(merged->get());
  EXPECT_EQ(pollNow(merged->get()), POLLIN);
  auto info = file->info(true);
  ASSERT_EQ(info.numFences, 1U);
  EXPECT_EQ(info.status, 1);
  EXPECT_EQ(info.fences[0].timestampNs, 200U);
}

TEST(SyncFile, CloseThroughTheApiDropsTheEntryAndItsFence) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto fd = SyncFile::create(fence);
  ASSERT_TRUE(fd.ok());
  const long refs = fence.use_count();
  SyncFile::close(std::move(*fd));
  EXPECT_EQ(fence.use_count(), refs - 1);
  // The callback went with it: signalling afterwards touches nothing freed.
  fence->signal();
}

TEST(SyncFile, SignallingAfterTheLastReaderClosedRaisesNoSigpipe) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  {
    auto fd = SyncFile::create(fence);
    ASSERT_TRUE(fd.ok());
  }
  // The entry is still registered (not pruned) and its callback armed: the write hits a pipe
  // without readers, which must report EPIPE quietly instead of killing the process.
  fence->signal();
  (void)SyncFile::prune();
}

TEST(SyncFile, ADupKeepsTheFileAliveThroughClose) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto fd = SyncFile::create(fence);
  ASSERT_TRUE(fd.ok());
  auto dup = sys::dup(fd->get());
  ASSERT_TRUE(dup.ok());
  SyncFile::close(std::move(*fd));
  ASSERT_TRUE(SyncFile::getFence(dup->get()).ok());
  fence->signal();
  EXPECT_EQ(pollNow(dup->get()), POLLIN);
  const long refs = fence.use_count();
  dup->reset();
  (void)SyncFile::prune();
  EXPECT_EQ(fence.use_count(), refs - 1);
}

TEST(SyncFile, PlainlyClosedFilesArePrunedAndTheRegistryStaysBounded) {
  (void)SyncFile::prune();
  const std::size_t before = SyncFile::registeredCount();
  auto fence = Timeline::create("drv", "tl")->createFence();
  for (int i = 0; i < 1000; ++i) {
    auto fd = SyncFile::create(fence);
    ASSERT_TRUE(fd.ok());
    // fd closes here without telling the registry.
  }
  EXPECT_LE(SyncFile::registeredCount(), 2 * before + 64);
  (void)SyncFile::prune();
  EXPECT_EQ(SyncFile::registeredCount(), before);
  EXPECT_EQ(fence.use_count(), 1);
  fence->signal();
}

TEST(SyncFile, ConcurrentCreateSignalAndClose) {
  auto tl = Timeline::create("drv", "tl");
  std::vector<std::thread> threads;
  std::atomic<int> woken{0};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto fence = tl->createFence();
        auto fd = SyncFile::create(fence);
        ASSERT_TRUE(fd.ok());
        std::thread signaller([&] { fence->signal(); });
        auto r = sys::pollOne(fd->get(), POLLIN, 5000ms);
        signaller.join();
        if (r.ok() && *r == POLLIN) {
          ++woken;
        }
        SyncFile::close(std::move(*fd));
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(woken.load(), 400);
}

}  // namespace
}  // namespace zbuf
