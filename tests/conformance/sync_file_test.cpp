// ctest-labels: concurrency
// Mirrors of the kernel's sync-file selftests (tools/testing/selftests/sync/) that apply to
// zbuf: sync_fence.c, sync_merge.c, sync_wait.c, sync_stress_consumer.c,
// sync_stress_parallelism.c and sync_stress_merge.c (bounded). The selftests drive sw_sync
// timelines through debugfs; SwTimeline below is the same thing in process (fences signal when
// the timeline value reaches their seqno). Everything else goes through the kernel's ioctl
// numbers and structs via zbuf::uapi::ioctl, the way libsync does it.
#include "zbuf/core/sync_file.h"

#include <gtest/gtest.h>
#include <linux/sync_file.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "zbuf/base/sys.h"
#include "zbuf/uapi/calls.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;

// sw_sync: a timeline with a value; a fence at seqno N signals once the value reaches N.
class SwTimeline {
 public:
  SwTimeline() : timeline_(Timeline::create("sw_sync", "sw_sync_timeline")) {}
  ~SwTimeline() { inc(UINT32_MAX); }

  // sw_sync_fence_create: a sync file for point `seqno`.
  UniqueFd createFence(std::uint64_t seqno) {
    auto fence = timeline_->createFence(seqno);
    {
      const std::lock_guard lock(mutex_);
      if (seqno > value_) {
        pending_.push_back(fence);
      } else {
        fence->signal();
      }
    }
    auto fd = uapi::Context::current().installSyncFile(fence);
    EXPECT_TRUE(fd.ok());
    return std::move(*fd);
  }

  // sw_sync_timeline_inc: advances the value and signals every point reached, in order.
  void inc(std::uint64_t by) {
    std::vector<FencePtr> reached;
    {
      const std::lock_guard lock(mutex_);
      value_ += by;
      std::sort(pending_.begin(), pending_.end(),
                [](const FencePtr& a, const FencePtr& b) { return a->seqno() < b->seqno(); });
      auto split = std::find_if(pending_.begin(), pending_.end(),
                                [&](const FencePtr& f) { return f->seqno() > value_; });
      reached.assign(pending_.begin(), split);
      pending_.erase(pending_.begin(), split);
    }
    for (auto& f : reached) {
      f->signal();
    }
  }

 private:
  std::shared_ptr<Timeline> timeline_;
  std::mutex mutex_;  // guards value_ and pending_
  std::uint64_t value_ = 0;
  std::vector<FencePtr> pending_;
};

// libsync's helpers, on zbuf::uapi::ioctl with the kernel's structs.
int syncWait(int fd, int timeoutMs) {
  auto r = sys::pollOne(fd, POLLIN, std::chrono::milliseconds(timeoutMs));
  if (!r.ok()) {
    return -1;
  }
  if ((*r & POLLIN) == 0) {
    return 0;
  }
  // The kernel orders the signaller's writes before poll's return; ThreadSanitizer cannot see
  // that edge through poll(2), so read the fence state (an acquire) as a real waiter would.
  auto fence = uapi::Context::current().syncFileFence(fd);
  return fence.ok() && (*fence)->isSignaled() ? 1 : 0;
}

UniqueFd syncMerge(const char* name, int fd1, int fd2) {
  sync_merge_data data{};
  std::strncpy(data.name, name, sizeof data.name - 1);
  data.fd2 = fd2;
  auto r = uapi::ioctl(fd1, SYNC_IOC_MERGE, &data);
  EXPECT_TRUE(r.ok()) << r.error().describe();
  return r.ok() ? UniqueFd::adopt(data.fence) : UniqueFd();
}

std::vector<sync_fence_info> syncFileInfo(int fd) {
  sync_file_info info{};
  if (!uapi::ioctl(fd, SYNC_IOC_FILE_INFO, &info).ok()) {
    ADD_FAILURE() << "FILE_INFO count failed";
    return {};
  }
  std::vector<sync_fence_info> leaves(info.num_fences);
  info.sync_fence_info = reinterpret_cast<std::uintptr_t>(leaves.data());
  if (!uapi::ioctl(fd, SYNC_IOC_FILE_INFO, &info).ok()) {
    ADD_FAILURE() << "FILE_INFO fill failed";
    return {};
  }
  leaves.resize(info.num_fences);
  return leaves;
}

std::size_t syncFenceSize(int fd) {
  return syncFileInfo(fd).size();
}

constexpr int kActive = 0;
constexpr int kSignaled = 1;
constexpr int kError = -1;  // any negative status

int countWithStatus(int fd, int status) {
  int n = 0;
  for (const auto& leaf : syncFileInfo(fd)) {
    if ((status == kError && leaf.status < 0) || leaf.status == status) {
      ++n;
    }
  }
  return n;
}

