// ctest-labels: concurrency
// Mirrors IGT's tests/sw_sync.c, subtest by subtest (IGT's name in each test's comment), on both
// kernels: the embedded Context and zbufd (tests/support/both_contexts.h). The helpers are IGT's
// lib/sw_sync.c on uapi::FdCalls, with plain fd numbers as IGT has them; every close goes
// through the calls, so a timeline's release is done when close() returns, as in the kernel.
//
// Where the mirror differs from IGT, and why:
//  - Loops IGT bounds by one second of wall time (igt_until_timeout) run a fixed number of
//    rounds, and every wait IGT makes with a short timeout that only a failure reaches is given
//    a generous one: the tests wait on conditions, never on time.
//  - sync_busy_fork's child increments at once, not after sleeping a second: the parent checks
//    first that the fence is pending, then waits for it.
//  - The fork subtests start a child process (this binary re-executed) that connects to the
//    daemon and increments the timeline fd it inherited (or received by SCM_RIGHTS), then exits
//    by itself. They run on the daemon only: an embedded context lives in its process, so a
//    child's increment would move its own copy of the timeline (docs/uapi.md, "sw_sync").
//  - sync_merge_invalid merges with a dma-heap device fd where IGT uses a DRM device.
//  - sync_random_merge uses a fixed seed and points from 1 (rand() may give 0, a point already
//    passed, which the merge would drop and IGT's last check would then fail on).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <random>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "support/both_contexts.h"
#include "support/spawn.h"
#include "zbuf/base/sys.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/uapi/abi.h"

namespace zbuf {
namespace {

constexpr const char* kSwSyncPath = "/sys/kernel/debug/sync/sw_sync";
// IGT's SW_SYNC_FENCE_STATUS_*: what sync_fence_count_status compares each fence's status with.
constexpr int kStatusError = -1;
constexpr int kStatusActive = 0;
constexpr int kStatusSignaled = 1;
// A wait that only a failing test runs out (IGT's timeouts are 1 to 2 s).
constexpr int kLongWaitMs = 10'000;

// --- the fork subtests' child ----------------------------------------------------------------
// ZBUF_SW_SYNC_CHILD=<mode>:<socket>: connect to the daemon at <socket>, take the timeline (fd 3
// for "inherit"; received on the socket at fd 3 for "unixsocket"), advance it by one, exit 0.
// Anything else exits with a code naming the step that failed.
constexpr int kChildFd = 3;  // testing_support::spawn's fd3

[[noreturn]] void swSyncChild(const std::string& spec) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the test
  const auto colon = spec.find(':');
  if (colon == std::string::npos) {
    ::_exit(10);
  }
  const std::string mode = spec.substr(0, colon);
  auto k = ipc::RemoteContext::connect(spec.substr(colon + 1));
  if (!k.ok()) {
    ::_exit(11);
  }
  int timeline = kChildFd;
  UniqueFd received;
  if (mode == "unixsocket") {
    std::array<std::byte, 256> message{};
    auto r = sys::recvWithFds(kChildFd, message, 1);
    if (!r.ok() || r->fds.size() != 1) {
      ::_exit(12);
    }
    received = std::move(r->fds[0]);
    timeline = received.get();
  }
  std::uint32_t one = 1;  // "Advance timeline from 0 -> 1"
  if (!(*k)->ioctl(timeline, uapi::kSwSyncIocInc, &one).ok()) {
    ::_exit(13);
  }
  ::_exit(0);
}

[[maybe_unused]] const bool kIsChild = [] {
  if (const char* s = std::getenv("ZBUF_SW_SYNC_CHILD"); s != nullptr) {
    swSyncChild(s);
  }
  return false;
}();

// Starts this binary as the child with `fd` as its fd 3.
pid_t spawnChild(const std::string& spec, int fd) {
  return testing_support::spawn({"/proc/self/exe"}, {"ZBUF_SW_SYNC_CHILD=" + spec}, nullptr, fd);
}

// The child's exit status (-1 if it did not exit normally).
int waitChild(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
    return -1;
  }
  return WEXITSTATUS(status);
}

