// ctest-labels: concurrency
// The DMABUF interface of the emulated IIO device: ATTACH / DETACH / ENQUEUE with the kernel's
// errnos, fences (names, seqnos, usages, order), cyclic output, fault injection, detach with
// transfers in flight, and the exclusion with fileio.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "support/thread_state.h"
#include "support/wait_until.h"
#include "zbuf/core/fence_signalling.h"
#include "zbuf/core/resv.h"
#include "zbuf/devices/iio/iio_buffer_file.h"
#include "zbuf/devices/iio/iio_device.h"
#include "zbuf/heaps/system_heap.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/dma_buf.h"
#include "zbuf/uapi/sync_file.h"

namespace zbuf::iio {
namespace {

using namespace std::chrono_literals;
using testing_support::waitUntil;

struct Rig {
  Rig(IioDirection dir, std::uint64_t rate = 0, dma::DataMode mode = dma::DataMode::Data,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(kEnqueueTimeoutMs)) {
    IioDeviceConfig config;
    config.name = dir == IioDirection::Input ? "adc" : "dac";
    config.direction = dir;
    config.sampleRate = rate;
    config.mode = mode;
    config.length = 4096;
    config.enqueueTimeout = timeout;
    device = std::move(IioDevice::create(config).value());
    file = std::move(device->openBuffer(0).value());
  }
  IioBuffer& buffer() const { return file->buffer(); }
  std::shared_ptr<IioDevice> device;
  std::unique_ptr<IioBufferFile> file;
};

BufferPtr allocate(std::uint64_t size) {
  return std::move(SystemHeap::instance()->allocate(size).value());
}

sys::Mapping mapBuffer(const BufferPtr& b) {
  return std::move(b->mmap(0, b->size(), PROT_READ | PROT_WRITE, MAP_SHARED).value());
}

// Adds an unsignalled foreign fence with `usage` to `b`'s resv.
std::shared_ptr<TimelineFence> addForeignFence(const BufferPtr& b, ResvUsage usage) {
  static auto timeline = Timeline::create("test", "foreign");
  auto fence = timeline->createFence();
  EXPECT_TRUE(b->resv().lock().ok());
  EXPECT_TRUE(b->resv().reserveFencesLocked(1).ok());
  b->resv().addFenceLocked(fence, usage);
  b->resv().unlock();
  return fence;
}

TEST(IioDmabuf, AttachErrors) {
  Rig s(IioDirection::Input);
  auto b = allocate(64 * 1024);
  EXPECT_EQ(s.file->attach(nullptr).code(), EINVAL);
  ASSERT_TRUE(s.file->attach(b).ok());
  EXPECT_EQ(s.file->attach(b).code(), EBUSY);  // attached twice
  EXPECT_EQ(s.buffer().stats().dmabufAttached, 1U);

  // A buffer without DMABUF support.
  IioDeviceConfig config;
  config.dmabuf = false;
  auto plain = std::move(IioDevice::create(config).value());
  auto plainFile = std::move(plain->openBuffer(0).value());
  EXPECT_EQ(plainFile->attach(b).code(), EPERM);

  // Enabled in fileio mode: no attach.
  Rig f(IioDirection::Input);
  ASSERT_TRUE(f.buffer().enable().ok());
  EXPECT_EQ(f.file->attach(b).code(), EBUSY);
}

TEST(IioDmabuf, NonBlockingAttachWithAContendedResvIsEbusy) {
  Rig s(IioDirection::Input);
  auto b = allocate(4096);
  s.file->setNonBlocking(true);
  ASSERT_TRUE(b->resv().lock().ok());
  EXPECT_EQ(s.file->attach(b).code(), EBUSY);
  b->resv().unlock();
  EXPECT_TRUE(s.file->attach(b).ok());
}

TEST(IioDmabuf, DetachErrorsAndCloseDetachesAll) {
  Rig s(IioDirection::Input);
  auto a = allocate(4096);
  auto b = allocate(4096);
  EXPECT_EQ(s.file->detach(*a).code(), EPERM);  // never attached
  ASSERT_TRUE(s.file->attach(a).ok());
  ASSERT_TRUE(s.file->attach(b).ok());
  EXPECT_EQ(a->attachments().size(), 1U);
  ASSERT_TRUE(s.file->detach(*a).ok());
  EXPECT_EQ(s.file->detach(*a).code(), EPERM);  // detached already
  EXPECT_EQ(a->attachments().size(), 0U);
  s.file.reset();  // closing the buffer file detaches b
  EXPECT_EQ(b->attachments().size(), 0U);
  auto again = s.device->openBuffer(0);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)->attach(b).ok());  // not EBUSY: the old attachment is gone
}

