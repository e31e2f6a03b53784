// ctest-labels: concurrency
// /sys/kernel/debug/sync/sw_sync as the kernel's drivers/dma-buf/sw_sync.c has it, through the
// fd-level calls of an embedded context: a timeline per open named after the opener, fences as
// sync files (FILE_INFO's names), INC signalling in order (the 32-bit wrap and the INT_MAX
// loop), a point shared by two fences at the same pending value, GET_DEADLINE and each of its
// errnos, the last close signalling what is pending with -ENOENT, and the file's other calls.
// The IGT mirror (tests/conformance/igt_sw_sync_test.cpp) runs on both contexts.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "support/fd_calls.h"
#include "zbuf/base/sys.h"
#include "zbuf/core/fence.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"

namespace zbuf::uapi {
namespace {

constexpr const char* kPath = "/sys/kernel/debug/sync/sw_sync";

class SwSync : public ::testing::Test {
 protected:
  UniqueFd timeline() {
    auto fd = ctx->open(kPath, O_RDWR);
    EXPECT_TRUE(fd.ok()) << fd.error().describe();
    return fd.ok() ? std::move(*fd) : UniqueFd();
  }
  // SW_SYNC_IOC_CREATE_FENCE: the sync file, or an invalid fd (the errno in `err`).
  UniqueFd createFence(int tl, std::uint32_t value, long* err = nullptr) {
    SwSyncCreateFenceData data{};
    data.value = value;
    std::strncpy(data.name, "ignored", sizeof data.name);
    data.fence = -1;
    const long r = k.ioctl(tl, kSwSyncIocCreateFence, &data);
    if (err != nullptr) {
      *err = r;
    }
    EXPECT_TRUE(err != nullptr || r == 0) << r;
    return r == 0 ? UniqueFd::adopt(data.fence) : UniqueFd();
  }
  long inc(int tl, std::uint32_t count) { return k.ioctl(tl, kSwSyncIocInc, &count); }
  FencePtr fenceOf(int fd) { return ctx->syncFileFence(fd).value(); }
  // SYNC_IOC_FILE_INFO with room for one fence.
  SyncFenceInfo fenceInfo(int fd, SyncFileInfo* file = nullptr) {
    SyncFenceInfo fence{};
    SyncFileInfo info{};
    info.numFences = 1;
    info.syncFenceInfo = reinterpret_cast<std::uintptr_t>(&fence);
    EXPECT_EQ(k.ioctl(fd, kSyncIocFileInfo, &info), 0);
    if (file != nullptr) {
      *file = info;
    }
    return fence;
  }
  long getDeadline(int tl, int fenceFd, std::uint64_t* deadline = nullptr) {
    SwSyncGetDeadline data{};
    data.fenceFd = fenceFd;
    const long r = k.ioctl(tl, kSwSyncGetDeadline, &data);
    if (deadline != nullptr) {
      *deadline = data.deadlineNs;
    }
    return r;
  }
  long setDeadline(int fenceFd, std::uint64_t ns) {
    SyncSetDeadline data{ns, 0};
    return k.ioctl(fenceFd, kSyncIocSetDeadline, &data);
  }