// --- IGT's lib/sw_sync.c on FdCalls ----------------------------------------------------------
class IgtSwSync : public testing_support::BothContexts {
 protected:
  // sw_sync_timeline_create
  int timelineCreate() {
    auto fd = calls->open(kSwSyncPath, O_RDWR);
    EXPECT_TRUE(fd.ok()) << fd.error().describe();
    return fd.ok() ? fd->release() : -1;
  }
  // __sw_sync_timeline_create_fence: the fence's fd, or minus the errno.
  int createFenceRaw(int timeline, std::uint32_t seqno) {
    uapi::SwSyncCreateFenceData data{};
    data.value = seqno;
    data.fence = -1;
    auto r = calls->ioctl(timeline, uapi::kSwSyncIocCreateFence, &data);
    return r.ok() ? data.fence : -r.code();
  }
  // sw_sync_timeline_create_fence: asserts success.
  int createFence(int timeline, std::uint32_t seqno) {
    const int fd = createFenceRaw(timeline, seqno);
    EXPECT_GE(fd, 0) << "create_fence(" << timeline << ", " << seqno << "): " << -fd;
    return fd;
  }
  // sw_sync_timeline_inc
  void inc(int timeline, std::uint32_t count) {
    auto r = calls->ioctl(timeline, uapi::kSwSyncIocInc, &count);
    EXPECT_TRUE(r.ok()) << r.error().describe();
  }
  // sync_fence_wait: 0 once signalled, -ETIME on timeout (timeoutMs < 0: forever).
  int wait(int fence, int timeoutMs) {
    std::array<struct pollfd, 1> p{{{fence, POLLIN, 0}}};
    auto n = calls->poll(p, timeoutMs);
    if (!n.ok()) {
      return -n.code();
    }
    if (*n == 0) {
      return -ETIME;
    }
    return (p[0].revents & POLLIN) != 0 ? 0 : -EINVAL;
  }
  // sync_file_info: the file and its fences.
  std::vector<uapi::SyncFenceInfo> fileInfo(int fence, uapi::SyncFileInfo& info) {
    info = {};
    if (!calls->ioctl(fence, uapi::kSyncIocFileInfo, &info).ok()) {
      return {};
    }
    std::vector<uapi::SyncFenceInfo> fences(info.numFences);
    info.syncFenceInfo = reinterpret_cast<std::uintptr_t>(fences.data());
    auto r = calls->ioctl(fence, uapi::kSyncIocFileInfo, &info);
    EXPECT_TRUE(r.ok()) << r.error().describe();
    fences.resize(info.numFences);
    return fences;
  }
  // sync_fence_status
  int status(int fence) {
    uapi::SyncFileInfo info{};
    auto r = calls->ioctl(fence, uapi::kSyncIocFileInfo, &info);
    return r.ok() ? info.status : -r.code();
  }
  // sync_fence_count_status: how many of the file's fences have status `s` exactly.
  int countStatus(int fence, int s) {
    uapi::SyncFileInfo info{};
    const auto fences = fileInfo(fence, info);
    return static_cast<int>(
        std::count_if(fences.begin(), fences.end(), [&](const auto& f) { return f.status == s; }));
  }
  // sync_fence_merge: the merged fd, or minus the errno.
  int merge(int a, int b) {
    uapi::SyncMergeData data{};
    std::strncpy(data.name, "igt-merge", sizeof data.name);
    data.fd2 = b;
    auto r = calls->ioctl(a, uapi::kSyncIocMerge, &data);
    return r.ok() ? data.fence : -r.code();
  }
  void close(int fd) { EXPECT_TRUE(calls->close(fd).ok()) << fd; }

  // A sw_sync child is a client of the daemon: only the daemon's state is shared with it.
};

// alloc_timeline
TEST_P(IgtSwSync, AllocTimeline) {
  const int timeline = timelineCreate();
  ASSERT_GE(timeline, 0);
  close(timeline);
}