TEST(IioDmabuf, EnqueueArgumentErrors) {
  Rig s(IioDirection::Input);
  auto b = allocate(8192);
  auto other = allocate(8192);
  ASSERT_TRUE(s.file->attach(b).ok());
  EXPECT_EQ(s.file->enqueue(*b, 4096, 0x2).code(), EINVAL);            // unknown flag
  EXPECT_EQ(s.file->enqueue(*b, 4096, kDmabufCyclic).code(), EINVAL);  // cyclic on input
  EXPECT_EQ(s.file->enqueue(*b, 0).code(), EINVAL);                    // bytes_used 0
  EXPECT_EQ(s.file->enqueue(*b, 8193).code(), EINVAL);                 // beyond the buffer
  EXPECT_EQ(s.file->enqueue(*other, 4096).code(), EPERM);              // not attached
  EXPECT_EQ(s.buffer().stats().dmabufEnqueued, 0U);  // none of them published a fence
}

TEST(IioDmabuf, InputEnqueueWaitsForReadersAndWriters) {
  Rig s(IioDirection::Input, 0, dma::DataMode::Data, 100ms);
  auto b = allocate(4096);
  ASSERT_TRUE(s.file->attach(b).ok());
  ASSERT_TRUE(s.buffer().enable().ok());
  // A pending reader: the device may not overwrite the memory.
  auto reader = addForeignFence(b, ResvUsage::Read);
  s.file->setNonBlocking(true);
  EXPECT_EQ(s.file->enqueue(*b, 4096).code(), EBUSY);  // no wait at all
  s.file->setNonBlocking(false);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(s.file->enqueue(*b, 4096).code(), EBUSY);  // after the (shortened) timeout
  EXPECT_GE(std::chrono::steady_clock::now() - start, 95ms);
  reader->signal();
  // Signalled meanwhile: the enqueue goes through. With the kernel's 5 s timeout, so that
  // the signal comes in time however late the signaller runs.
  Rig patient(IioDirection::Input);
  auto c = allocate(4096);
  ASSERT_TRUE(patient.file->attach(c).ok());
  ASSERT_TRUE(patient.buffer().enable().ok());
  auto pending = addForeignFence(c, ResvUsage::Read);
  testing_support::ThreadMark enqueueing;
  std::thread signaller([&] {
    (void)enqueueing.waitUntilAsleep();  // the signal wakes an enqueue that sleeps
    pending->signal();
  });
  enqueueing.mark();
  auto fence = patient.file->enqueue(*c, 4096);
  signaller.join();
  ASSERT_TRUE(fence.ok()) << fence.error().describe();
  EXPECT_TRUE((*fence)->wait().ok());
  EXPECT_EQ((*fence)->status(), 1);
}

TEST(IioDmabuf, OutputEnqueueWaitsForWritersOnly) {
  Rig s(IioDirection::Output, 0, dma::DataMode::Benchmark, 50ms);
  auto b = allocate(4096);
  ASSERT_TRUE(s.file->attach(b).ok());
  ASSERT_TRUE(s.buffer().enable().ok());
  auto reader = addForeignFence(b, ResvUsage::Read);
  auto f1 = s.file->enqueue(*b, 4096);  // readers do not conflict with a device read
  ASSERT_TRUE(f1.ok());
  ASSERT_TRUE((*f1)->wait().ok());
  auto writer = addForeignFence(b, ResvUsage::Write);
  EXPECT_EQ(s.file->enqueue(*b, 4096).code(), EBUSY);
  writer->signal();
  reader->signal();
  EXPECT_TRUE(s.file->enqueue(*b, 4096).ok());
}

TEST(IioDmabuf, TheKernelDefaultTimeoutIsFiveSeconds) {
  Rig s(IioDirection::Input);
  EXPECT_EQ(kEnqueueTimeoutMs, 5000U);
  EXPECT_EQ(s.device->config().enqueueTimeout, 5000ms);
}

