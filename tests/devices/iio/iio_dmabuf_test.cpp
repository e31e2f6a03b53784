// ctest-labels: concurrency
// The DMABUF interface of the emulated IIO device, through the files of a context as an
// application uses it against the kernel: /dev/iio:device0, GET_FD's buffer file,
// IIO_BUFFER_DMABUF_ATTACH / DETACH / ENQUEUE with the kernel's errnos, buffer0/enable,
// poll on the buffer fds, DMA_BUF_IOCTL_SYNC around CPU access, sync files; fences (names,
// seqnos, usages, order), cyclic output, fault injection, detach with transfers in flight, and
// the exclusion with fileio. What the hardware did is read from the test bench (iio_rig.h).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "support/iio_rig.h"
#include "support/thread_state.h"
#include "support/wait_until.h"
#include "zbuf/core/fence_signalling.h"
#include "zbuf/devices/pattern.h"

namespace zbuf::iio {
namespace {

using namespace std::chrono_literals;
using testing::IioRig;
using testing_support::waitUntil;

constexpr auto kRead = static_cast<std::uint32_t>(uapi::kDmaBufSyncRead);
constexpr auto kWrite = static_cast<std::uint32_t>(uapi::kDmaBufSyncWrite);

IioDeviceConfig device(
    IioDirection dir, std::uint64_t rate = 0, dma::DataMode mode = dma::DataMode::Data,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(kEnqueueTimeoutMs)) {
  IioDeviceConfig c = IioRig::config(dir);
  c.sampleRate = rate;
  c.mode = mode;
  c.enqueueTimeout = timeout;
  return c;
}

// Waits until the buffer's device access is over, as an application does: poll(POLLIN) on an
// ADC's buffer (no writer pending), poll(POLLOUT) on a DAC's (nothing pending).
bool waitBlock(IioRig& rig, int dmabuf, int timeoutMs = 10'000) {
  const short events = rig.device->direction() == IioDirection::Input ? POLLIN : POLLOUT;
  return (rig.poll(dmabuf, events, timeoutMs) & events) != 0;
}

// Another driver holding the buffer's reservation lock: no uAPI takes it, so the test takes it
// on the buffer object, as that driver would.
struct ResvHeld {
  ResvHeld(IioRig& rig, int dmabuf) : buffer(rig.ctx->bufferFromFd(dmabuf).value()) {
    EXPECT_TRUE(buffer->resv().lock().ok());
  }
  ~ResvHeld() { buffer->resv().unlock(); }
  ResvHeld(const ResvHeld&) = delete;
  ResvHeld& operator=(const ResvHeld&) = delete;
  ResvHeld(ResvHeld&&) = delete;
  ResvHeld& operator=(ResvHeld&&) = delete;
  BufferPtr buffer;
};

TEST(IioDmabuf, AttachErrors) {
  IioRig s;
  UniqueFd b = s.allocate(64 * 1024);
  EXPECT_EQ(s.attach(s.dev.get()), -EINVAL);  // an open file that is not a DMABUF
  ASSERT_EQ(s.attach(b.get()), 0);
  EXPECT_EQ(s.attach(b.get()), -EBUSY);  // attached twice
  EXPECT_EQ(s.stats().dmabufAttached, 1U);

  // A buffer without DMABUF support.
  IioDeviceConfig config = IioRig::config();
  config.dmabuf = false;
  IioRig plain(config);
  UniqueFd pb = plain.allocate(64 * 1024);
  EXPECT_EQ(plain.attach(pb.get()), -EPERM);

  // Enabled in fileio mode: no attach.
  IioRig f;
  UniqueFd fb = f.allocate(64 * 1024);
  ASSERT_EQ(f.enable(), 0);
  EXPECT_EQ(f.attach(fb.get()), -EBUSY);
}

TEST(IioDmabuf, NonBlockingAttachWithAContendedResvIsEbusy) {
  IioRig s;
  UniqueFd b = s.allocate(4096);
  s.setNonBlocking(true);
  {
    const ResvHeld held(s, b.get());
    EXPECT_EQ(s.attach(b.get()), -EBUSY);
  }
  EXPECT_EQ(s.attach(b.get()), 0);
}

TEST(IioDmabuf, DetachErrorsAndCloseDetachesAll) {
  IioRig s;
  UniqueFd a = s.allocate(4096);
  UniqueFd b = s.allocate(4096);
  EXPECT_EQ(s.detach(a.get()), -EPERM);  // never attached
  ASSERT_EQ(s.attach(a.get()), 0);
  ASSERT_EQ(s.attach(b.get()), 0);
  EXPECT_EQ(s.attachments(a.get()), 1U);
  ASSERT_EQ(s.detach(a.get()), 0);
  EXPECT_EQ(s.detach(a.get()), -EPERM);  // detached already
  EXPECT_EQ(s.attachments(a.get()), 0U);
  ASSERT_TRUE(s.ctx->close(std::move(s.buf)).ok());  // closing the buffer file detaches b
  EXPECT_EQ(s.attachments(b.get()), 0U);
  const long again = s.getBufferFd();
  ASSERT_GE(again, 0);
  s.buf = UniqueFd::adopt(static_cast<int>(again));
  EXPECT_EQ(s.attach(b.get()), 0);  // not EBUSY: the old attachment is gone
}

TEST(IioDmabuf, EnqueueArgumentErrors) {
  IioRig s;
  UniqueFd b = s.allocate(8192);
  UniqueFd other = s.allocate(8192);
  ASSERT_EQ(s.attach(b.get()), 0);
  EXPECT_EQ(s.enqueue(b.get(), 4096, 0x2), -EINVAL);            // unknown flag
  EXPECT_EQ(s.enqueue(b.get(), 4096, kDmabufCyclic), -EINVAL);  // cyclic on input
  EXPECT_EQ(s.enqueue(b.get(), 0), -EINVAL);                    // bytes_used 0
  EXPECT_EQ(s.enqueue(b.get(), 8193), -EINVAL);                 // beyond the buffer
  EXPECT_EQ(s.enqueue(other.get(), 4096), -EPERM);              // not attached
  // None of them published a fence.
  EXPECT_EQ(s.stats().dmabufEnqueued, 0U);
}

TEST(IioDmabuf, InputEnqueueWaitsForReadersAndWriters) {
  IioRig s(device(IioDirection::Input, 0, dma::DataMode::Data, 100ms));
  UniqueFd b = s.allocate(4096);
  ASSERT_EQ(s.attach(b.get()), 0);
  ASSERT_EQ(s.enable(), 0);
  // A pending reader: the device may not overwrite the memory.
  auto reader = s.importForeignFence(b.get(), kRead);
  s.setNonBlocking(true);
  EXPECT_EQ(s.enqueue(b.get(), 4096), -EBUSY);  // no wait at all
  s.setNonBlocking(false);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(s.enqueue(b.get(), 4096), -EBUSY);  // after the (shortened) timeout
  EXPECT_GE(std::chrono::steady_clock::now() - start, 95ms);
  reader->signal();
  // Signalled meanwhile: the enqueue goes through. With the kernel's 5 s timeout, so that
  // the signal comes in time however late the signaller runs.
  IioRig patient;
  UniqueFd c = patient.allocate(4096);
  ASSERT_EQ(patient.attach(c.get()), 0);
  ASSERT_EQ(patient.enable(), 0);
  auto pending = patient.importForeignFence(c.get(), kRead);
  testing_support::ThreadMark enqueueing;
  std::thread signaller([&] {
    (void)enqueueing.waitUntilAsleep();  // the signal wakes an enqueue that sleeps
    pending->signal();
  });
  enqueueing.mark();
  const long r = patient.enqueue(c.get(), 4096);
  signaller.join();
  ASSERT_EQ(r, 0);
  const FencePtr fence = patient.lastFence(c.get());
  ASSERT_TRUE(fence);
  ASSERT_TRUE(waitBlock(patient, c.get()));
  EXPECT_EQ(fence->status(), 1);
}

TEST(IioDmabuf, OutputEnqueueWaitsForWritersOnly) {
  IioRig s(device(IioDirection::Output, 0, dma::DataMode::Benchmark, 50ms));
  UniqueFd b = s.allocate(4096);
  ASSERT_EQ(s.attach(b.get()), 0);
  ASSERT_EQ(s.enable(), 0);
  auto reader = s.importForeignFence(b.get(), kRead);
  const FencePtr f1 = s.enqueueFence(b.get(), 4096);  // readers do not conflict with a read
  ASSERT_TRUE(f1);
  ASSERT_TRUE(f1->wait().ok());  // poll(POLLOUT) would wait for the foreign reader too
  auto writer = s.importForeignFence(b.get(), kWrite);
  EXPECT_EQ(s.enqueue(b.get(), 4096), -EBUSY);
  writer->signal();
  reader->signal();
  EXPECT_EQ(s.enqueue(b.get(), 4096), 0);
}

// A configuration constant: waiting it out would take the test five seconds.
TEST(IioDmabuf, TheKernelDefaultTimeoutIsFiveSeconds) {
  IioRig s;
  EXPECT_EQ(kEnqueueTimeoutMs, 5000U);
  EXPECT_EQ(s.device->config().enqueueTimeout, 5000ms);
}

TEST(IioDmabuf, NonBlockingEnqueueWithAContendedResvIsEbusy) {
  IioRig s;
  UniqueFd b = s.allocate(4096);
  ASSERT_EQ(s.attach(b.get()), 0);
  s.setNonBlocking(true);
  const ResvHeld held(s, b.get());
  EXPECT_EQ(s.enqueue(b.get(), 4096), -EBUSY);
}

TEST(IioDmabuf, BlockAlreadyInFlightIsEbusyAndParkedIsEperm) {
  // Output: the enqueue does not wait for its own READ fence, so the block state decides.
  IioRig s(device(IioDirection::Output, 1024, dma::DataMode::Benchmark));  // 8 KiB/s: slow
  UniqueFd b = s.allocate(64 * 1024);
  ASSERT_EQ(s.attach(b.get()), 0);
  // Disabled: the first enqueue parks the block; a second one finds it queued.
  const FencePtr parked = s.enqueueFence(b.get(), 4096);
  ASSERT_TRUE(parked);
  EXPECT_EQ(s.enqueue(b.get(), 4096), -EPERM);
  ASSERT_EQ(s.enable(), 0);
  EXPECT_EQ(s.enqueue(b.get(), 4096), -EBUSY);  // now in flight
  // The refused enqueues published fences that signalled with the error, as in the kernel.
  EXPECT_EQ(s.stats().dmabufFailed, 2U);
  ASSERT_EQ(s.disable(), 0);
  EXPECT_EQ(parked->status(), -EINTR);  // aborted by disable
}

TEST(IioDmabuf, FencesAreNamedIioWithPerAttachmentContextsAndUsages) {
  IioRig in(device(IioDirection::Input, 0, dma::DataMode::Benchmark));
  UniqueFd a = in.allocate(4096);
  UniqueFd b = in.allocate(4096);
  ASSERT_EQ(in.attach(a.get()), 0);
  ASSERT_EQ(in.attach(b.get()), 0);
  ASSERT_EQ(in.enable(), 0);
  std::vector<FencePtr> fa;
  for (int i = 0; i < 3; ++i) {
    fa.push_back(in.enqueueFence(a.get(), 4096));
    ASSERT_TRUE(fa.back());
    ASSERT_TRUE(waitBlock(in, a.get()));
  }
  const FencePtr fb = in.enqueueFence(b.get(), 4096);
  ASSERT_TRUE(fb);
  EXPECT_EQ(fa[0]->driverName(), "iio");
  EXPECT_EQ(fa[0]->timelineName(), "iio");
  EXPECT_EQ(fa[0]->seqno(), 1U);
  EXPECT_EQ(fa[1]->seqno(), 2U);
  EXPECT_EQ(fa[2]->seqno(), 3U);
  EXPECT_EQ(fa[0]->context(), fa[2]->context());
  EXPECT_NE(fa[0]->context(), fb->context());  // one context per attachment
  EXPECT_EQ(fb->seqno(), 1U);
  // Input: WRITE usage (the device writes memory).
  auto entries = in.ctx->bufferFromFd(b.get()).value()->resv().entries(ResvUsage::Bookkeep);
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_EQ(entries[0].usage, ResvUsage::Write);

  IioRig out(device(IioDirection::Output, 0, dma::DataMode::Benchmark));
  UniqueFd c = out.allocate(4096);
  ASSERT_EQ(out.attach(c.get()), 0);
  ASSERT_EQ(out.enable(), 0);
  ASSERT_EQ(out.enqueue(c.get(), 4096), 0);
  entries = out.ctx->bufferFromFd(c.get()).value()->resv().entries(ResvUsage::Bookkeep);
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_EQ(entries[0].usage, ResvUsage::Read);  // output: READ usage
}

TEST(IioDmabuf, BlocksCompleteInEnqueueOrder) {
  constexpr int kN = 12;
  constexpr std::uint64_t kBlock = 16 * 1024;
  IioRig s(device(IioDirection::Input, 4 * 1024 * 1024));  // 32 MiB/s: the queue really builds up
  std::vector<UniqueFd> bufs;
  for (int i = 0; i < kN; ++i) {
    bufs.push_back(s.allocate(kBlock));
    ASSERT_EQ(s.attach(bufs.back().get()), 0);
  }
  ASSERT_EQ(s.enable(), 0);
  std::mutex m;
  std::vector<int> order;
  order.reserve(kN);  // the callbacks run inside the signalling section: no allocation there
  std::vector<std::unique_ptr<FenceCallback>> callbacks;
  std::vector<FencePtr> fences;
  struct Cb : FenceCallback {
    Cb(int id, std::mutex& m, std::vector<int>& order)
        : FenceCallback(&run), id(id), m(m), order(order) {}
    static void run(Fence& /*f*/, FenceCallback& self) {
      auto& cb = static_cast<Cb&>(self);
      const std::lock_guard lock(cb.m);
      cb.order.push_back(cb.id);
    }
    int id;
    std::mutex& m;
    std::vector<int>& order;
  };
  for (int i = 0; i < kN; ++i) {
    FencePtr f = s.enqueueFence(bufs[i].get(), kBlock);
    ASSERT_TRUE(f);
    callbacks.push_back(std::make_unique<Cb>(i, m, order));
    if (!f->addCallback(*callbacks.back()).ok()) {
      const std::lock_guard lock(m);
      order.push_back(i);  // already signalled
    }
    fences.push_back(std::move(f));
  }
  for (auto& b : bufs) {
    ASSERT_TRUE(waitBlock(s, b.get()));
  }
  std::vector<int> expected(kN);
  for (int i = 0; i < kN; ++i) {
    expected[i] = i;
  }
  // A wait returns once the fence is signalled, possibly while its callbacks still run (as
  // dma_fence_wait does): read the order under its lock once every callback has run.
  std::vector<int> seen;
  EXPECT_TRUE(waitUntil([&] {
    const std::lock_guard lock(m);
    seen = order;
    return seen.size() == expected.size();
  }));
  EXPECT_EQ(seen, expected);
  for (int i = 1; i < kN; ++i) {
    EXPECT_LE(fences[i - 1]->timestampNs(), fences[i]->timestampNs());
  }
  // Every block carries the next stream bytes.
  PatternChecker checker(s.device->format(), PatternKind::Ramp);
  for (int i = 0; i < kN; ++i) {
    auto map = s.map(bufs[i].get(), kBlock, PROT_READ);
    ASSERT_EQ(s.sync(bufs[i].get(), uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRead), 0);
    EXPECT_EQ(checker.countMismatches(map.bytes(), static_cast<std::uint64_t>(i) * kBlock), 0U);
    ASSERT_EQ(s.sync(bufs[i].get(), uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRead), 0);
  }
}

// The DMA engine's fault injection is the hardware's, a C++ seam of the test bench: there is no
// uAPI for it.
TEST(IioDmabuf, FailedTransferSurfacesOnItsFenceAndStreamingContinues) {
  IioRig s;
  std::vector<UniqueFd> bufs;
  for (int i = 0; i < 3; ++i) {
    bufs.push_back(s.allocate(8192));
    ASSERT_EQ(s.attach(bufs.back().get()), 0);
  }
  s.bench().engine().injectError(2, EIO);
  ASSERT_EQ(s.enable(), 0);
  std::vector<FencePtr> fences;
  for (auto& b : bufs) {
    fences.push_back(s.enqueueFence(b.get(), 8192));
    ASSERT_TRUE(fences.back());
  }
  for (auto& b : bufs) {
    ASSERT_TRUE(waitBlock(s, b.get()));
  }
  EXPECT_EQ(fences[0]->status(), 1);
  EXPECT_EQ(fences[1]->status(), -EIO);
  EXPECT_EQ(fences[2]->status(), 1);
  // The failed block produced no stream bytes: the third continues where the first ended.
  PatternChecker checker(s.device->format(), PatternKind::Ramp);
  {
    auto map = s.map(bufs[2].get(), 8192, PROT_READ);
    ASSERT_EQ(s.sync(bufs[2].get(), uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRead), 0);
    EXPECT_EQ(checker.countMismatches(map.bytes(), 8192), 0U);
    ASSERT_EQ(s.sync(bufs[2].get(), uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRead), 0);
  }
  // The failed buffer can be enqueued again and then succeeds.
  const FencePtr retry = s.enqueueFence(bufs[1].get(), 8192);
  ASSERT_TRUE(retry);
  ASSERT_TRUE(waitBlock(s, bufs[1].get()));
  EXPECT_EQ(retry->status(), 1);
  EXPECT_EQ(retry->seqno(), 2U);
}

// The error and the stall are injected into the DMA engine (the test bench, no uAPI); the rest
// is the application's: EXPORT_SYNC_FILE, poll on the sync file, SYNC_IOC_FILE_INFO.
TEST(IioDmabuf, FailedTransferShowsInTheExportedSyncFile) {
  IioRig s;
  UniqueFd a = s.allocate(8192);
  ASSERT_EQ(s.attach(a.get()), 0);
  s.bench().engine().injectError(1, EIO);
  s.bench().engine().injectStall(1, 50ms);  // still pending when the sync file is exported
  ASSERT_EQ(s.enable(), 0);
  ASSERT_EQ(s.enqueue(a.get(), 8192), 0);
  // EXPORT_SYNC_FILE(READ): the writers, i.e. the ADC's fence.
  UniqueFd sf = s.exportSyncFile(a.get(), kRead);
  ASSERT_TRUE(sf);
  ASSERT_TRUE((s.poll(sf.get(), POLLIN, 5000) & POLLIN) != 0);
  const testing::SyncInfo info = s.info(sf.get());
  EXPECT_EQ(info.status, -EIO);
  ASSERT_EQ(info.fences.size(), 1U);
  EXPECT_EQ(info.fences[0].status, -EIO);
  EXPECT_STREQ(info.fences[0].driverName, "iio");
  EXPECT_STREQ(info.fences[0].objName, "iio");
  EXPECT_NE(info.fences[0].timestampNs, 0U);
  // The next enqueue of the same buffer streams normally.
  const FencePtr f = s.enqueueFence(a.get(), 8192);
  ASSERT_TRUE(f);
  ASSERT_TRUE(waitBlock(s, a.get()));
  EXPECT_EQ(f->status(), 1);
}

TEST(IioDmabuf, DetachWithTransfersInFlightIsSafe) {
  IioRig s(device(IioDirection::Input, 64 * 1024));  // 512 KiB/s
  UniqueFd a = s.allocate(64 * 1024);
  UniqueFd b = s.allocate(64 * 1024);
  ASSERT_EQ(s.attach(a.get()), 0);
  ASSERT_EQ(s.attach(b.get()), 0);
  ASSERT_EQ(s.enable(), 0);
  const FencePtr fa = s.enqueueFence(a.get(), 64 * 1024);
  const FencePtr fb = s.enqueueFence(b.get(), 64 * 1024);
  ASSERT_TRUE(fa && fb);
  ASSERT_EQ(s.detach(a.get()), 0);  // a is being written right now
  ASSERT_EQ(s.detach(b.get()), 0);  // b is queued behind it
  EXPECT_EQ(s.stats().dmabufAttached, 0U);
  EXPECT_EQ(s.enqueue(a.get(), 4096), -EPERM);
  // The attachments live until their transfers are done.
  EXPECT_EQ(s.attachments(a.get()), 1U);
  ASSERT_TRUE(waitBlock(s, a.get()));
  ASSERT_TRUE(waitBlock(s, b.get()));
  EXPECT_EQ(fa->status(), 1);
  EXPECT_EQ(fb->status(), 1);
  EXPECT_EQ(s.bench().dmabufZombies(), 0U);  // reaped
  EXPECT_EQ(s.attachments(a.get()), 0U);
  EXPECT_EQ(s.attachments(b.get()), 0U);
}

TEST(IioDmabuf, ClosingTheFileWithTransfersInFlightIsSafe) {
  IioRig s(device(IioDirection::Input, 64 * 1024));
  UniqueFd a = s.allocate(64 * 1024);
  ASSERT_EQ(s.attach(a.get()), 0);
  ASSERT_EQ(s.enable(), 0);
  const FencePtr fa = s.enqueueFence(a.get(), 64 * 1024);
  ASSERT_TRUE(fa);
  ASSERT_TRUE(s.ctx->close(std::move(s.buf)).ok());
  ASSERT_TRUE(waitBlock(s, a.get()));
  EXPECT_EQ(fa->status(), 1);
  EXPECT_EQ(s.bench().dmabufZombies(), 0U);
  EXPECT_EQ(s.attachments(a.get()), 0U);
}

// The device goes when its context does (the board is taken down with every file closed).
TEST(IioDmabuf, DestroyingTheDeviceWithTransfersInFlightSignalsTheFences) {
  std::optional<IioRig> s(std::in_place, device(IioDirection::Input, 1024));  // very slow
  UniqueFd a = s->allocate(64 * 1024);
  ASSERT_EQ(s->attach(a.get()), 0);
  ASSERT_EQ(s->enable(), 0);
  const FencePtr fa = s->enqueueFence(a.get(), 64 * 1024);
  ASSERT_TRUE(fa);
  const BufferPtr buffer = s->ctx->bufferFromFd(a.get()).value();
  ASSERT_TRUE(s->ctx->close(std::move(s->buf)).ok());
  ASSERT_TRUE(s->ctx->close(std::move(a)).ok());
  const std::weak_ptr<IioDevice> dev = s->device;
  s.reset();
  EXPECT_TRUE(dev.expired());
  EXPECT_TRUE(fa->isSignaled());
  EXPECT_LT(fa->status(), 0);
  EXPECT_EQ(buffer->attachments().size(), 0U);
}

TEST(IioDmabuf, CyclicOutputRepeatsUntilReplacedThenStops) {
  IioRig s(device(IioDirection::Output, 0, dma::DataMode::Data));
  constexpr std::uint64_t kBlock = 16 * 1024;
  UniqueFd a = s.allocate(kBlock);
  UniqueFd b = s.allocate(kBlock);
  PatternGenerator gen(s.device->format(), PatternKind::Ramp);
  std::uint64_t offset = 0;
  for (const UniqueFd* fd : {&a, &b}) {
    auto map = s.map(fd->get(), kBlock);
    ASSERT_EQ(s.sync(fd->get(), uapi::kDmaBufSyncStart | uapi::kDmaBufSyncWrite), 0);
    gen.fill(map.bytes(), offset);
    ASSERT_EQ(s.sync(fd->get(), uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncWrite), 0);
    offset += kBlock;
  }
  ASSERT_EQ(s.attach(a.get()), 0);
  ASSERT_EQ(s.attach(b.get()), 0);
  ASSERT_EQ(s.enable(), 0);
  const FencePtr fa = s.enqueueFence(a.get(), kBlock, kDmabufCyclic);
  ASSERT_TRUE(fa);
  EXPECT_TRUE(waitUntil([&] { return s.stats().checkedBytes >= 5 * kBlock; }))
      << "the block was not repeated";
  EXPECT_EQ(s.poll(a.get(), POLLOUT, 0), 0);  // and is still running
  EXPECT_FALSE(fa->isSignaled());
  const FencePtr fb = s.enqueueFence(b.get(), kBlock);  // replaces it
  ASSERT_TRUE(fb);
  ASSERT_TRUE(waitBlock(s, b.get()));
  ASSERT_TRUE(waitBlock(s, a.get()));
  EXPECT_EQ(fa->status(), 1);  // replaced at the end of a pass: success
  EXPECT_EQ(fb->status(), 1);
  // Stopped: idle means nothing queued and nothing running (a cyclic block never ends by
  // itself, so waitIdle would time out).
  ASSERT_TRUE(s.bench().engine().waitIdle(5s));
  const IioBufferStats st = s.stats();
  EXPECT_EQ(st.mismatches, 0U);
  EXPECT_EQ(st.checkedBytes % kBlock, 0U);
}

TEST(IioDmabuf, CyclicOutputStopsWhenTheBufferIsDisabled) {
  IioRig s(device(IioDirection::Output, 0, dma::DataMode::Benchmark));
  UniqueFd a = s.allocate(4096);
  ASSERT_EQ(s.attach(a.get()), 0);
  ASSERT_EQ(s.enable(), 0);
  const FencePtr fa = s.enqueueFence(a.get(), 4096, kDmabufCyclic);
  ASSERT_TRUE(fa);
  EXPECT_TRUE(waitUntil([&] { return s.stats().transfers >= 10; })) << "the block was not repeated";
  ASSERT_EQ(s.disable(), 0);
  EXPECT_EQ(fa->status(), -EINTR);  // the kernel's abort status
  const auto passes = s.stats().transfers;
  // Stopped: the engine is idle (a cyclic block never ends by itself: waitIdle would time
  // out) and ran no pass after the disable.
  EXPECT_TRUE(s.bench().engine().waitIdle(5s));
  EXPECT_EQ(s.stats().transfers, passes);
}

TEST(IioDmabuf, FileioAndDmabufExcludeEachOther) {
  IioRig s;
  UniqueFd a = s.allocate(4096);
  ASSERT_EQ(s.attach(a.get()), 0);
  ASSERT_EQ(s.enable(), 0);  // DMABUF mode
  std::vector<std::byte> out(64);
  EXPECT_EQ(s.read(out), -EBUSY);
  IioRig o(IioRig::config(IioDirection::Output));
  UniqueFd b = o.allocate(4096);
  ASSERT_EQ(o.attach(b.get()), 0);
  ASSERT_EQ(o.enable(), 0);
  EXPECT_EQ(o.write(out), -EBUSY);
}

TEST(IioDmabuf, EnqueueWhileDisabledRunsAtEnable) {
  IioRig s;
  UniqueFd a = s.allocate(4096);
  ASSERT_EQ(s.attach(a.get()), 0);
  const FencePtr fa = s.enqueueFence(a.get(), 4096);
  ASSERT_TRUE(fa);
  // The engine has finished all it was given, and the block is still pending: it waits for
  // enable, not in the engine.
  ASSERT_TRUE(s.bench().engine().waitIdle(5s));
  EXPECT_EQ(s.poll(a.get(), POLLIN, 0), 0);
  EXPECT_FALSE(fa->isSignaled());
  ASSERT_EQ(s.enable(), 0);
  ASSERT_TRUE(waitBlock(s, a.get()));
  EXPECT_EQ(fa->status(), 1);
}

TEST(IioDmabuf, DetachingAParkedBlockSignalsItsFence) {
  IioRig s;
  UniqueFd a = s.allocate(4096);
  ASSERT_EQ(s.attach(a.get()), 0);
  const FencePtr fa = s.enqueueFence(a.get(), 4096);
  ASSERT_TRUE(fa);
  ASSERT_EQ(s.detach(a.get()), 0);
  EXPECT_EQ(fa->status(), -ECANCELED);
  EXPECT_EQ(s.poll(a.get(), POLLIN, 0), POLLIN);
}

TEST(IioDmabuf, TheEnqueueCycleKeepsTheSignallingRules) {
  std::vector<std::string> reports;
  std::mutex m;
  auto old = setSignallingReportHandler([&](const SignallingReport& r) {
    const std::lock_guard lock(m);
    reports.push_back(std::string(toString(r.violation)) + " at " + r.location);
  });
  {
    IioRig s;
    UniqueFd a = s.allocate(64 * 1024);
    ASSERT_EQ(s.attach(a.get()), 0);
    ASSERT_EQ(s.enable(), 0);
    for (int i = 0; i < 20; ++i) {
      ASSERT_EQ(s.enqueue(a.get(), 64 * 1024), 0);
      ASSERT_TRUE(waitBlock(s, a.get()));
    }
  }
  setSignallingReportHandler(std::move(old));
  const std::lock_guard lock(m);
  EXPECT_TRUE(reports.empty()) << reports.size() << " reports, first: " << reports.front();
}

}  // namespace
}  // namespace zbuf::iio