// alloc_fence
TEST_P(IgtSwSync, AllocFence) {
  const int timeline = timelineCreate();
  const int fence = createFence(timeline, 0);
  // What FILE_INFO reports for it: sw_sync's names, the timeline named after this process.
  uapi::SyncFileInfo info{};
  const auto fences = fileInfo(fence, info);
  ASSERT_EQ(fences.size(), 1U);
  EXPECT_STREQ(fences[0].driverName, "sw_sync");
  std::string comm;
  {
    std::array<char, 17> buf{};
    ASSERT_EQ(::prctl(PR_GET_NAME, buf.data()), 0);  // the test's thread is the process's
    comm = buf.data();
  }
  EXPECT_EQ(std::string(fences[0].objName), comm);
  EXPECT_EQ(fences[0].status, kStatusSignaled);
  EXPECT_EQ(std::string(info.name).rfind("sw_sync-" + comm, 0), 0U) << info.name;
  close(fence);
  close(timeline);
}

// alloc_fence_invalid_timeline
TEST_P(IgtSwSync, AllocFenceInvalidTimeline) {
  EXPECT_LT(createFenceRaw(-1, 0), 0);
  EXPECT_EQ(createFenceRaw(-1, 0), -EBADF);
  // Not a timeline: a sync file does not know the request.
  const int timeline = timelineCreate();
  const int fence = createFence(timeline, 0);
  EXPECT_EQ(createFenceRaw(fence, 0), -ENOTTY);
  close(fence);
  close(timeline);
}

// timeline_closed
TEST_P(IgtSwSync, TimelineClosed) {
  const int timeline = timelineCreate();
  const int fence = createFence(timeline, 1);
  close(timeline);
  EXPECT_EQ(wait(fence, 0), 0) << "Failure waiting on unsignaled fence on closed timeline";
  EXPECT_EQ(status(fence), -ENOENT)
      << "Failure in marking up an unsignaled fence on closed timeline";
  close(fence);
}

// timeline_closed_signaled
TEST_P(IgtSwSync, TimelineClosedSignaled) {
  const int timeline = timelineCreate();
  const int fence = createFence(timeline, 1);
  inc(timeline, 1);
  close(timeline);
  EXPECT_EQ(wait(fence, 0), 0) << "Failure waiting on signaled fence for closed timeline";
  EXPECT_EQ(status(fence), 1);
  close(fence);
}

// alloc_merge_fence
TEST_P(IgtSwSync, AllocMergeFence) {
  const std::array<int, 2> timeline{timelineCreate(), timelineCreate()};
  const std::array<int, 2> in{createFence(timeline[0], 1), createFence(timeline[1], 1)};
  const int merged = merge(in[1], in[0]);
  EXPECT_GE(merged, 0);
  close(in[0]);
  close(in[1]);
  close(merged);
  close(timeline[0]);
  close(timeline[1]);
}

// sync_busy
TEST_P(IgtSwSync, SyncBusy) {
  const int timeline = timelineCreate();
  const int fence = createFence(timeline, 5);
  EXPECT_EQ(wait(fence, 0), -ETIME) << "Fence signaled early (timeline value 0, fence seqno 5)";
  inc(timeline, 1);
  EXPECT_EQ(wait(fence, 0), -ETIME) << "Fence signaled early (timeline value 1, fence seqno 5)";
  inc(timeline, 4);
  EXPECT_EQ(wait(fence, 0), 0) << "Fence not signaled (timeline value 5, fence seqno 5)";
  inc(timeline, 5);
  EXPECT_EQ(wait(fence, 0), 0) << "Fence not signaled (timeline value 10, fence seqno 5)";
  std::uint32_t seqno = 10;
  for (std::uint32_t prime = 2; prime < 100; ++prime) {  // for_each_prime_number(prime, 100)
    bool isPrime = true;
    for (std::uint32_t d = 2; d * d <= prime; ++d) {
      isPrime = isPrime && prime % d != 0;
    }
    if (!isPrime) {
      continue;
    }
    seqno += prime;
    const int fencePrime = createFence(timeline, seqno);
    inc(timeline, prime);
    EXPECT_EQ(wait(fencePrime, 0), 0)
        << "Fence not signaled during test of prime timeline increments";
    close(fencePrime);
  }
  close(fence);
  close(timeline);
}

// The fork subtests: a child process advances a timeline it shares with the parent, which only
// zbufd can give two processes (an embedded context lives in its own process: a child would
// advance its own copy), so they run on the daemon alone.
class IgtSwSyncFork : public IgtSwSync {};