// sync_fence.c: test_fence_one_timeline_wait
TEST(SyncFence, OneTimelineWait) {
  SwTimeline timeline;
  UniqueFd fence = timeline.createFence(5);
  EXPECT_EQ(syncWait(fence.get(), 0), 0);
  timeline.inc(1);
  EXPECT_EQ(syncWait(fence.get(), 0), 0);
  timeline.inc(4);
  EXPECT_GT(syncWait(fence.get(), 0), 0);
  timeline.inc(10);
  EXPECT_GT(syncWait(fence.get(), 0), 0);
}

// sync_fence.c: test_fence_one_timeline_merge
TEST(SyncFence, OneTimelineMerge) {
  SwTimeline timeline;
  UniqueFd a = timeline.createFence(1);
  UniqueFd b = timeline.createFence(2);
  UniqueFd c = timeline.createFence(3);
  UniqueFd d = syncMerge("mergeFence", b.get(), a.get());
  d = syncMerge("mergeFence", c.get(), d.get());
  ASSERT_TRUE(d.isValid());
  EXPECT_EQ(countWithStatus(a.get(), kActive), 1);
  EXPECT_EQ(countWithStatus(b.get(), kActive), 1);
  EXPECT_EQ(countWithStatus(c.get(), kActive), 1);
  EXPECT_EQ(countWithStatus(d.get(), kActive), 1);  // one point per timeline is kept

  timeline.inc(1);
  EXPECT_EQ(countWithStatus(a.get(), kSignaled), 1);
  EXPECT_EQ(countWithStatus(d.get(), kActive), 1);
  timeline.inc(1);
  EXPECT_EQ(countWithStatus(b.get(), kSignaled), 1);
  EXPECT_EQ(countWithStatus(d.get(), kActive), 1);
  timeline.inc(1);
  EXPECT_EQ(countWithStatus(c.get(), kSignaled), 1);
  EXPECT_EQ(countWithStatus(d.get(), kActive), 0);
  EXPECT_EQ(countWithStatus(d.get(), kSignaled), 1);
}

// sync_merge.c: test_fence_merge_same_fence
TEST(SyncMerge, MergeSameFence) {
  SwTimeline timeline;
  UniqueFd fence = timeline.createFence(5);
  UniqueFd merged = syncMerge("mergeFence", fence.get(), fence.get());
  ASSERT_TRUE(merged.isValid());
  EXPECT_EQ(countWithStatus(merged.get(), kSignaled), 0);
  timeline.inc(5);
  EXPECT_EQ(countWithStatus(merged.get(), kSignaled), 1);
}

// sync_wait.c: test_fence_multi_timeline_wait
TEST(SyncWait, MultiTimelineWait) {
  SwTimeline timelineA;
  SwTimeline timelineB;
  SwTimeline timelineC;
  UniqueFd fenceA = timelineA.createFence(5);
  UniqueFd fenceB = timelineB.createFence(5);
  UniqueFd fenceC = timelineC.createFence(5);
  UniqueFd merged = syncMerge("mergeFence", fenceB.get(), fenceA.get());
  merged = syncMerge("mergeFence", fenceC.get(), merged.get());
  ASSERT_TRUE(merged.isValid());

  EXPECT_EQ(countWithStatus(merged.get(), kActive), 3);
  EXPECT_EQ(syncWait(merged.get(), 0), 0);

  timelineA.inc(5);
  EXPECT_EQ(countWithStatus(merged.get(), kActive), 2);
  EXPECT_EQ(countWithStatus(merged.get(), kSignaled), 1);
  timelineB.inc(5);
  EXPECT_EQ(countWithStatus(merged.get(), kActive), 1);
  EXPECT_EQ(countWithStatus(merged.get(), kSignaled), 2);
  timelineC.inc(5);
  EXPECT_EQ(countWithStatus(merged.get(), kActive), 0);
  EXPECT_EQ(countWithStatus(merged.get(), kSignaled), 3);

  EXPECT_GT(syncWait(merged.get(), 100), 0);
}