TEST(IioDmabuf, NonBlockingEnqueueWithAContendedResvIsEbusy) {
  Rig s(IioDirection::Input);
  auto b = allocate(4096);
  ASSERT_TRUE(s.file->attach(b).ok());
  s.file->setNonBlocking(true);
  ASSERT_TRUE(b->resv().lock().ok());
  EXPECT_EQ(s.file->enqueue(*b, 4096).code(), EBUSY);
  b->resv().unlock();
}

TEST(IioDmabuf, BlockAlreadyInFlightIsEbusyAndParkedIsEperm) {
  // Output: the enqueue does not wait for its own READ fence, so the block state decides.
  Rig s(IioDirection::Output, 1024, dma::DataMode::Benchmark);  // 8 KiB/s: slow
  auto b = allocate(64 * 1024);
  ASSERT_TRUE(s.file->attach(b).ok());
  // Disabled: the first enqueue parks the block; a second one finds it queued.
  auto parked = s.file->enqueue(*b, 4096);
  ASSERT_TRUE(parked.ok());
  auto again = s.file->enqueue(*b, 4096);
  EXPECT_EQ(again.code(), EPERM);
  ASSERT_TRUE(s.buffer().enable().ok());
  auto busy = s.file->enqueue(*b, 4096);  // now in flight
  EXPECT_EQ(busy.code(), EBUSY);
  // The refused enqueues published fences that signalled with the error, as in the kernel.
  EXPECT_EQ(s.buffer().stats().dmabufFailed, 2U);
  s.buffer().disable();
  EXPECT_EQ((*parked)->status(), -EINTR);  // aborted by disable
}

TEST(IioDmabuf, FencesAreNamedIioWithPerAttachmentContextsAndUsages) {
  Rig in(IioDirection::Input, 0, dma::DataMode::Benchmark);
  auto a = allocate(4096);
  auto b = allocate(4096);
  ASSERT_TRUE(in.file->attach(a).ok());
  ASSERT_TRUE(in.file->attach(b).ok());
  ASSERT_TRUE(in.buffer().enable().ok());
  std::vector<FencePtr> fa;
  for (int i = 0; i < 3; ++i) {
    auto f = in.file->enqueue(*a, 4096);
    ASSERT_TRUE(f.ok()) << f.error().describe();
    ASSERT_TRUE((*f)->wait().ok());
    fa.push_back(*f);
  }
  auto fb = in.file->enqueue(*b, 4096);
  ASSERT_TRUE(fb.ok());
  EXPECT_EQ(fa[0]->driverName(), "iio");
  EXPECT_EQ(fa[0]->timelineName(), "iio");
  EXPECT_EQ(fa[0]->seqno(), 1U);
  EXPECT_EQ(fa[1]->seqno(), 2U);
  EXPECT_EQ(fa[2]->seqno(), 3U);
  EXPECT_EQ(fa[0]->context(), fa[2]->context());
  EXPECT_NE(fa[0]->context(), (*fb)->context());  // one context per attachment
  EXPECT_EQ((*fb)->seqno(), 1U);
  // Input: WRITE usage (the device writes memory).
  auto entries = b->resv().entries(ResvUsage::Bookkeep);
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_EQ(entries[0].usage, ResvUsage::Write);

  Rig out(IioDirection::Output, 0, dma::DataMode::Benchmark);
  auto c = allocate(4096);
  ASSERT_TRUE(out.file->attach(c).ok());
  ASSERT_TRUE(out.buffer().enable().ok());
  ASSERT_TRUE(out.file->enqueue(*c, 4096).ok());
  entries = c->resv().entries(ResvUsage::Bookkeep);
  ASSERT_EQ(entries.size(), 1U);
  EXPECT_EQ(entries[0].usage, ResvUsage::Read);  // output: READ usage
}