// sync_busy_fork
TEST_P(IgtSwSyncFork, SyncBusyFork) {
  const int timeline = timelineCreate();
  const int fence = createFence(timeline, 1);
  ASSERT_EQ(wait(fence, 0), -ETIME) << "Fence signaled (it should not have been signalled yet)";
  const pid_t child = spawnChild("inherit:" + server->socketPath(), timeline);
  ASSERT_GT(child, 0);
  EXPECT_EQ(wait(fence, kLongWaitMs), 0) << "Fence not signaled (timeline value 1 fence seqno 1)";
  EXPECT_EQ(waitChild(child), 0);
  close(fence);
  close(timeline);
}

// sync_busy_fork_unixsocket
TEST_P(IgtSwSyncFork, SyncBusyForkUnixsocket) {
  std::array<int, 2> sv{-1, -1};
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv.data()), 0);
  UniqueFd parentEnd = UniqueFd::adopt(sv[0]);
  UniqueFd childEnd = UniqueFd::adopt(sv[1]);
  const int timeline = timelineCreate();
  const int fence = createFence(timeline, 1);
  const pid_t child = spawnChild("unixsocket:" + server->socketPath(), childEnd.get());
  ASSERT_GT(child, 0);
  childEnd.reset();
  EXPECT_EQ(wait(fence, 0), -ETIME) << "Fence signaled (it should not have been signalled yet)";
  const std::array<std::byte, 3> abc{std::byte{'A'}, std::byte{'B'}, std::byte{'C'}};
  const std::array<int, 1> fds{timeline};
  ASSERT_TRUE(sys::sendWithFds(parentEnd.get(), abc, fds).ok());
  EXPECT_EQ(wait(fence, kLongWaitMs), 0) << "Fence not signaled (timeline value 1 fence seqno 1)";
  EXPECT_EQ(waitChild(child), 0);
  close(fence);
  close(timeline);
}

// sync_merge_invalid
TEST_P(IgtSwSync, SyncMergeInvalid) {
  const int timeline = timelineCreate();
  const int in = createFence(timeline, 1);
  EXPECT_EQ(merge(in, -1), -ENOENT) << "Verify invalid fd (-1) handling";
  UniqueFd device = open("/dev/dma_heap/system", O_RDONLY);
  EXPECT_EQ(merge(in, device.get()), -ENOENT) << "Verify invalid fd (device fd) handling";
  auto file = sys::memfdCreate("igt-file", MFD_CLOEXEC);  // IGT: mkstemp's file
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(merge(in, file->get()), -ENOENT) << "Verify invalid fd (file fd) handling";
  close(in);
  close(timeline);
}

// sync_merge
TEST_P(IgtSwSync, SyncMerge) {
  const int timeline = timelineCreate();
  const std::array<int, 3> in{createFence(timeline, 1), createFence(timeline, 2),
                              createFence(timeline, 3)};
  const int m01 = merge(in[0], in[1]);
  const int merged = merge(in[2], m01);
  for (int fd : in) {
    EXPECT_EQ(countStatus(fd, kStatusActive), 1) << "in_fence has too many active fences";
  }
  // One timeline: the merge keeps its latest point only.
  EXPECT_EQ(countStatus(merged, kStatusActive), 1) << "fence_merge has too many active fences";
  inc(timeline, 1);
  EXPECT_EQ(countStatus(in[0], kStatusSignaled), 1) << "in_fence[0] did not signal";
  EXPECT_EQ(countStatus(merged, kStatusActive), 1) << "fence_merge signaled too early";
  inc(timeline, 1);
  EXPECT_EQ(countStatus(in[1], kStatusSignaled), 1) << "in_fence[1] did not signal";
  EXPECT_EQ(countStatus(merged, kStatusActive), 1) << "fence_merge signaled too early";
  inc(timeline, 1);
  EXPECT_EQ(countStatus(in[2], kStatusSignaled), 1) << "in_fence[2] did not signal";
  EXPECT_EQ(countStatus(merged, kStatusSignaled), 1) << "fence_merge did not signal";
  EXPECT_EQ(countStatus(merged, kStatusActive), 0) << "fence_merge did not signal";
  for (int fd : in) {
    close(fd);
  }
  close(m01);
  close(merged);
  close(timeline);
}

