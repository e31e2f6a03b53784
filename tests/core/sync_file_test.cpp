// ctest-labels: concurrency
#include "zbuf/core/sync_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "support/thread_state.h"
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
  auto created = SyncFile::create(fence);
  ASSERT_TRUE(created.ok()) << created.error().describe();
  const int fd = created->readEnd.get();
  EXPECT_EQ(pollNow(fd), 0);
  fence->signal();
  EXPECT_EQ(pollNow(fd), POLLIN);
  // Stays readable: nobody consumes the wake-up.
  EXPECT_EQ(pollNow(fd), POLLIN);
  EXPECT_EQ(pollNow(fd, POLLOUT), 0);
}

TEST(SyncFile, AlreadySignalledFenceIsReadableAtOnce) {
  auto created = SyncFile::create(Fence::stub());
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(pollNow(created->readEnd.get()), POLLIN);
}

TEST(SyncFile, ReadEndIsCloseOnExecAndReadOnly) {
  auto created = SyncFile::create(Fence::stub());
  ASSERT_TRUE(created.ok());
  ASSERT_NE(created->file, nullptr);
  const int fd = created->readEnd.get();
  EXPECT_EQ(*sys::getFdFlags(fd) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(*sys::getFileFlags(fd) & O_ACCMODE, O_RDONLY);
}

TEST(SyncFile, SignalFromAnotherThreadWakesPoll) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto created = SyncFile::create(fence);
  ASSERT_TRUE(created.ok());
  testing_support::ThreadMark polling;
  std::thread signaller([&] {
    (void)polling.waitUntilAsleep();  // the signal wakes a poll that sleeps
    fence->signal();
  });
  polling.mark();
  auto r = sys::pollOne(created->readEnd.get(), POLLIN, 5000ms);
  signaller.join();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, POLLIN);
}

// sync_file_get_fence (the fence behind an fd) is the file table's:
// tests/uapi/sync_file_fd_test.cpp.

TEST(SyncFile, GeneratedNameIsDriverTimelineContextSeqno) {
  auto tl = Timeline::create("drv", "tl");
  auto fence = tl->createFence(7);
  auto created = SyncFile::create(fence);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->file->name(), fmt::format("drv-tl{}-7", tl->context()));
  fence->signal();
}

TEST(SyncFile, NamesAreCutTo31Characters) {
  auto tl = Timeline::create(std::string(40, 'd'), "tl");
  auto fence = tl->createFence();
  auto generated = SyncFile::create(fence);
  ASSERT_TRUE(generated.ok());
  EXPECT_EQ(generated->file->name(), std::string(31, 'd'));
  auto named = SyncFile::create(fence, std::string(40, 'n'));
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->file->name(), std::string(31, 'n'));
  auto nul = SyncFile::create(fence, std::string_view("ab\0cd", 5));
  ASSERT_TRUE(nul.ok());
  EXPECT_EQ(nul->file->name(), "ab");
  fence->signal();
}

TEST(SyncFile, InfoReportsStatusTimestampAndNames) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto created = SyncFile::create(fence);
  ASSERT_TRUE(created.ok());
  const auto& file = created->file;
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
  auto created = SyncFile::create(fence);
  ASSERT_TRUE(created.ok());
  const auto& file = created->file;
  EXPECT_EQ(file->info(true).status, -EIO);
  EXPECT_EQ(file->info(true).fences[0].status, -EIO);
  EXPECT_EQ(file->info(false).status, -EIO);
}

TEST(SyncFile, SetDeadlineForwardsTheHint) {
  auto fence = std::make_shared<DeadlineFence>();
  auto created = SyncFile::create(fence);
  ASSERT_TRUE(created.ok());
  created->file->setDeadline(424242);
  EXPECT_EQ(fence->deadline.load(), 424242U);
  fence->signal();
}

// MERGE with an fd that is not a sync file (ENOENT) is the ioctl's check: tests/uapi.

TEST(SyncFile, MergeOfTheSameFenceIsThatFenceWithTheGivenName) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto created = SyncFile::create(fence);
  ASSERT_TRUE(created.ok());
  auto merged = created->file->merge("merged", *created->file);
  ASSERT_TRUE(merged.ok()) << merged.error().describe();
  const auto& file = merged->file;
  EXPECT_EQ(file->fence(), fence);
  EXPECT_EQ(file->name(), "merged");
  EXPECT_EQ(file->info(false).numFences, 1U);
  EXPECT_EQ(pollNow(merged->readEnd.get()), 0);
  fence->signal();
  EXPECT_EQ(pollNow(merged->readEnd.get()), POLLIN);
}

TEST(SyncFile, MergeOfTwoTimelinesWaitsForBoth) {
  auto a = Timeline::create("drv", "a")->createFence();
  auto b = Timeline::create("drv", "b")->createFence();
  auto fa = SyncFile::create(a);
  auto fb = SyncFile::create(b);
  ASSERT_TRUE(fa.ok() && fb.ok());
  auto merged = fa->file->merge("", *fb->file);
  ASSERT_TRUE(merged.ok());
  const auto& file = merged->file;
  auto info = file->info(true);
  ASSERT_EQ(info.numFences, 2U);
  EXPECT_EQ(info.fences[0].objName, "a");
  EXPECT_EQ(info.fences[1].objName, "b");
  a->signal();
  EXPECT_EQ(pollNow(merged->readEnd.get()), 0);
  EXPECT_EQ(file->info(true).status, 0);
  b->signal();
  EXPECT_EQ(pollNow(merged->readEnd.get()), POLLIN);
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
  auto merged = fa->file->merge("done", *fb->file);
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ(pollNow(merged->readEnd.get()), POLLIN);
  auto info = merged->file->info(true);
  ASSERT_EQ(info.numFences, 1U);
  EXPECT_EQ(info.status, 1);
  EXPECT_EQ(info.fences[0].timestampNs, 200U);
}

TEST(SyncFile, DroppingTheObjectDropsItsFenceAndCallback) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto created = SyncFile::create(fence);
  ASSERT_TRUE(created.ok());
  const long refs = fence.use_count();
  created->file.reset();
  EXPECT_EQ(fence.use_count(), refs - 1);
  // The callback went with it: signalling afterwards touches nothing freed.
  fence->signal();
}

TEST(SyncFile, SignallingAfterTheLastReaderClosedRaisesNoSigpipe) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto created = SyncFile::create(fence);
  ASSERT_TRUE(created.ok());
  // Every read end closed, the object (and its armed callback) still alive: the write hits a
  // pipe without readers, which must report EPIPE quietly instead of killing the process.
  created->readEnd.reset();
  fence->signal();
  EXPECT_TRUE(fence->isSignaled());
}

// How long the object lives behind its fds (dup, close(2), a child's copy) is the file table's
// rule: tests/uapi/sync_file_fd_test.cpp and tests/uapi/lifetime_test.cpp.

TEST(SyncFile, ConcurrentCreateSignalAndDrop) {
  auto tl = Timeline::create("drv", "tl");
  std::vector<std::thread> threads;
  std::atomic<int> woken{0};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto fence = tl->createFence();
        auto created = SyncFile::create(fence);
        ASSERT_TRUE(created.ok());
        std::thread signaller([&] { fence->signal(); });
        auto r = sys::pollOne(created->readEnd.get(), POLLIN, 5000ms);
        signaller.join();
        if (r.ok() && *r == POLLIN) {
          ++woken;
        }
        created->readEnd.reset();
        created->file.reset();
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