TEST(IioDmabuf, BlocksCompleteInEnqueueOrder) {
  constexpr int kN = 12;
  Rig s(IioDirection::Input, 4 * 1024 * 1024);  // 32 MiB/s: the queue really builds up
  std::vector<BufferPtr> bufs;
  for (int i = 0; i < kN; ++i) {
    bufs.push_back(allocate(16 * 1024));
    ASSERT_TRUE(s.file->attach(bufs.back()).ok());
  }
  ASSERT_TRUE(s.buffer().enable().ok());
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
    auto f = s.file->enqueue(*bufs[i], 16 * 1024);
    ASSERT_TRUE(f.ok());
    callbacks.push_back(std::make_unique<Cb>(i, m, order));
    if (!(*f)->addCallback(*callbacks.back()).ok()) {
      const std::lock_guard lock(m);
      order.push_back(i);  // already signalled
    }
    fences.push_back(*f);
  }
  for (auto& f : fences) {
    ASSERT_TRUE(f->wait().ok());
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
    auto map = mapBuffer(bufs[i]);
    auto access = CpuAccess::begin(bufs[i], DmaDirection::FromDevice);
    ASSERT_TRUE(access.ok());
    EXPECT_EQ(checker.countMismatches(map.bytes(), static_cast<std::uint64_t>(i) * 16 * 1024), 0U);
  }
}

TEST(IioDmabuf, FailedTransferSurfacesOnItsFenceAndStreamingContinues) {
  Rig s(IioDirection::Input);
  std::vector<BufferPtr> bufs;
  for (int i = 0; i < 3; ++i) {
    bufs.push_back(allocate(8192));
    ASSERT_TRUE(s.file->attach(bufs.back()).ok());
  }
  s.buffer().engine().injectError(2, EIO);
  ASSERT_TRUE(s.buffer().enable().ok());
  std::vector<FencePtr> fences;
  for (auto& b : bufs) {
    fences.push_back(std::move(s.file->enqueue(*b, 8192).value()));
  }
  for (auto& f : fences) {
    ASSERT_TRUE(f->wait().ok());
  }
  EXPECT_EQ(fences[0]->status(), 1);
  EXPECT_EQ(fences[1]->status(), -EIO);
  EXPECT_EQ(fences[2]->status(), 1);
  // The failed block produced no stream bytes: the third continues where the first ended.
  PatternChecker checker(s.device->format(), PatternKind::Ramp);
  auto map = mapBuffer(bufs[2]);
  EXPECT_EQ(checker.countMismatches(map.bytes(), 8192), 0U);
  // The failed buffer can be enqueued again and then succeeds.
  auto retry = s.file->enqueue(*bufs[1], 8192);
  ASSERT_TRUE(retry.ok());
  ASSERT_TRUE((*retry)->wait().ok());
  EXPECT_EQ((*retry)->status(), 1);
  EXPECT_EQ((*retry)->seqno(), 2U);
}

TEST(IioDmabuf, FailedTransferShowsInTheExportedSyncFile) {
  Rig s(IioDirection::Input);
  auto a = allocate(8192);
  ASSERT_TRUE(s.file->attach(a).ok());
  s.buffer().engine().injectError(1, EIO);
  s.buffer().engine().injectStall(1, 50ms);  // still pending when the sync file is exported
  ASSERT_TRUE(s.buffer().enable().ok());
  ASSERT_TRUE(s.file->enqueue(*a, 8192).ok());
  // EXPORT_SYNC_FILE(READ): the writers, i.e. the ADC's fence.
  UniqueFd afd = uapi::Context::current().installBuffer(a).value();
  auto sf = uapi::exportSyncFile(afd.get(), uapi::kDmaBufSyncRead);
  ASSERT_TRUE(sf.ok()) << sf.error().describe();
  auto ready = sys::pollOne(sf->get(), POLLIN, std::chrono::milliseconds(5000));
  ASSERT_TRUE(ready.ok());
  ASSERT_TRUE((*ready & POLLIN) != 0);
  auto info = uapi::syncFileInfo(sf->get());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->status, -EIO);
  ASSERT_EQ(info->fences.size(), 1U);
  EXPECT_EQ(info->fences[0].status, -EIO);
  EXPECT_EQ(info->fences[0].driverName, "iio");
  EXPECT_EQ(info->fences[0].objName, "iio");
  EXPECT_NE(info->fences[0].timestampNs, 0U);
  // The next enqueue of the same buffer streams normally.
  auto f = s.file->enqueue(*a, 8192);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->wait().ok());
  EXPECT_EQ((*f)->status(), 1);
}