// sync_merge_same
TEST_P(IgtSwSync, SyncMergeSame) {
  const int timeline = timelineCreate();
  const int in0 = createFence(timeline, 1);
  const int in1 = merge(in0, in0);
  EXPECT_GE(in1, 0);
  EXPECT_EQ(countStatus(in0, kStatusSignaled), 0) << "Fence signaled too early";
  inc(timeline, 1);
  EXPECT_EQ(countStatus(in0, kStatusSignaled), 1) << "Fence did not signal";
  EXPECT_EQ(countStatus(in1, kStatusSignaled), 1);
  close(in0);
  close(in1);
  close(timeline);
}

// sync_multi_timeline_wait
TEST_P(IgtSwSync, SyncMultiTimelineWait) {
  const std::array<int, 3> timeline{timelineCreate(), timelineCreate(), timelineCreate()};
  const std::array<int, 3> in{createFence(timeline[0], 5), createFence(timeline[1], 5),
                              createFence(timeline[2], 5)};
  const int m01 = merge(in[0], in[1]);
  const int merged = merge(in[2], m01);
  EXPECT_EQ(countStatus(merged, kStatusActive), 3) << "Fence signaled too early";
  EXPECT_EQ(wait(merged, 0), -ETIME) << "Failure waiting on fence until timeout";
  for (int i = 0; i < 3; ++i) {
    inc(timeline.at(i), 5);
    EXPECT_EQ(countStatus(merged, kStatusActive), 2 - i) << "Fence did not signal properly";
    EXPECT_EQ(countStatus(merged, kStatusSignaled), i + 1) << "Fence did not signal properly";
  }
  EXPECT_EQ(wait(merged, kLongWaitMs), 0) << "Failure waiting on signaled fence";
  for (int fd : in) {
    close(fd);
  }
  close(m01);
  close(merged);
  for (int fd : timeline) {
    close(fd);
  }
}

// IGT: min(MULTI_CONSUMER_THREADS, the online CPUs).
int consumerThreads() {
  return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1U, 8U));
}

// sync_multi_consumer: the consumers each wait for their own points in turn; the producer
// advances the timeline one step for every point consumed, so each consumer sees the counter
// at exactly its point.
TEST_P(IgtSwSync, SyncMultiConsumer) {
  const int threads = consumerThreads();
  constexpr int iterations = 1 << 12;  // MULTI_CONSUMER_ITERATIONS
  const int timeline = timelineCreate();
  std::atomic<std::uint32_t> counter{0};
  std::counting_semaphore<> sem(0);
  std::atomic<bool> failed{false};
  std::vector<std::thread> consumers;
  consumers.reserve(threads);
  for (int id = 0; id < threads; ++id) {
    consumers.emplace_back([&, id] {
      for (int i = 0; i < iterations; ++i) {
        const auto next = static_cast<std::uint32_t>(i * threads + id);
        const int fence = createFenceRaw(timeline, next);
        // A failed thread still posts, so that the producer's loop ends.
        if (fence < 0 || wait(fence, kLongWaitMs) < 0 || counter.load() != next) {
          failed.store(true);
        }
        sem.release();
        if (fence >= 0) {
          (void)calls->close(fence);
        }
      }
    });
  }
  for (int i = 0; i < threads * iterations; ++i) {
    if (!sem.try_acquire_for(std::chrono::milliseconds(kLongWaitMs))) {
      failed.store(true);  // a consumer is stuck: closing the timeline below releases it
      break;
    }
    counter.fetch_add(1);
    inc(timeline, 1);
  }
  if (failed.load()) {
    close(timeline);  // signals what is pending: the consumers finish (and report)
  }
  for (auto& t : consumers) {
    t.join();
  }
  ASSERT_FALSE(failed.load()) << "A sync thread reported failure.";
  close(timeline);
  EXPECT_EQ(counter.load(), static_cast<std::uint32_t>(threads * iterations));
}