// sync_stress_parallelism.c: test_stress_two_threads_shared_timeline (bounded: 2^10 rounds
// per thread instead of 2^16).
TEST(SyncStressParallelism, TwoThreadsSharedTimeline) {
  constexpr int kIterations = 1 << 10;
  SwTimeline timeline;
  int counter = 0;  // ordered by the fences: each thread waits for the other's increment
  auto worker = [&](int threadId) {
    for (int i = 0; i < kIterations; ++i) {
      UniqueFd fence = timeline.createFence(static_cast<std::uint64_t>(i) * 2 + threadId);
      ASSERT_GT(syncWait(fence.get(), 10'000), 0) << "problem on the prior thread";
      ASSERT_EQ(counter, i * 2 + threadId) << "counter got damaged";
      ++counter;
      timeline.inc(1);
    }
  };
  std::thread a(worker, 0);
  std::thread b(worker, 1);
  a.join();
  b.join();
  EXPECT_EQ(counter, kIterations * 2);
}

// sync_stress_consumer.c: test_consumer_stress_multi_producer_single_consumer (bounded: 2^8
// rounds instead of 2^12; five producers as in the original).
TEST(SyncStressConsumer, MultiProducerSingleConsumer) {
  constexpr int kIterations = 1 << 8;
  constexpr int kProducers = 5;
  SwTimeline consumerTimeline;
  std::array<SwTimeline, kProducers> producerTimelines;
  std::mutex counterLock;
  int counter = 0;  // guarded by counterLock

  auto busyWait = [](int fd) {
    for (;;) {
      EXPECT_EQ(countWithStatus(fd, kError), 0) << "error occurred on fence";
      if (countWithStatus(fd, kActive) == 0) {
        return;
      }
      std::this_thread::yield();
    }
  };

  auto producer = [&](int id) {
    for (int i = 0; i < kIterations; ++i) {
      UniqueFd fence = consumerTimeline.createFence(static_cast<std::uint64_t>(i));
      // Vary the means of waiting, as the original does.
      if ((kIterations + id) % 8 != 0) {
        ASSERT_GT(syncWait(fence.get(), 10'000), 0);
      } else {
        busyWait(fence.get());
      }
      {
        const std::lock_guard lock(counterLock);
        ++counter;
      }
      producerTimelines[static_cast<std::size_t>(id)].inc(1);
    }
  };

  std::vector<std::thread> threads;
  for (int id = 0; id < kProducers; ++id) {
    threads.emplace_back(producer, id);
  }
  for (int it = 1; it <= kIterations; ++it) {
    UniqueFd fence = producerTimelines[0].createFence(static_cast<std::uint64_t>(it));
    for (std::size_t i = 1; i < kProducers; ++i) {
      UniqueFd tmp = producerTimelines[i].createFence(static_cast<std::uint64_t>(it));
      fence = syncMerge("name", tmp.get(), fence.get());
      ASSERT_TRUE(fence.isValid());
    }
    if (it % 8 != 0) {
      ASSERT_GT(syncWait(fence.get(), 10'000), 0) << "producers did not increment";
    } else {
      busyWait(fence.get());
    }
    {
      const std::lock_guard lock(counterLock);
      ASSERT_EQ(counter, kProducers * it) << "counter value mismatch";
    }
    consumerTimeline.inc(1);
  }
  for (auto& t : threads) {
    t.join();
  }
}

// sync_stress_merge.c: test_merge_stress_random_merge (bounded: 2048 merges instead of 32768,
// a fixed seed so a failure can be replayed).
TEST(SyncStressMerge, RandomMerge) {
  constexpr std::size_t kTimelines = 32;
  constexpr int kMerges = 2048;
  std::array<SwTimeline, kTimelines> timelines;
  std::array<std::int64_t, kTimelines> fenceMap;
  fenceMap.fill(-1);
  std::mt19937 rng(20161103);
  std::uniform_int_distribution<std::size_t> pickTimeline(0, kTimelines - 1);
  std::uniform_int_distribution<std::int64_t> pickPoint(1, 1'000'000);

  UniqueFd fence = timelines[0].createFence(1);
  fenceMap[0] = 1;
  for (int i = 0; i < kMerges; ++i) {
    const std::size_t t = pickTimeline(rng);
    const std::int64_t point = pickPoint(rng);
    fenceMap[t] = std::max(fenceMap[t], point);
    UniqueFd tmp = timelines[t].createFence(static_cast<std::uint64_t>(point));
    fence = syncMerge("merge", tmp.get(), fence.get());
    ASSERT_TRUE(fence.isValid());
  }
  const auto size = static_cast<std::size_t>(
      std::count_if(fenceMap.begin(), fenceMap.end(), [](std::int64_t p) { return p != -1; }));
  ASSERT_EQ(syncFenceSize(fence.get()), size) << "quantity of elements not matching";

  for (std::size_t i = 0; i < kTimelines; ++i) {
    if (fenceMap[i] != -1) {
      ASSERT_EQ(syncWait(fence.get(), 0), 0) << "signalled before timeline " << i;
      timelines[i].inc(static_cast<std::uint64_t>(fenceMap[i]));
    }
  }
  EXPECT_GT(syncWait(fence.get(), 0), 0) << "failure triggering fence";
}

}  // namespace
}  // namespace zbuf