  ContextPtr ctx = Context::create();
  testing_support::FdCalls k{ctx};
};

TEST_F(SwSync, EveryContextHasTheNode) {
  const auto nodes = ctx->nodes();
  EXPECT_NE(std::find(nodes.begin(), nodes.end(), kPath), nodes.end());
  UniqueFd tl = timeline();
  ASSERT_TRUE(tl.isValid());
  EXPECT_EQ(ctx->fdPath(tl.get()).value(), kPath);
  EXPECT_EQ(ctx->fstat(tl.get()).value().mode, unsigned{S_IFREG | 0644});
  EXPECT_EQ(ctx->lookup(tl.get()).value()->ops().name(), "sw_sync");
}

TEST_F(SwSync, ATimelineIsNamedAfterTheThreadThatOpensIt) {
  UniqueFd tl;
  std::thread opener([&] {
    sys::setThreadName("tl-opener");
    tl = timeline();
  });
  opener.join();
  UniqueFd fence = createFence(tl.get(), 5);
  SyncFileInfo file{};
  const SyncFenceInfo info = fenceInfo(fence.get(), &file);
  EXPECT_STREQ(info.driverName, "sw_sync");
  EXPECT_STREQ(info.objName, "tl-opener");
  EXPECT_EQ(info.status, 0);
  EXPECT_EQ(info.timestampNs, 0U);
  EXPECT_EQ(file.numFences, 1U);
  EXPECT_EQ(file.status, 0);
  // sync_file_get_name: "<driver>-<timeline><context>-<seqno>" (the fence's name is ignored).
  const FencePtr f = fenceOf(fence.get());
  EXPECT_EQ(std::string(file.name), "sw_sync-tl-opener" + std::to_string(f->context()) + "-5");
  EXPECT_EQ(f->seqno(), 5U);
  EXPECT_EQ(f->driverName(), "sw_sync");
}

TEST_F(SwSync, ACallerNameGivenToTheThreadNamesItsTimelines) {
  Context::setCallerName("a-client-process-name");  // cut to 15, as TASK_COMM_LEN
  UniqueFd tl = timeline();
  Context::setCallerName("");
  UniqueFd fence = createFence(tl.get(), 1);
  EXPECT_STREQ(fenceInfo(fence.get()).objName, "a-client-proces");
  std::array<char, 17> own{};
  ASSERT_EQ(::prctl(PR_GET_NAME, own.data()), 0);
  EXPECT_EQ(Context::callerName(), own.data());  // the thread's own name again
}

TEST_F(SwSync, EachOpenIsANewTimeline) {
  UniqueFd a = timeline();
  UniqueFd b = timeline();
  UniqueFd fa = createFence(a.get(), 1);
  UniqueFd fb = createFence(b.get(), 1);
  EXPECT_NE(fenceOf(fa.get())->context(), fenceOf(fb.get())->context());
  ASSERT_EQ(inc(a.get(), 1), 0);
  EXPECT_TRUE(fenceOf(fa.get())->isSignaledFlag());
  EXPECT_FALSE(fenceOf(fb.get())->isSignaledFlag());
  // A dup is the same timeline (one open, one description).
  auto dup = sys::dup(b.get());
  ASSERT_TRUE(dup.ok());
  ASSERT_EQ(inc(dup->get(), 1), 0);
  EXPECT_TRUE(fenceOf(fb.get())->isSignaledFlag());
}

TEST_F(SwSync, AFenceAtOrBelowTheValueIsSignalledAlready) {
  UniqueFd tl = timeline();
  UniqueFd zero = createFence(tl.get(), 0);
  EXPECT_TRUE(fenceOf(zero.get())->isSignaledFlag());
  EXPECT_EQ(fenceOf(zero.get())->status(), 1);
  ASSERT_EQ(inc(tl.get(), 10), 0);
  UniqueFd below = createFence(tl.get(), 3);
  UniqueFd at = createFence(tl.get(), 10);
  UniqueFd above = createFence(tl.get(), 11);
  EXPECT_TRUE(fenceOf(below.get())->isSignaledFlag());
  EXPECT_TRUE(fenceOf(at.get())->isSignaledFlag());
  EXPECT_FALSE(fenceOf(above.get())->isSignaled());
  EXPECT_NE(fenceInfo(at.get()).timestampNs, 0U);
}

TEST_F(SwSync, IncSignalsEveryPointItPassesInSeqnoOrder) {
  UniqueFd tl = timeline();
  // Created out of order; each signals when the timeline reaches it, the lower ones first.
  const std::array<std::uint32_t, 6> values{7, 2, 9, 4, 3, 8};
  std::vector<UniqueFd> fds;
  std::vector<FencePtr> fences;
  std::array<std::uint64_t, 6> order{};
  std::atomic<std::size_t> next{0};
  std::vector<std::unique_ptr<FenceCallback>> callbacks;
  for (std::uint32_t v : values) {
    fds.push_back(createFence(tl.get(), v));
    fences.push_back(fenceOf(fds.back().get()));
    auto cb = std::make_unique<FenceCallbackFn<std::function<void(Fence&)>>>(
        std::function<void(Fence&)>([&](Fence& f) { order.at(next++) = f.seqno(); }));
    ASSERT_TRUE(fences.back()->addCallback(*cb).ok());
    callbacks.push_back(std::move(cb));
  }
  ASSERT_EQ(inc(tl.get(), 3), 0);  // 2 and 3
  EXPECT_EQ(next.load(), 2U);
  ASSERT_EQ(inc(tl.get(), 5), 0);  // 4, 7, 8
  EXPECT_EQ(next.load(), 5U);
  EXPECT_FALSE(fences[2]->isSignaled());
  ASSERT_EQ(inc(tl.get(), 1), 0);  // 9
  EXPECT_EQ(order, (std::array<std::uint64_t, 6>{2, 3, 4, 7, 8, 9}));
  for (const auto& f : fences) {
    EXPECT_EQ(f->status(), 1);
  }
}

TEST_F(SwSync, TwoFencesAtOnePendingValueAreOnePoint) {
  UniqueFd tl = timeline();
  UniqueFd a = createFence(tl.get(), 4);
  UniqueFd b = createFence(tl.get(), 4);
  EXPECT_NE(a.get(), b.get());
  EXPECT_EQ(fenceOf(a.get()), fenceOf(b.get()));  // sync_pt_create finds it in the tree
  UniqueFd c = createFence(tl.get(), 5);
  EXPECT_NE(fenceOf(a.get()), fenceOf(c.get()));
  // Once nobody holds the point, a new one is made at the same value.
  std::weak_ptr<Fence> weak = fenceOf(a.get());
  ASSERT_TRUE(ctx->close(std::move(a)).ok());
  ASSERT_TRUE(ctx->close(std::move(b)).ok());
  EXPECT_TRUE(weak.expired());
  UniqueFd d = createFence(tl.get(), 4);
  EXPECT_FALSE(fenceOf(d.get())->isSignaled());
  ASSERT_EQ(inc(tl.get(), 4), 0);
  EXPECT_TRUE(fenceOf(d.get())->isSignaledFlag());
  EXPECT_FALSE(fenceOf(c.get())->isSignaledFlag());
  // Signalled points are not shared: each fence at a passed value is its own.
  UniqueFd e = createFence(tl.get(), 4);
  EXPECT_NE(fenceOf(d.get()), fenceOf(e.get()));
}

TEST_F(SwSync, TheValueWrapsAt32BitsAsTheKernelsIntDoes) {
  UniqueFd tl = timeline();
  // (int)(seqno - value) <= 0 is signalled: 2^31 ahead of 0 is "behind" it.
  UniqueFd farAhead = createFence(tl.get(), 0x7fffffffU);
  UniqueFd behind = createFence(tl.get(), 0x80000000U);
  EXPECT_FALSE(fenceOf(farAhead.get())->isSignaled());
  EXPECT_TRUE(fenceOf(behind.get())->isSignaledFlag());
  UniqueFd five = createFence(tl.get(), 5);
  // An increment above INT_MAX is made in INT_MAX steps: every pending point is passed.
  ASSERT_EQ(inc(tl.get(), 0xffffffffU), 0);  // the value is now 0xffffffff (-1)
  EXPECT_TRUE(fenceOf(farAhead.get())->isSignaledFlag());
  EXPECT_TRUE(fenceOf(five.get())->isSignaledFlag());
  UniqueFd two = createFence(tl.get(), 2);  // 3 ahead of -1
  EXPECT_FALSE(fenceOf(two.get())->isSignaled());
  UniqueFd max = createFence(tl.get(), 0xffffffffU);
  EXPECT_TRUE(fenceOf(max.get())->isSignaledFlag());
  ASSERT_EQ(inc(tl.get(), 2), 0);  // 1
  EXPECT_FALSE(fenceOf(two.get())->isSignaled());
  ASSERT_EQ(inc(tl.get(), 1), 0);  // 2
  EXPECT_TRUE(fenceOf(two.get())->isSignaledFlag());
}

TEST_F(SwSync, TheLastCloseSignalsWhatIsPendingWithEnoent) {
  UniqueFd tl = timeline();
  UniqueFd done = createFence(tl.get(), 1);
  UniqueFd pending = createFence(tl.get(), 2);
  UniqueFd later = createFence(tl.get(), 100);
  ASSERT_EQ(inc(tl.get(), 1), 0);
  auto dup = sys::dup(tl.get());
  ASSERT_TRUE(dup.ok());
  ASSERT_TRUE(ctx->close(std::move(tl)).ok());
  EXPECT_FALSE(fenceOf(pending.get())->isSignaled());  // a dup still holds the timeline
  ASSERT_TRUE(ctx->close(std::move(*dup)).ok());
  EXPECT_EQ(fenceOf(done.get())->status(), 1);
  EXPECT_EQ(fenceOf(pending.get())->status(), -ENOENT);
  EXPECT_EQ(fenceOf(later.get())->status(), -ENOENT);
  SyncFileInfo file{};
  EXPECT_EQ(fenceInfo(pending.get(), &file).status, -ENOENT);
  EXPECT_EQ(file.status, -ENOENT);
  std::array<struct pollfd, 1> p{{{later.get(), POLLIN, 0}}};
  EXPECT_EQ(ctx->poll(p, 0).value(), 1);
  EXPECT_EQ(p[0].revents, POLLIN);
  // The fences keep their timeline's name after it has gone.
  EXPECT_STREQ(fenceInfo(later.get()).driverName, "sw_sync");
}

TEST_F(SwSync, GetDeadlineReportsTheEarliestDeadlineSet) {
  UniqueFd tl = timeline();
  UniqueFd fence = createFence(tl.get(), 1);
  EXPECT_EQ(getDeadline(tl.get(), fence.get()), -ENOENT);  // none set
  ASSERT_EQ(setDeadline(fence.get(), 5000), 0);
  std::uint64_t deadline = 0;
  ASSERT_EQ(getDeadline(tl.get(), fence.get(), &deadline), 0);
  EXPECT_EQ(deadline, 5000U);
  ASSERT_EQ(setDeadline(fence.get(), 9000), 0);  // later: the earlier one stays
  ASSERT_EQ(getDeadline(tl.get(), fence.get(), &deadline), 0);
  EXPECT_EQ(deadline, 5000U);
  ASSERT_EQ(setDeadline(fence.get(), 1000), 0);
  ASSERT_EQ(getDeadline(tl.get(), fence.get(), &deadline), 0);
  EXPECT_EQ(deadline, 1000U);
  // Any sw_sync timeline answers for any sw_sync fence (the kernel does not check whose).
  UniqueFd other = timeline();
  ASSERT_EQ(getDeadline(other.get(), fence.get(), &deadline), 0);
  EXPECT_EQ(deadline, 1000U);
  // A signalled fence takes no deadline (dma_fence_set_deadline skips it).
  UniqueFd signalled = createFence(tl.get(), 0);
  ASSERT_EQ(setDeadline(signalled.get(), 1000), 0);
  EXPECT_EQ(getDeadline(tl.get(), signalled.get()), -ENOENT);
}

TEST_F(SwSync, GetDeadlineErrnos) {
  UniqueFd tl = timeline();
  UniqueFd fence = createFence(tl.get(), 1);
  ASSERT_EQ(setDeadline(fence.get(), 5000), 0);
  SwSyncGetDeadline data{};
  data.fenceFd = fence.get();
  data.deadlineNs = 1;  // must be 0 on input
  EXPECT_EQ(k.ioctl(tl.get(), kSwSyncGetDeadline, &data), -EINVAL);
  data.deadlineNs = 0;
  data.pad = 1;
  EXPECT_EQ(k.ioctl(tl.get(), kSwSyncGetDeadline, &data), -EINVAL);
  EXPECT_EQ(k.ioctl(tl.get(), kSwSyncGetDeadline, nullptr), -EFAULT);
  // sync_file_get_fence fails: not open, not a sync file.
  EXPECT_EQ(getDeadline(tl.get(), -1), -EINVAL);
  EXPECT_EQ(getDeadline(tl.get(), 900), -EINVAL);
  EXPECT_EQ(getDeadline(tl.get(), tl.get()), -EINVAL);
  // A sync file of another driver's fence, and a merged one (a fence array): not a sync_pt.
  auto foreign = Timeline::create("drv", "tl")->createFence();
  UniqueFd foreignFd = std::move(ctx->installSyncFile(foreign).value());
  EXPECT_EQ(getDeadline(tl.get(), foreignFd.get()), -EINVAL);
  UniqueFd tl2 = timeline();
  UniqueFd fence2 = createFence(tl2.get(), 1);
  SyncMergeData merge{};
  std::strncpy(merge.name, "m", sizeof merge.name);
  merge.fd2 = fence2.get();
  ASSERT_EQ(k.ioctl(fence.get(), kSyncIocMerge, &merge), 0);
  UniqueFd merged = UniqueFd::adopt(merge.fence);
  EXPECT_EQ(getDeadline(tl.get(), merged.get()), -EINVAL);
  foreign->signal();
}

TEST_F(SwSync, OtherRequestsAreEnottyAndBadPointersEfault) {
  UniqueFd tl = timeline();
  int value = 0;
  EXPECT_EQ(k.ioctl(tl.get(), _IOWR('W', 3, int), &value), -ENOTTY);
  EXPECT_EQ(k.ioctl(tl.get(), _IOW('W', 1, std::uint64_t), &value), -ENOTTY);  // other size
  EXPECT_EQ(k.ioctl(tl.get(), kSyncIocMerge, &value), -ENOTTY);
  EXPECT_EQ(k.ioctl(tl.get(), kDmaBufIoctlSync, &value), -ENOTTY);
  EXPECT_EQ(k.ioctl(tl.get(), kSwSyncIocCreateFence, nullptr), -EFAULT);
  EXPECT_EQ(k.ioctl(tl.get(), kSwSyncIocInc, nullptr), -EFAULT);
  // A sync file does not take sw_sync's requests.
  UniqueFd fence = createFence(tl.get(), 1);
  EXPECT_EQ(inc(fence.get(), 1), -ENOTTY);
  // The timeline's other calls are the VFS defaults for a file without them.
  std::array<std::byte, 4> buf{};
  EXPECT_EQ(k.read(tl.get(), buf), -EINVAL);
  EXPECT_EQ(k.write(tl.get(), buf), -EINVAL);
  EXPECT_EQ(ctx->lseek(tl.get(), 0, SEEK_SET).code(), ESPIPE);
  std::array<struct pollfd, 1> p{{{tl.get(), POLLIN | POLLOUT, 0}}};
  EXPECT_EQ(ctx->poll(p, 0).value(), 1);
  EXPECT_EQ(p[0].revents, POLLIN | POLLOUT);
  EXPECT_EQ(ctx->ioctl(900, kSwSyncIocInc, &value).code(), EBADF);
}

// /sys/kernel/debug/sync/info (sync_info_debugfs_show): every live timeline with its value and
// the points it has not signalled, in seqno order; a closed timeline stays listed while a point
// holds it, its points signalled with the error and their time; then it goes.
TEST_F(SwSync, InfoListsTheTimelinesAndTheirPendingPoints) {
  auto info = [&] {
    auto fd = ctx->open("/sys/kernel/debug/sync/info", O_RDONLY);
    EXPECT_TRUE(fd.ok()) << fd.error().describe();
    std::string text(8192, '\0');
    const long n = k.read(fd->get(), std::as_writable_bytes(std::span(text)));
    EXPECT_GE(n, 0);
    text.resize(static_cast<std::size_t>(std::max(n, 0L)));
    return text;
  };
  // This timeline's block: from its "name: value" line to the blank line that ends it.
  auto block = [](const std::string& text, const std::string& name) -> std::string {
    const auto at = text.find("\n" + name + ": ");
    if (at == std::string::npos) {
      return {};
    }
    return text.substr(at + 1, text.find("\n\n", at) - at);
  };
  const std::string empty = info();
  EXPECT_EQ(empty.rfind("objs:\n--------------\n", 0), 0U) << empty;
  EXPECT_TRUE(empty.ends_with("\nfences:\n--------------\n")) << empty;

  Context::setCallerName("info-timeline");
  UniqueFd tl = timeline();
  Context::setCallerName("");
  EXPECT_EQ(block(info(), "info-timeline"), "info-timeline: 0\n");
  UniqueFd f9 = createFence(tl.get(), 9);
  UniqueFd f3 = createFence(tl.get(), 3);
  UniqueFd f5 = createFence(tl.get(), 5);
  ASSERT_EQ(inc(tl.get(), 4), 0);
  EXPECT_EQ(block(info(), "info-timeline"),
            "info-timeline: 4\n  fence active: 5 / 4\n  fence active: 9 / 4\n");
  f5.reset();  // a point nobody holds is gone from the list
  EXPECT_EQ(block(info(), "info-timeline"), "info-timeline: 4\n  fence active: 9 / 4\n");

  // The last close (through the calls: a close(2) is seen by the reaper later) signals the
  // pending point with -ENOENT; the point holds the timeline.
  ASSERT_TRUE(ctx->close(tl.release()).ok());
  FencePtr nine = fenceOf(f9.get());
  ASSERT_EQ(nine->status(), -ENOENT);
  const std::uint64_t ns = nine->timestampNs();
  EXPECT_EQ(block(info(), "info-timeline"),
            fmt::format("info-timeline: 4\n  fence error@{}.{:09}: 9 / 4\n", ns / 1000000000U,
                        ns % 1000000000U));
  f9.reset();
  f3.reset();
  nine.reset();  // the last reference: the timeline is freed and unlisted
  EXPECT_EQ(block(info(), "info-timeline"), "");
}

TEST_F(SwSync, InfoIsReadOnly) {
  auto fd = ctx->open("/sys/kernel/debug/sync/info", O_RDONLY);
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(ctx->fstat(fd->get()).value().mode, unsigned{S_IFREG | 0444});
  EXPECT_EQ(ctx->open("/sys/kernel/debug/sync/info", O_WRONLY).code(), EACCES);
}

// Threads advancing one timeline while others make fences on it: every fence signals, each
// once, and the points signal in seqno order however the increments interleave.
TEST_F(SwSync, ConcurrentIncrementsSignalEveryPointInOrder) {
  UniqueFd tl = timeline();
  constexpr std::uint32_t kPoints = 2000;
  std::vector<UniqueFd> fds;
  std::vector<FencePtr> fences;
  std::vector<std::uint64_t> order(kPoints, 0);
  std::atomic<std::size_t> next{0};
  struct Recorder : FenceCallback {
    std::vector<std::uint64_t>* order = nullptr;
    std::atomic<std::size_t>* next = nullptr;
  };
  std::vector<std::unique_ptr<Recorder>> recorders;
  for (std::uint32_t v = 1; v <= kPoints; ++v) {
    fds.push_back(createFence(tl.get(), v));
    fences.push_back(fenceOf(fds.back().get()));
    auto r = std::make_unique<Recorder>();
    r->order = &order;
    r->next = &next;
    r->setFunc([](Fence& f, FenceCallback& self) {
      auto& rec = static_cast<Recorder&>(self);
      (*rec.order)[rec.next->fetch_add(1)] = f.seqno();
    });
    ASSERT_TRUE(fences.back()->addCallback(*r).ok());
    recorders.push_back(std::move(r));
  }
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (std::uint32_t i = 0; i < kPoints / 4; ++i) {
        EXPECT_EQ(inc(tl.get(), 1), 0);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  ASSERT_EQ(next.load(), kPoints);
  for (std::uint32_t i = 0; i < kPoints; ++i) {
    EXPECT_EQ(order[i], i + 1) << i;
  }
}

}  // namespace
}  // namespace zbuf::uapi