// sync_multi_consumer_producer: each thread waits for its point, then advances the timeline to
// kick off the next thread's.
TEST_P(IgtSwSync, SyncMultiConsumerProducer) {
  const int threads = consumerThreads();
  constexpr int iterations = 1 << 12;  // MULTI_CONSUMER_ITERATIONS
  const int timeline = timelineCreate();
  std::atomic<std::uint32_t> counter{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int id = 0; id < threads; ++id) {
    workers.emplace_back([&, id] {
      for (int i = 0; i < iterations && !failed.load(); ++i) {
        const auto next = static_cast<std::uint32_t>(i * threads + id);
        const int fence = createFenceRaw(timeline, next);
        if (fence < 0 || wait(fence, kLongWaitMs) < 0 || counter.fetch_add(1) != next) {
          failed.store(true);
        }
        std::uint32_t one = 1;  // kick off the next thread
        (void)calls->ioctl(timeline, uapi::kSwSyncIocInc, &one);
        if (fence >= 0) {
          (void)calls->close(fence);
        }
      }
    });
  }
  for (auto& t : workers) {
    t.join();
  }
  close(timeline);
  EXPECT_FALSE(failed.load()) << "A sync thread reported failure.";
  EXPECT_EQ(counter.load(), static_cast<std::uint32_t>(threads * iterations));
}

