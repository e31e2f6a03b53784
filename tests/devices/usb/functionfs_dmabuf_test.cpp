// ctest-labels: concurrency
// The FunctionFS DMABUF interface: every errno of ATTACH/DETACH/TRANSFER, the directions and
// fence usages, and the three kernel defects made ordinary situations (reference section 13).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <thread>
#include <vector>

#include "zbuf/base/sys.h"
#include "zbuf/devices/usb/functionfs.h"
#include "zbuf/devices/usb/functionfs_uapi.h"
#include "zbuf/devices/usb/host.h"
#include "zbuf/heaps/system_heap.h"

namespace zbuf::usb {
namespace {

using namespace std::chrono_literals;

constexpr unsigned kIn = 1;
constexpr unsigned kOut = 2;
constexpr std::uint64_t kSize = 256 * 1024;

BufferPtr allocate(std::uint64_t size = kSize) {
  return SystemHeap::instance()->allocate(size).value();
}

// Adds an unsignalled fence of `usage` to the buffer, as another device's pending access.
std::shared_ptr<TimelineFence> addForeignFence(const BufferPtr& b, ResvUsage usage) {
  static auto timeline = Timeline::create("test", "foreign");
  auto f = timeline->createFence();
  Resv& resv = b->resv();
  EXPECT_TRUE(resv.lock().ok());
  EXPECT_TRUE(resv.reserveFencesLocked(1).ok());
  resv.addFenceLocked(f, usage);
  resv.unlock();
  return f;
}

struct Rig {
  explicit Rig(LinkConfig lc = {}, bool configure = true)
      : link(UsbLink::create(lc)),
        host(link, {}),
        function(FunctionFs::create(FunctionConfig{.transferTimeout = 200ms})) {
    EXPECT_TRUE(function->bind(link).ok());
    if (configure) {
      EXPECT_TRUE(host.configure().ok());
    }
    in = std::move(function->open(kIn).value());
    out = std::move(function->open(kOut).value());
  }
  std::shared_ptr<UsbLink> link;
  UsbHost host;
  std::shared_ptr<FunctionFs> function;
  std::unique_ptr<EndpointFile> in;
  std::unique_ptr<EndpointFile> out;
};

void fillPattern(const BufferPtr& b, std::uint64_t offset) {
  auto map = sys::mmap(b->size(), PROT_READ | PROT_WRITE, MAP_SHARED, b->fd().get(), 0);
  ASSERT_TRUE(map.ok());
  PatternGenerator(SampleFormat{}, PatternKind::Ramp).fill(map->bytes(), offset);
}

// --- ep0, ATTACH ---------------------------------------------------------------------------------

TEST(FfsDmabuf, Ep0RefusesTheDmabufIoctlsWithEnotty) {
  Rig rig;
  auto ep0 = std::move(rig.function->open(0).value());
  auto b = allocate();
  EXPECT_EQ(ep0->attach(b).code(), ENOTTY);
  EXPECT_EQ(ep0->detach(b).code(), ENOTTY);
  EXPECT_EQ(ep0->transfer(b, kSize).code(), ENOTTY);
  int fd = b->fd().get();
  EXPECT_EQ(endpointIoctl(*ep0, kFunctionfsDmabufAttach, &fd).code(), ENOTTY);
  EXPECT_EQ(endpointIoctl(*ep0, kFunctionfsDmabufDetach, &fd).code(), ENOTTY);
  DmabufTransferReq req{fd, 0, kSize};
  EXPECT_EQ(endpointIoctl(*ep0, kFunctionfsDmabufTransfer, &req).code(), ENOTTY);
}

TEST(FfsDmabuf, AttachWithoutScatterGatherIsEpermBeforeTheFdIsLookedAt) {
  Rig rig(LinkConfig{.scatterGather = false});
  EXPECT_EQ(rig.in->attachDmabuf(-1).code(), EPERM);
  EXPECT_EQ(rig.in->attach(allocate()).code(), EPERM);
}

TEST(FfsDmabuf, AttachOnAnUnboundFunctionIsEperm) {
  auto f = FunctionFs::create();
  auto in = std::move(f->open(kIn).value());
  EXPECT_EQ(in->attach(allocate()).code(), EPERM);
}

TEST(FfsDmabuf, AttachBadFdIsEbadfAndANonBufferIsEinval) {
  Rig rig;
  EXPECT_EQ(rig.in->attachDmabuf(-1).code(), EBADF);
  auto memfd = sys::memfdCreate("not-a-buffer", 0).value();
  EXPECT_EQ(rig.in->attachDmabuf(memfd.get()).code(), EINVAL);
}

TEST(FfsDmabuf, NonBlockingAttachWithContendedReservationIsEbusy) {
  Rig rig;
  rig.in->setNonblocking(true);
  auto b = allocate();
  ASSERT_TRUE(b->resv().lock().ok());
  std::thread other([&] { EXPECT_EQ(rig.in->attach(b).code(), EBUSY); });
  other.join();
  b->resv().unlock();
  EXPECT_TRUE(rig.in->attach(b).ok());
  EXPECT_EQ(b->attachments().size(), 1U);
}

// --- DETACH --------------------------------------------------------------------------------------

TEST(FfsDmabuf, DetachOfABufferNotAttachedIsEperm) {
  Rig rig;
  auto b = allocate();
  EXPECT_EQ(rig.in->detach(b).code(), EPERM);
  EXPECT_EQ(rig.in->detachDmabuf(b->fd().get()).code(), EPERM);
  EXPECT_EQ(rig.in->detachDmabuf(-1).code(), EBADF);
  ASSERT_TRUE(rig.in->attach(b).ok());
  EXPECT_EQ(rig.out->detach(b).code(), EPERM);  // attached to another endpoint
  EXPECT_TRUE(rig.in->detach(b).ok());
  EXPECT_EQ(rig.in->detach(b).code(), EPERM);
  EXPECT_TRUE(b->attachments().empty());
}

TEST(FfsDmabuf, DetachCancelsAPendingTransferWithEconnreset) {
  Rig rig;
  auto b = allocate();
  ASSERT_TRUE(rig.out->attach(b).ok());
  auto fence = rig.out->transfer(b, kSize);  // pending: the host sends nothing
  ASSERT_TRUE(fence.ok());
  EXPECT_EQ((*fence)->status(), 0);
  ASSERT_TRUE(rig.out->detach(b).ok());
  EXPECT_EQ((*fence)->status(), -ECONNRESET);
  EXPECT_TRUE(b->attachments().empty());
}

TEST(FfsDmabuf, ClosingTheEndpointDetachesEverything) {
  Rig rig;
  auto b1 = allocate();
  auto b2 = allocate();
  ASSERT_TRUE(rig.out->attach(b1).ok());
  ASSERT_TRUE(rig.out->attach(b2).ok());
  EXPECT_EQ(rig.out->attachedCount(), 2U);
  auto fence = rig.out->transfer(b2, kSize).value();
  rig.out.reset();
  EXPECT_EQ(fence->status(), -ECONNRESET);
  EXPECT_TRUE(b1->attachments().empty());
  EXPECT_TRUE(b2->attachments().empty());
}

// --- TRANSFER: check order -----------------------------------------------------------------------

TEST(FfsDmabuf, TransferChecksFlagsThenFdThenLengthThenAttachment) {
  Rig rig;
  auto b = allocate();
  const int fd = b->fd().get();
  EXPECT_EQ(rig.in->transferDmabuf({-1, 1, 0}).code(), EINVAL);     // flags first
  EXPECT_EQ(rig.in->transferDmabuf({-1, 0, kSize}).code(), EBADF);  // then the fd
  EXPECT_EQ(rig.in->transferDmabuf({fd, 0, 0}).code(), EINVAL);     // length 0, not attached
  EXPECT_EQ(rig.in->transferDmabuf({fd, 0, kSize + 1}).code(), EINVAL);
  EXPECT_EQ(rig.in->transferDmabuf({fd, 0, kSize}).code(), EPERM);  // then attachment
  auto memfd = sys::memfdCreate("not-a-buffer", 0).value();
  EXPECT_EQ(rig.in->transferDmabuf({memfd.get(), 0, 1}).code(), EINVAL);
  ASSERT_TRUE(rig.in->attach(b).ok());
  EXPECT_TRUE(rig.in->transferDmabuf({fd, 0, kSize}).ok());
}

TEST(FfsDmabuf, TransferBeforeConfigurationIsEagainWhenNonBlocking) {
  Rig rig({}, /*configure=*/false);
  auto b = allocate();
  ASSERT_TRUE(rig.in->attach(b).ok());
  rig.in->setNonblocking(true);
  EXPECT_EQ(rig.in->transfer(b, kSize).code(), EAGAIN);
}

TEST(FfsDmabuf, NonBlockingTransferWithContendedReservationIsEbusy) {
  Rig rig;
  auto b = allocate();
  ASSERT_TRUE(rig.in->attach(b).ok());
  rig.in->setNonblocking(true);
  ASSERT_TRUE(b->resv().lock().ok());
  std::thread other([&] { EXPECT_EQ(rig.in->transfer(b, kSize).code(), EBUSY); });
  other.join();
  b->resv().unlock();
}

// --- directions and fences -----------------------------------------------------------------------

TEST(FfsDmabuf, InTransferReadsMemoryAddsAReadFenceAndTheHostChecksIt) {
  Rig rig(LinkConfig{.speed = LinkSpeed::Usb2});  // slow enough to see it pending
  auto b = allocate(1024 * 1024);
  fillPattern(b, 0);
  ASSERT_TRUE(rig.in->attach(b).ok());
  auto fence = rig.in->transfer(b, b->size()).value();
  EXPECT_EQ(fence->driverName(), "functionfs");
  EXPECT_EQ(fence->timelineName(), "");
  EXPECT_EQ(fence->seqno(), 1U);
  // Pending READ fence: the buffer polls IN (writers done) but not OUT.
  EXPECT_TRUE(b->resv().testSignaled(ResvUsage::Write));
  EXPECT_FALSE(b->resv().testSignaled(ResvUsage::Read));
  ASSERT_TRUE(fence->wait().ok());
  EXPECT_EQ(fence->status(), 1);
  EXPECT_TRUE(b->resv().testSignaled(ResvUsage::Read));
  const EndpointStats s = rig.host.stats(kIn);
  EXPECT_EQ(s.verifiedBytes, b->size());
  EXPECT_EQ(s.mismatches, 0U);
}

TEST(FfsDmabuf, OutTransferWritesMemoryAndAddsAWriteFence) {
  Rig rig;
  auto b = allocate();
  ASSERT_TRUE(rig.out->attach(b).ok());
  auto fence = rig.out->transfer(b, kSize).value();
  EXPECT_FALSE(b->resv().testSignaled(ResvUsage::Write));  // polls nothing
  EXPECT_FALSE(b->resv().testSignaled(ResvUsage::Read));
  rig.host.startSending(kOut, kSize);
  ASSERT_TRUE(fence->wait().ok());
  EXPECT_EQ(fence->status(), 1);
  auto map = sys::mmap(kSize, PROT_READ, MAP_SHARED, b->fd().get(), 0).value();
  EXPECT_EQ(PatternChecker(SampleFormat{}, PatternKind::Ramp).countMismatches(map.bytes(), 0), 0U);
}

TEST(FfsDmabuf, SeqnosArePerEndpointFromOneAndContextsPerAttachment) {
  Rig rig;
  auto b1 = allocate();
  auto b2 = allocate();
  ASSERT_TRUE(rig.in->attach(b1).ok());
  ASSERT_TRUE(rig.in->attach(b2).ok());
  auto f1 = rig.in->transfer(b1, kSize).value();
  auto f2 = rig.in->transfer(b2, kSize).value();
  auto f3 = rig.in->transfer(b1, kSize).value();
  EXPECT_EQ(f1->seqno(), 1U);
  EXPECT_EQ(f2->seqno(), 2U);
  EXPECT_EQ(f3->seqno(), 3U);
  EXPECT_NE(f1->context(), f2->context());
  EXPECT_EQ(f1->context(), f3->context());
  // The OUT endpoint counts on its own.
  ASSERT_TRUE(rig.out->attach(b2).ok());
  rig.host.startSending(kOut);
  ASSERT_TRUE(f2->wait().ok());
  EXPECT_EQ(rig.out->transfer(b2, kSize).value()->seqno(), 1U);
}

TEST(FfsDmabuf, InTransferWaitsForAWriterAndNonBlockingIsEbusy) {
  Rig rig;
  auto b = allocate();
  fillPattern(b, 0);
  ASSERT_TRUE(rig.in->attach(b).ok());
  auto adc = addForeignFence(b, ResvUsage::Write);  // e.g. the ADC still writing
  rig.in->setNonblocking(true);
  EXPECT_EQ(rig.in->transfer(b, kSize).code(), EBUSY);
  rig.in->setNonblocking(false);
  std::atomic<bool> queued{false};
  std::thread t([&] {
    auto f = rig.in->transfer(b, kSize);
    ASSERT_TRUE(f.ok());
    queued = true;
    EXPECT_TRUE((*f)->wait().ok());
  });
  std::this_thread::sleep_for(30ms);
  EXPECT_FALSE(queued.load());
  adc->signal();
  t.join();
  EXPECT_EQ(rig.host.stats(kIn).verifiedBytes, kSize);
}

TEST(FfsDmabuf, BlockingTransferBehindAWriterThatNeverSignalsIsEbusyAfterTheTimeout) {
  Rig rig;  // 200 ms instead of the kernel's 5 s
  auto b = allocate();
  ASSERT_TRUE(rig.in->attach(b).ok());
  auto adc = addForeignFence(b, ResvUsage::Write);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(rig.in->transfer(b, kSize).code(), EBUSY);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 190ms);
  adc->signal();
}

TEST(FfsDmabuf, InTransferDoesNotWaitForAReader) {
  Rig rig;
  auto b = allocate();
  ASSERT_TRUE(rig.in->attach(b).ok());
  auto reader = addForeignFence(b, ResvUsage::Read);
  rig.in->setNonblocking(true);
  auto f = rig.in->transfer(b, kSize);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE((*f)->wait().ok());
  reader->signal();
}

TEST(FfsDmabuf, OutTransferWaitsForReadersToo) {
  Rig rig;
  auto b = allocate();
  ASSERT_TRUE(rig.out->attach(b).ok());
  auto reader = addForeignFence(b, ResvUsage::Read);
  rig.out->setNonblocking(true);
  EXPECT_EQ(rig.out->transfer(b, kSize).code(), EBUSY);
  reader->signal();
  EXPECT_TRUE(rig.out->transfer(b, kSize).ok());
}

TEST(FfsDmabuf, EndpointDisabledWhileWaitingIsEshutdown) {
  Rig rig;
  auto b = allocate();
  ASSERT_TRUE(rig.in->attach(b).ok());
  auto adc = addForeignFence(b, ResvUsage::Write);
  std::thread t([&] { EXPECT_EQ(rig.in->transfer(b, kSize).code(), ESHUTDOWN); });
  std::this_thread::sleep_for(30ms);
  rig.host.disconnect();
  ASSERT_TRUE(rig.host.configure().ok());  // enabled again, but it is not the same endpoint
  adc->signal();
  t.join();
}

TEST(FfsDmabuf, DisconnectEndsPendingTransfersWithEshutdown) {
  Rig rig;
  auto b = allocate();
  ASSERT_TRUE(rig.out->attach(b).ok());
  auto f = rig.out->transfer(b, kSize).value();
  rig.host.disconnect();
  EXPECT_EQ(f->status(), -ESHUTDOWN);
}

TEST(FfsDmabuf, AFailedTransferSignalsItsFenceWithTheErrorAndTheNextWorks) {
  Rig rig;
  auto b = allocate();
  fillPattern(b, 0);
  ASSERT_TRUE(rig.in->attach(b).ok());
  rig.link->failNth(1, EIO);
  auto f1 = rig.in->transfer(b, kSize).value();
  ASSERT_TRUE(f1->wait().ok());
  EXPECT_EQ(f1->status(), -EIO);
  EXPECT_EQ(rig.host.stats(kIn).gaps, 1U);
  rig.host.reset(kIn);
  auto f2 = rig.in->transfer(b, kSize).value();
  ASSERT_TRUE(f2->wait().ok());
  EXPECT_EQ(f2->status(), 1);
  EXPECT_EQ(rig.host.stats(kIn).mismatches, 0U);
}

// --- the kernel defects of section 13, as ordinary situations ------------------------------------

TEST(FfsDmabuf, TwoInTransfersOfOneBufferInFlightKeepTheirOwnFences) {
  Rig rig(LinkConfig{.speed = LinkSpeed::Usb2});
  auto b = allocate(512 * 1024);
  fillPattern(b, 0);
  ASSERT_TRUE(rig.in->attach(b).ok());
  auto f1 = rig.in->transfer(b, b->size()).value();
  auto f2 = rig.in->transfer(b, b->size()).value();  // readers do not conflict
  EXPECT_EQ(f1->status(), 0);
  ASSERT_TRUE(f1->wait().ok());
  ASSERT_TRUE(f2->wait().ok());
  EXPECT_EQ(f1->status(), 1);
  EXPECT_EQ(f2->status(), 1);
  EXPECT_EQ(rig.host.stats(kIn).blocks, 2U);
}

TEST(FfsDmabuf, ASecondOutTransferOfOneBufferWaitsForTheFirst) {
  Rig rig;
  auto b = allocate();
  ASSERT_TRUE(rig.out->attach(b).ok());
  auto f1 = rig.out->transfer(b, kSize).value();
  rig.out->setNonblocking(true);
  EXPECT_EQ(rig.out->transfer(b, kSize).code(), EBUSY);
  rig.host.startSending(kOut);
  ASSERT_TRUE(f1->wait().ok());
  auto f2 = rig.out->transfer(b, kSize).value();
  ASSERT_TRUE(f2->wait().ok());
  EXPECT_EQ(f2->status(), 1);
}

TEST(FfsDmabuf, AFenceStaysValidAfterDetach) {
  Rig rig;
  auto b = allocate();
  ASSERT_TRUE(rig.out->attach(b).ok());
  auto f = rig.out->transfer(b, kSize).value();
  ASSERT_TRUE(rig.out->detach(b).ok());
  rig.out.reset();
  EXPECT_EQ(f->status(), -ECONNRESET);
  EXPECT_EQ(f->driverName(), "functionfs");
  EXPECT_EQ(f->timelineName(), "");
  EXPECT_TRUE(f->isSignaled());
  EXPECT_EQ(f->waitTimeout(0ns).value(), 1ns);
}

TEST(FfsDmabuf, DetachAndTransferOnAnUnboundFunctionHaveDefinedResults) {
  Rig rig;
  auto b = allocate();
  ASSERT_TRUE(rig.out->attach(b).ok());
  auto pending = rig.out->transfer(b, kSize).value();
  rig.function->unbind();
  EXPECT_EQ(pending->status(), -ESHUTDOWN);
  EXPECT_EQ(rig.out->transfer(b, kSize).code(), ENODEV);
  EXPECT_EQ(rig.out->transfer(b, 0).code(), EINVAL);
  EXPECT_TRUE(rig.out->detach(b).ok());
  EXPECT_EQ(rig.out->detach(b).code(), EPERM);
  EXPECT_TRUE(b->attachments().empty());
}

// --- the ioctl dispatcher ------------------------------------------------------------------------

TEST(FfsDmabuf, IoctlDispatcherTakesTheKernelNumbers) {
  Rig rig;
  auto b = allocate();
  fillPattern(b, 0);
  int fd = b->fd().get();
  EXPECT_EQ(endpointIoctl(*rig.in, kFunctionfsDmabufAttach, &fd).value(), 0);
  DmabufTransferReq req{fd, 0, kSize};
  EXPECT_EQ(endpointIoctl(*rig.in, kFunctionfsDmabufTransfer, &req).value(), 0);
  ASSERT_TRUE(rig.host.waitInBytes(kIn, kSize, 5s));
  EXPECT_EQ(rig.host.stats(kIn).mismatches, 0U);
  EXPECT_EQ(endpointIoctl(*rig.in, kFunctionfsDmabufDetach, &fd).value(), 0);
  EXPECT_EQ(endpointIoctl(*rig.in, kFunctionfsDmabufDetach, &fd).code(), EPERM);
  EXPECT_EQ(endpointIoctl(*rig.in, kFunctionfsDmabufAttach, nullptr).code(), EFAULT);
  EXPECT_EQ(endpointIoctl(*rig.in, 0x1234, &fd).code(), ENOTTY);
}

}  // namespace
}  // namespace zbuf::usb