TEST(IioDmabuf, DetachWithTransfersInFlightIsSafe) {
  Rig s(IioDirection::Input, 64 * 1024);  // 512 KiB/s
  auto a = allocate(64 * 1024);
  auto b = allocate(64 * 1024);
  ASSERT_TRUE(s.file->attach(a).ok());
  ASSERT_TRUE(s.file->attach(b).ok());
  ASSERT_TRUE(s.buffer().enable().ok());
  auto fa = s.file->enqueue(*a, 64 * 1024);
  auto fb = s.file->enqueue(*b, 64 * 1024);
  ASSERT_TRUE(fa.ok());
  ASSERT_TRUE(fb.ok());
  ASSERT_TRUE(s.file->detach(*a).ok());  // a is being written right now
  ASSERT_TRUE(s.file->detach(*b).ok());  // b is queued behind it
  EXPECT_EQ(s.buffer().stats().dmabufAttached, 0U);
  EXPECT_EQ(s.file->enqueue(*a, 4096).code(), EPERM);
  // The attachments live until their transfers are done.
  EXPECT_EQ(a->attachments().size(), 1U);
  ASSERT_TRUE((*fa)->wait().ok());
  ASSERT_TRUE((*fb)->wait().ok());
  EXPECT_EQ((*fa)->status(), 1);
  EXPECT_EQ((*fb)->status(), 1);
  EXPECT_EQ(s.buffer().dmabufZombies(), 0U);  // reaped
  EXPECT_EQ(a->attachments().size(), 0U);
  EXPECT_EQ(b->attachments().size(), 0U);
}

TEST(IioDmabuf, ClosingTheFileWithTransfersInFlightIsSafe) {
  Rig s(IioDirection::Input, 64 * 1024);
  auto a = allocate(64 * 1024);
  ASSERT_TRUE(s.file->attach(a).ok());
  ASSERT_TRUE(s.buffer().enable().ok());
  auto fa = s.file->enqueue(*a, 64 * 1024);
  ASSERT_TRUE(fa.ok());
  IioBuffer& buf = s.buffer();
  s.file.reset();
  ASSERT_TRUE((*fa)->wait().ok());
  EXPECT_EQ(buf.dmabufZombies(), 0U);
  EXPECT_EQ(a->attachments().size(), 0U);
  s.device.reset();  // the device goes with everything it held
}

TEST(IioDmabuf, DestroyingTheDeviceWithTransfersInFlightSignalsTheFences) {
  Rig s(IioDirection::Input, 1024);  // very slow
  auto a = allocate(64 * 1024);
  ASSERT_TRUE(s.file->attach(a).ok());
  ASSERT_TRUE(s.buffer().enable().ok());
  auto fa = s.file->enqueue(*a, 64 * 1024);
  ASSERT_TRUE(fa.ok());
  s.file.reset();
  s.device.reset();
  EXPECT_TRUE((*fa)->isSignaled());
  EXPECT_LT((*fa)->status(), 0);
  EXPECT_EQ(a->attachments().size(), 0U);
}

TEST(IioDmabuf, CyclicOutputRepeatsUntilReplacedThenStops) {
  Rig s(IioDirection::Output, 0, dma::DataMode::Data);
  constexpr std::uint64_t kBlock = 16 * 1024;
  auto a = allocate(kBlock);
  auto b = allocate(kBlock);
  PatternGenerator gen(s.device->format(), PatternKind::Ramp);
  {
    auto ma = mapBuffer(a);
    auto mb = mapBuffer(b);
    gen.fill(ma.bytes(), 0);
    gen.fill(mb.bytes(), kBlock);
  }
  ASSERT_TRUE(s.file->attach(a).ok());
  ASSERT_TRUE(s.file->attach(b).ok());
  ASSERT_TRUE(s.buffer().enable().ok());
  auto fa = s.file->enqueue(*a, kBlock, kDmabufCyclic);
  ASSERT_TRUE(fa.ok());
  EXPECT_TRUE(waitUntil([&] { return s.buffer().stats().checkedBytes >= 5 * kBlock; }))
      << "the block was not repeated";
  EXPECT_FALSE((*fa)->isSignaled());      // and is still running
  auto fb = s.file->enqueue(*b, kBlock);  // replaces it
  ASSERT_TRUE(fb.ok());
  ASSERT_TRUE((*fb)->wait().ok());
  EXPECT_EQ((*fa)->status(), 1);  // replaced at the end of a pass: success
  EXPECT_EQ((*fb)->status(), 1);
  // Stopped: idle means nothing queued and nothing running (a cyclic block never ends by
  // itself, so waitIdle would time out).
  ASSERT_TRUE(s.buffer().engine().waitIdle(5s));
  const IioBufferStats st = s.buffer().stats();
  EXPECT_EQ(st.mismatches, 0U);
  EXPECT_EQ(st.checkedBytes % kBlock, 0U);
}