// sync_multi_producer_single_consumer: n producers each advance their own timeline once per
// round and then wait for the consumer's timeline; the consumer waits for a merge of a point on
// every producer's timeline, checks the count, and releases them. Closing the consumer's
// timeline ends the producers (their next fence fails, or the one they wait on signals with
// -ENOENT, which sync_fence_wait takes as signalled).
TEST_P(IgtSwSync, SyncMultiProducerSingleConsumer) {
  constexpr int kProducers = 5;
  constexpr int kRounds = 200;  // IGT: as many as fit in a second
  const int consTimeline = timelineCreate();
  std::array<int, kProducers> prodTimeline{};
  for (int& t : prodTimeline) {
    t = timelineCreate();
  }
  std::atomic<std::uint32_t> counter{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> producers;
  producers.reserve(kProducers);
  for (int id = 0; id < kProducers; ++id) {
    producers.emplace_back([&, id] {
      for (std::uint32_t seqno = 0;; ++seqno) {
        const int fence = createFenceRaw(consTimeline, seqno);
        if (fence < 0) {
          break;  // the consumer's timeline is closed
        }
        // Vary the means of waiting, as IGT does.
        if (id % 8 != 0) {
          failed.store(failed.load() || wait(fence, kLongWaitMs) != 0);
        } else {
          bool active = true;
          const auto until = sys::monotonicNs() + kLongWaitMs * 1'000'000ULL;
          while (active && sys::monotonicNs() < until) {
            failed.store(failed.load() || countStatus(fence, kStatusError) != 0);
            active = countStatus(fence, kStatusActive) != 0;
          }
          failed.store(failed.load() || active);
        }
        counter.fetch_add(1);
        std::uint32_t one = 1;
        (void)calls->ioctl(prodTimeline.at(id), uapi::kSwSyncIocInc, &one);
        (void)calls->close(fence);
      }
    });
  }
  for (std::uint32_t seqno = 1; seqno <= kRounds; ++seqno) {
    int fence = createFence(prodTimeline[0], seqno);
    for (int i = 1; i < kProducers; ++i) {
      const int tmp = createFence(prodTimeline.at(i), seqno);
      const int merged = merge(tmp, fence);
      close(tmp);
      close(fence);
      fence = merged;
    }
    const bool done = wait(fence, kLongWaitMs) == 0;
    EXPECT_TRUE(done) << "Producers did not increment as expected";
    EXPECT_EQ(counter.load(), kProducers * seqno) << "Counter value mismatch";
    inc(consTimeline, 1);  // release the producers
    close(fence);
    if (!done) {
      break;
    }
  }
  close(consTimeline);
  for (auto& t : producers) {
    t.join();
  }
  for (int t : prodTimeline) {
    close(t);
  }
  EXPECT_FALSE(failed.load()) << "Failure waiting on fence";
}

// sync_expired_merge
TEST_P(IgtSwSync, SyncExpiredMerge) {
  const int timeline = timelineCreate();
  inc(timeline, 100);
  const int expired = createFence(timeline, 1);
  EXPECT_EQ(wait(expired, 0), 0) << "Failure waiting for expired fence";
  close(merge(expired, expired));
  for (int i = 0; i < 1000; ++i) {  // IGT: for a second
    const int fence = merge(expired, expired);
    ASSERT_GE(fence, 0);
    ASSERT_EQ(wait(fence, -1), 0) << "Failure waiting on fence";
    close(fence);
  }
  close(expired);
  close(timeline);
}

// sync_random_merge
TEST_P(IgtSwSync, SyncRandomMerge) {
  constexpr int kTimelines = 32;
  constexpr int kMerges = 1024;
  std::mt19937 rng(20161107);  // fixed: a failure can be replayed
  // rand(): [0, RAND_MAX]; 0 would be a point already passed, which the merge drops.
  std::uniform_int_distribution<std::uint32_t> point(1, INT_MAX);
  std::array<int, kTimelines> timelines{};
  std::array<std::int64_t, kTimelines> fenceMap{};
  for (int i = 0; i < kTimelines; ++i) {
    timelines.at(i) = timelineCreate();
    fenceMap.at(i) = -1;
  }
  std::uint32_t syncPt = point(rng);
  int fence = createFence(timelines[0], syncPt);
  fenceMap[0] = syncPt;
  for (int i = 0; i < kMerges; ++i) {
    const auto offset = static_cast<std::size_t>(rng() % kTimelines);
    syncPt = point(rng);
    fenceMap.at(offset) = std::max<std::int64_t>(fenceMap.at(offset), syncPt);
    const int tmp = createFence(timelines.at(offset), syncPt);
    const int merged = merge(tmp, fence);
    ASSERT_GE(merged, 0);
    close(tmp);
    close(fence);
    fence = merged;
  }
  for (int i = 0; i < kTimelines; ++i) {
    if (fenceMap.at(i) != -1) {
      ASSERT_EQ(wait(fence, 0), -ETIME) << "Failure waiting on fence until timeout";
      inc(timelines.at(i), static_cast<std::uint32_t>(fenceMap.at(i)));
    }
  }
  EXPECT_EQ(wait(fence, kLongWaitMs), 0) << "Failure triggering fence";
  close(fence);
  for (int t : timelines) {
    close(t);
  }
}

// Not an IGT subtest: SW_SYNC_GET_DEADLINE (Linux 6.5) through both contexts, as the kernel's
// selftests and Mesa use it.
TEST_P(IgtSwSync, GetDeadlineThroughTheCalls) {
  const int timeline = timelineCreate();
  const int fence = createFence(timeline, 1);
  uapi::SwSyncGetDeadline get{};
  get.fenceFd = fence;
  EXPECT_EQ(calls->ioctl(timeline, uapi::kSwSyncGetDeadline, &get).code(), ENOENT);
  uapi::SyncSetDeadline set{123456789, 0};
  ASSERT_TRUE(calls->ioctl(fence, uapi::kSyncIocSetDeadline, &set).ok());
  ASSERT_TRUE(calls->ioctl(timeline, uapi::kSwSyncGetDeadline, &get).ok());
  EXPECT_EQ(get.deadlineNs, 123456789U);
  EXPECT_EQ(get.fenceFd, fence);  // the caller's fd, not the daemon's
  get.deadlineNs = 0;
  get.pad = 1;
  EXPECT_EQ(calls->ioctl(timeline, uapi::kSwSyncGetDeadline, &get).code(), EINVAL);
  get.pad = 0;
  get.fenceFd = timeline;
  EXPECT_EQ(calls->ioctl(timeline, uapi::kSwSyncGetDeadline, &get).code(), EINVAL);
  get.fenceFd = -1;
  EXPECT_EQ(calls->ioctl(timeline, uapi::kSwSyncGetDeadline, &get).code(), EINVAL);
  EXPECT_EQ(calls->ioctl(timeline, _IOWR('W', 7, int), &get).code(), ENOTTY);
  EXPECT_EQ(calls->ioctl(timeline, uapi::kSwSyncIocInc, nullptr).code(), EFAULT);
  EXPECT_EQ(calls->ioctl(timeline, uapi::kSwSyncIocCreateFence, nullptr).code(), EFAULT);
  close(fence);
  close(timeline);
}

ZBUF_BOTH_CONTEXTS(IgtSwSync);
INSTANTIATE_TEST_SUITE_P(Kernels, IgtSwSyncFork, ::testing::Values(testing_support::Kernel::Daemon),
                         testing_support::kernelName);

}  // namespace
}  // namespace zbuf