TEST(IioDmabuf, CyclicOutputStopsWhenTheBufferIsDisabled) {
  Rig s(IioDirection::Output, 0, dma::DataMode::Benchmark);
  auto a = allocate(4096);
  ASSERT_TRUE(s.file->attach(a).ok());
  ASSERT_TRUE(s.buffer().enable().ok());
  auto fa = s.file->enqueue(*a, 4096, kDmabufCyclic);
  ASSERT_TRUE(fa.ok());
  EXPECT_TRUE(waitUntil([&] { return s.buffer().stats().transfers >= 10; }))
      << "the block was not repeated";
  s.buffer().disable();
  EXPECT_EQ((*fa)->status(), -EINTR);  // the kernel's abort status
  const auto passes = s.buffer().stats().transfers;
  // Stopped: the engine is idle (a cyclic block never ends by itself: waitIdle would time
  // out) and ran no pass after the disable.
  EXPECT_TRUE(s.buffer().engine().waitIdle(5s));
  EXPECT_EQ(s.buffer().stats().transfers, passes);
}

TEST(IioDmabuf, FileioAndDmabufExcludeEachOther) {
  Rig s(IioDirection::Input);
  auto a = allocate(4096);
  ASSERT_TRUE(s.file->attach(a).ok());
  ASSERT_TRUE(s.buffer().enable().ok());  // DMABUF mode
  std::vector<std::byte> out(64);
  EXPECT_EQ(s.file->read(out).code(), EBUSY);
  Rig o(IioDirection::Output);
  auto b = allocate(4096);
  ASSERT_TRUE(o.file->attach(b).ok());
  ASSERT_TRUE(o.buffer().enable().ok());
  EXPECT_EQ(o.file->write(out).code(), EBUSY);
}

TEST(IioDmabuf, EnqueueWhileDisabledRunsAtEnable) {
  Rig s(IioDirection::Input);
  auto a = allocate(4096);
  ASSERT_TRUE(s.file->attach(a).ok());
  auto fa = s.file->enqueue(*a, 4096);
  ASSERT_TRUE(fa.ok());
  // The engine has finished all it was given, and the fence is still unsignalled: the block
  // waits for enable, not in the engine.
  ASSERT_TRUE(s.buffer().engine().waitIdle(5s));
  EXPECT_FALSE((*fa)->isSignaled());
  ASSERT_TRUE(s.buffer().enable().ok());
  ASSERT_TRUE((*fa)->wait().ok());
  EXPECT_EQ((*fa)->status(), 1);
}

TEST(IioDmabuf, DetachingAParkedBlockSignalsItsFence) {
  Rig s(IioDirection::Input);
  auto a = allocate(4096);
  ASSERT_TRUE(s.file->attach(a).ok());
  auto fa = s.file->enqueue(*a, 4096);
  ASSERT_TRUE(fa.ok());
  ASSERT_TRUE(s.file->detach(*a).ok());
  EXPECT_EQ((*fa)->status(), -ECANCELED);
}

TEST(IioDmabuf, TheEnqueueCycleKeepsTheSignallingRules) {
  std::vector<std::string> reports;
  std::mutex m;
  auto old = setSignallingReportHandler([&](const SignallingReport& r) {
    const std::lock_guard lock(m);
    reports.push_back(std::string(toString(r.violation)) + " at " + r.location);
  });
  {
    Rig s(IioDirection::Input);
    auto a = allocate(64 * 1024);
    ASSERT_TRUE(s.file->attach(a).ok());
    ASSERT_TRUE(s.buffer().enable().ok());
    for (int i = 0; i < 20; ++i) {
      auto f = s.file->enqueue(*a, 64 * 1024);
      ASSERT_TRUE(f.ok());
      ASSERT_TRUE((*f)->wait().ok());
    }
  }
  setSignallingReportHandler(std::move(old));
  const std::lock_guard lock(m);
  EXPECT_TRUE(reports.empty()) << reports.size() << " reports, first: " << reports.front();
}

}  // namespace
}  // namespace zbuf::iio
