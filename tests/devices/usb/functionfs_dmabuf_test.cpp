// ctest-labels: concurrency
// The FunctionFS DMABUF interface through the endpoint files: every errno of
// ATTACH/DETACH/TRANSFER, the directions and fence usages, attachments per endpoint (shared by
// its open files, all detached when any of them is released), and the three kernel defects made
// ordinary situations (reference section 13).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <atomic>
#include <thread>
#include <vector>

#include "ffs_rig.h"
#include "zbuf/base/sys.h"
#include "zbuf/devices/pattern.h"

namespace zbuf::usb {
namespace {

using testing::allocate;
using testing::Buf;
using testing::lastTransferFence;
using testing::Rig;
using testing::RigOptions;
using namespace std::chrono_literals;

constexpr std::uint64_t kSize = 256 * 1024;

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

// A rig with ep1 (IN) and ep2 (OUT) open.
struct DmabufRig : Rig {
  explicit DmabufRig(RigOptions o = {}) : Rig(o), in(mustOpen("ep1")), out(mustOpen("ep2")) {}
  Buf buffer(std::uint64_t size = kSize) { return allocate(*ctx, size); }
  long attach(int ep, const Buf& b) { return ioctlFd(ep, kFunctionfsDmabufAttach, b.get()); }
  long detach(int ep, const Buf& b) { return ioctlFd(ep, kFunctionfsDmabufDetach, b.get()); }
  // TRANSFER, returning the fence it added (null on failure; `err` gets the result).
  FencePtr transferFence(int ep, const Buf& b, std::uint64_t length, long* err = nullptr) {
    const long r = transfer(ep, b.get(), length);
    if (err != nullptr) {
      *err = r;
    }
    return r == 0 ? lastTransferFence(b.buffer) : nullptr;
  }
  void setNonBlocking(int fd, bool on) {
    int v = on ? 1 : 0;
    ASSERT_EQ(ioctl(fd, FIONBIO, &v), 0);
  }
  UniqueFd in;
  UniqueFd out;
};

void fillPattern(const BufferPtr& b, std::uint64_t offset) {
  auto map = sys::mmap(b->size(), PROT_READ | PROT_WRITE, MAP_SHARED, b->fd().get(), 0);
  ASSERT_TRUE(map.ok());
  PatternGenerator(SampleFormat{}, PatternKind::Ramp).fill(map->bytes(), offset);
}

// --- ep0, ATTACH ---------------------------------------------------------------------------------

TEST(FfsDmabuf, Ep0RefusesTheDmabufIoctlsWithEnotty) {
  DmabufRig rig;
  auto ep0 = rig.mustOpen("ep0");
  auto b = rig.buffer();
  EXPECT_EQ(rig.attach(ep0.get(), b), -ENOTTY);
  EXPECT_EQ(rig.detach(ep0.get(), b), -ENOTTY);
  EXPECT_EQ(rig.transfer(ep0.get(), b.get(), kSize), -ENOTTY);
  EXPECT_EQ(rig.ioctl(ep0.get(), kFunctionfsDmabufAttach, nullptr), -ENOTTY);
}

TEST(FfsDmabuf, ANullArgumentIsEfault) {
  DmabufRig rig;
  EXPECT_EQ(rig.ioctl(rig.in.get(), kFunctionfsDmabufAttach, nullptr), -EFAULT);
  EXPECT_EQ(rig.ioctl(rig.in.get(), kFunctionfsDmabufDetach, nullptr), -EFAULT);
  EXPECT_EQ(rig.ioctl(rig.in.get(), kFunctionfsDmabufTransfer, nullptr), -EFAULT);
}

TEST(FfsDmabuf, ArgumentsMayBeUnaligned) {
  DmabufRig rig;
  auto b = rig.buffer();
  alignas(8) std::byte raw[32]{};
  const int fd = b.get();
  std::memcpy(raw + 1, &fd, sizeof fd);
  EXPECT_EQ(rig.ioctl(rig.in.get(), kFunctionfsDmabufAttach, raw + 1), 0);
  DmabufTransferReq req{fd, 0, kSize};
  std::memcpy(raw + 3, &req, sizeof req);
  EXPECT_EQ(rig.ioctl(rig.in.get(), kFunctionfsDmabufTransfer, raw + 3), 0);
}

TEST(FfsDmabuf, AttachWithoutScatterGatherIsEpermBeforeTheFdIsLookedAt) {
  DmabufRig rig({.link = LinkConfig{.scatterGather = false}});
  EXPECT_EQ(rig.ioctlFd(rig.in.get(), kFunctionfsDmabufAttach, -1), -EPERM);
  EXPECT_EQ(rig.attach(rig.in.get(), rig.buffer()), -EPERM);
}

TEST(FfsDmabuf, AttachOnAnUnboundFunctionIsEperm) {
  DmabufRig rig({.bind = false});
  EXPECT_EQ(rig.attach(rig.in.get(), rig.buffer()), -EPERM);
}

TEST(FfsDmabuf, AttachBadFdIsEbadfAndANonBufferIsEinval) {
  DmabufRig rig;
  EXPECT_EQ(rig.ioctlFd(rig.in.get(), kFunctionfsDmabufAttach, -1), -EBADF);
  auto memfd = sys::memfdCreate("not-a-buffer", 0).value();
  EXPECT_EQ(rig.ioctlFd(rig.in.get(), kFunctionfsDmabufAttach, memfd.get()), -EINVAL);
  auto ep0 = rig.mustOpen("ep0");  // a zbuf file that is not a buffer
  EXPECT_EQ(rig.ioctlFd(rig.in.get(), kFunctionfsDmabufAttach, ep0.get()), -EINVAL);
}

TEST(FfsDmabuf, NonBlockingAttachWithContendedReservationIsEbusy) {
  DmabufRig rig;
  rig.setNonBlocking(rig.in.get(), true);
  auto b = rig.buffer();
  ASSERT_TRUE(b.buffer->resv().lock().ok());
  std::thread other([&] { EXPECT_EQ(rig.attach(rig.in.get(), b), -EBUSY); });
  other.join();
  b.buffer->resv().unlock();
  EXPECT_EQ(rig.attach(rig.in.get(), b), 0);
  EXPECT_EQ(b.buffer->attachments().size(), 1U);
}

// --- DETACH --------------------------------------------------------------------------------------

TEST(FfsDmabuf, DetachOfABufferNotAttachedIsEperm) {
  DmabufRig rig;
  auto b = rig.buffer();
  EXPECT_EQ(rig.detach(rig.in.get(), b), -EPERM);
  EXPECT_EQ(rig.ioctlFd(rig.in.get(), kFunctionfsDmabufDetach, -1), -EBADF);
  auto memfd = sys::memfdCreate("not-a-buffer", 0).value();
  EXPECT_EQ(rig.ioctlFd(rig.in.get(), kFunctionfsDmabufDetach, memfd.get()), -EINVAL);
  ASSERT_EQ(rig.attach(rig.in.get(), b), 0);
  EXPECT_EQ(rig.detach(rig.out.get(), b), -EPERM);  // attached to another endpoint
  EXPECT_EQ(rig.detach(rig.in.get(), b), 0);
  EXPECT_EQ(rig.detach(rig.in.get(), b), -EPERM);
  EXPECT_TRUE(b.buffer->attachments().empty());
}

TEST(FfsDmabuf, DetachCancelsAPendingTransferWithEconnreset) {
  DmabufRig rig;
  auto b = rig.buffer();
  ASSERT_EQ(rig.attach(rig.out.get(), b), 0);
  auto fence = rig.transferFence(rig.out.get(), b, kSize);  // pending: the host sends nothing
  ASSERT_TRUE(fence);
  EXPECT_EQ(fence->status(), 0);
  ASSERT_EQ(rig.detach(rig.out.get(), b), 0);
  EXPECT_EQ(fence->status(), -ECONNRESET);
  EXPECT_TRUE(b.buffer->attachments().empty());
}

// --- attachments per endpoint --------------------------------------------------------------------

TEST(FfsDmabuf, ABufferAttachedThroughOneFileIsTransferredThroughAnother) {
  DmabufRig rig;
  auto b = rig.buffer();
  fillPattern(b.buffer, 0);
  auto second = rig.mustOpen("ep1");  // another open file (description) of the same endpoint
  ASSERT_EQ(rig.attach(rig.in.get(), b), 0);
  auto fence = rig.transferFence(second.get(), b, kSize);
  ASSERT_TRUE(fence);
  ASSERT_TRUE(fence->wait().ok());
  EXPECT_EQ(fence->status(), 1);
  EXPECT_EQ(rig.host.stats(1).verifiedBytes, kSize);
  EXPECT_EQ(rig.detach(second.get(), b), 0);  // and detached through it
  EXPECT_EQ(rig.detach(rig.in.get(), b), -EPERM);
}

TEST(FfsDmabuf, ReleasingAnyFileOfTheEndpointDetachesEverything) {
  DmabufRig rig;
  auto b1 = rig.buffer();
  auto b2 = rig.buffer();
  auto second = rig.mustOpen("ep2");
  ASSERT_EQ(rig.attach(rig.out.get(), b1), 0);
  ASSERT_EQ(rig.attach(second.get(), b2), 0);
  auto fence = rig.transferFence(rig.out.get(), b2, kSize);
  ASSERT_TRUE(fence);
  ASSERT_TRUE(rig.ctx->close(std::move(second)).ok());  // a file that attached only b2
  EXPECT_EQ(fence->status(), -ECONNRESET);
  EXPECT_TRUE(b1.buffer->attachments().empty());
  EXPECT_TRUE(b2.buffer->attachments().empty());
  // The remaining file no longer has them either.
  EXPECT_EQ(rig.transfer(rig.out.get(), b1.get(), kSize), -EPERM);
  EXPECT_EQ(rig.detach(rig.out.get(), b1), -EPERM);
}

TEST(FfsDmabuf, ADupOfTheFileIsTheSameDescriptionAndItsCloseReleasesNothing) {
  DmabufRig rig;
  auto b = rig.buffer();
  ASSERT_EQ(rig.attach(rig.in.get(), b), 0);
  auto dup = sys::dup(rig.in.get()).value();
  ASSERT_TRUE(rig.ctx->close(std::move(dup)).ok());  // the description stays open
  EXPECT_EQ(b.buffer->attachments().size(), 1U);
  ASSERT_TRUE(rig.ctx->close(std::move(rig.in)).ok());  // its last fd: released
  EXPECT_TRUE(b.buffer->attachments().empty());
}

TEST(FfsDmabuf, ClosingTheEndpointDetachesEverything) {
  DmabufRig rig;
  auto b1 = rig.buffer();
  auto b2 = rig.buffer();
  ASSERT_EQ(rig.attach(rig.out.get(), b1), 0);
  ASSERT_EQ(rig.attach(rig.out.get(), b2), 0);
  auto fence = rig.transferFence(rig.out.get(), b2, kSize);
  ASSERT_TRUE(fence);
  ASSERT_TRUE(rig.ctx->close(std::move(rig.out)).ok());
  EXPECT_EQ(fence->status(), -ECONNRESET);
  EXPECT_TRUE(b1.buffer->attachments().empty());
  EXPECT_TRUE(b2.buffer->attachments().empty());
}

// --- TRANSFER: check order -----------------------------------------------------------------------

TEST(FfsDmabuf, TransferChecksFlagsThenFdThenLengthThenAttachment) {
  DmabufRig rig;
  auto b = rig.buffer();
  const int in = rig.in.get();
  EXPECT_EQ(rig.transfer(in, -1, 0, 1), -EINVAL);    // flags first
  EXPECT_EQ(rig.transfer(in, -1, kSize), -EBADF);    // then the fd
  EXPECT_EQ(rig.transfer(in, b.get(), 0), -EINVAL);  // length 0, not attached
  EXPECT_EQ(rig.transfer(in, b.get(), kSize + 1), -EINVAL);
  EXPECT_EQ(rig.transfer(in, b.get(), kSize), -EPERM);  // then attachment
  auto memfd = sys::memfdCreate("not-a-buffer", 0).value();
  EXPECT_EQ(rig.transfer(in, memfd.get(), 1), -EINVAL);
  ASSERT_EQ(rig.attach(in, b), 0);
  EXPECT_EQ(rig.transfer(in, b.get(), kSize), 0);
}

TEST(FfsDmabuf, TransferBeforeConfigurationIsEagainWhenNonBlocking) {
  DmabufRig rig({.configure = false});
  auto b = rig.buffer();
  ASSERT_EQ(rig.attach(rig.in.get(), b), 0);
  rig.setNonBlocking(rig.in.get(), true);
  EXPECT_EQ(rig.transfer(rig.in.get(), b.get(), kSize), -EAGAIN);
}

TEST(FfsDmabuf, NonBlockingTransferWithContendedReservationIsEbusy) {
  DmabufRig rig;
  auto b = rig.buffer();
  ASSERT_EQ(rig.attach(rig.in.get(), b), 0);
  rig.setNonBlocking(rig.in.get(), true);
  ASSERT_TRUE(b.buffer->resv().lock().ok());
  std::thread other([&] { EXPECT_EQ(rig.transfer(rig.in.get(), b.get(), kSize), -EBUSY); });
  other.join();
  b.buffer->resv().unlock();
}

// --- directions and fences -----------------------------------------------------------------------

TEST(FfsDmabuf, InTransferReadsMemoryAddsAReadFenceAndTheHostChecksIt) {
  DmabufRig rig({.link = LinkConfig{.speed = LinkSpeed::Usb2}});  // slow enough to see it pending
  auto b = rig.buffer(1024 * 1024);
  fillPattern(b.buffer, 0);
  ASSERT_EQ(rig.attach(rig.in.get(), b), 0);
  auto fence = rig.transferFence(rig.in.get(), b, b.buffer->size());
  ASSERT_TRUE(fence);
  EXPECT_EQ(fence->driverName(), "functionfs");
  EXPECT_EQ(fence->timelineName(), "");
  EXPECT_EQ(fence->seqno(), 1U);
  // Pending READ fence: the buffer polls IN (writers done) but not OUT.
  struct pollfd p {
    b.get(), POLLIN | POLLOUT, 0
  };
  EXPECT_EQ(rig.ctx->poll({&p, 1}, 0).value(), 1);
  EXPECT_EQ(p.revents, POLLIN);
  ASSERT_TRUE(fence->wait().ok());
  EXPECT_EQ(fence->status(), 1);
  EXPECT_TRUE(b.buffer->resv().testSignaled(ResvUsage::Read));
  const EndpointStats s = rig.host.stats(1);
  EXPECT_EQ(s.verifiedBytes, b.buffer->size());
  EXPECT_EQ(s.mismatches, 0U);
}

TEST(FfsDmabuf, OutTransferWritesMemoryAndAddsAWriteFence) {
  DmabufRig rig;
  auto b = rig.buffer();
  ASSERT_EQ(rig.attach(rig.out.get(), b), 0);
  auto fence = rig.transferFence(rig.out.get(), b, kSize);
  ASSERT_TRUE(fence);
  struct pollfd p {
    b.get(), POLLIN | POLLOUT, 0
  };
  EXPECT_EQ(rig.ctx->poll({&p, 1}, 0).value(), 0);  // polls nothing
  rig.host.startSending(2, kSize);
  ASSERT_TRUE(fence->wait().ok());
  EXPECT_EQ(fence->status(), 1);
  auto map = sys::mmap(kSize, PROT_READ, MAP_SHARED, b.buffer->fd().get(), 0).value();
  EXPECT_EQ(PatternChecker(SampleFormat{}, PatternKind::Ramp).countMismatches(map.bytes(), 0), 0U);
}

TEST(FfsDmabuf, SeqnosArePerEndpointFromOneAndContextsPerAttachment) {
  DmabufRig rig;
  auto b1 = rig.buffer();
  auto b2 = rig.buffer();
  ASSERT_EQ(rig.attach(rig.in.get(), b1), 0);
  ASSERT_EQ(rig.attach(rig.in.get(), b2), 0);
  auto f1 = rig.transferFence(rig.in.get(), b1, kSize);
  auto f2 = rig.transferFence(rig.in.get(), b2, kSize);
  auto second = rig.mustOpen("ep1");  // the counter is the endpoint's, not the file's
  auto f3 = rig.transferFence(second.get(), b1, kSize);
  ASSERT_TRUE(f1 && f2 && f3);
  EXPECT_EQ(f1->seqno(), 1U);
  EXPECT_EQ(f2->seqno(), 2U);
  EXPECT_EQ(f3->seqno(), 3U);
  EXPECT_NE(f1->context(), f2->context());
  EXPECT_EQ(f1->context(), f3->context());
  // The OUT endpoint counts on its own.
  ASSERT_TRUE(f2->wait().ok());
  ASSERT_EQ(rig.attach(rig.out.get(), b2), 0);
  rig.host.startSending(2);
  auto f4 = rig.transferFence(rig.out.get(), b2, kSize);
  ASSERT_TRUE(f4);
  EXPECT_EQ(f4->seqno(), 1U);
}

TEST(FfsDmabuf, InTransferWaitsForAWriterAndNonBlockingIsEbusy) {
  DmabufRig rig;
  auto b = rig.buffer();
  fillPattern(b.buffer, 0);
  ASSERT_EQ(rig.attach(rig.in.get(), b), 0);
  auto adc = addForeignFence(b.buffer, ResvUsage::Write);  // e.g. the ADC still writing
  auto nb = rig.mustOpen("ep1", O_RDWR | O_NONBLOCK);
  EXPECT_EQ(rig.transfer(nb.get(), b.get(), kSize), -EBUSY);
  std::atomic<bool> queued{false};
  std::thread t([&] {
    EXPECT_EQ(rig.transfer(rig.in.get(), b.get(), kSize), 0);
    queued = true;
  });
  EXPECT_FALSE(queued.load());  // cannot be queued before the writer signals
  adc->signal();
  t.join();
  ASSERT_TRUE(rig.host.waitInBytes(1, kSize, 5s));
  EXPECT_EQ(rig.host.stats(1).verifiedBytes, kSize);
}

TEST(FfsDmabuf, BlockingTransferBehindAWriterThatNeverSignalsIsEbusyAfterTheTimeout) {
  DmabufRig rig;  // 200 ms instead of the kernel's 5 s
  auto b = rig.buffer();
  ASSERT_EQ(rig.attach(rig.in.get(), b), 0);
  auto adc = addForeignFence(b.buffer, ResvUsage::Write);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(rig.transfer(rig.in.get(), b.get(), kSize), -EBUSY);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 190ms);
  adc->signal();
}

TEST(FfsDmabuf, InTransferDoesNotWaitForAReader) {
  DmabufRig rig;
  auto b = rig.buffer();
  ASSERT_EQ(rig.attach(rig.in.get(), b), 0);
  auto reader = addForeignFence(b.buffer, ResvUsage::Read);
  rig.setNonBlocking(rig.in.get(), true);
  auto f = rig.transferFence(rig.in.get(), b, kSize);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->wait().ok());
  reader->signal();
}

TEST(FfsDmabuf, OutTransferWaitsForReadersToo) {
  DmabufRig rig;
  auto b = rig.buffer();
  ASSERT_EQ(rig.attach(rig.out.get(), b), 0);
  auto reader = addForeignFence(b.buffer, ResvUsage::Read);
  rig.setNonBlocking(rig.out.get(), true);
  EXPECT_EQ(rig.transfer(rig.out.get(), b.get(), kSize), -EBUSY);
  reader->signal();
  EXPECT_EQ(rig.transfer(rig.out.get(), b.get(), kSize), 0);
}

TEST(FfsDmabuf, EndpointDisabledWhileWaitingIsEshutdown) {
  DmabufRig rig;
  auto b = rig.buffer();
  ASSERT_EQ(rig.attach(rig.in.get(), b), 0);
  auto adc = addForeignFence(b.buffer, ResvUsage::Write);
  long got = 0;
  std::thread t([&] { got = rig.transfer(rig.in.get(), b.get(), kSize); });
  rig.host.disconnect();
  ASSERT_TRUE(rig.host.configure().ok());  // enabled again, but it is not the same endpoint
  adc->signal();
  t.join();
  // ESHUTDOWN when the transfer was waiting across the reconnect; 0 when the thread only got to
  // it afterwards (the test cannot see where the thread is without a sleep).
  EXPECT_TRUE(got == -ESHUTDOWN || got == 0) << got;
}

TEST(FfsDmabuf, DisconnectEndsPendingTransfersWithEshutdown) {
  DmabufRig rig;
  auto b = rig.buffer();
  ASSERT_EQ(rig.attach(rig.out.get(), b), 0);
  auto f = rig.transferFence(rig.out.get(), b, kSize);
  ASSERT_TRUE(f);
  rig.host.disconnect();
  EXPECT_EQ(f->status(), -ESHUTDOWN);
}

TEST(FfsDmabuf, AFailedTransferSignalsItsFenceWithTheErrorAndTheNextWorks) {
  DmabufRig rig;
  auto b = rig.buffer();
  fillPattern(b.buffer, 0);
  ASSERT_EQ(rig.attach(rig.in.get(), b), 0);
  rig.link->failNth(1, EIO);
  auto f1 = rig.transferFence(rig.in.get(), b, kSize);
  ASSERT_TRUE(f1);
  ASSERT_TRUE(f1->wait().ok());
  EXPECT_EQ(f1->status(), -EIO);
  EXPECT_EQ(rig.host.stats(1).gaps, 1U);
  rig.host.reset(1);
  auto f2 = rig.transferFence(rig.in.get(), b, kSize);
  ASSERT_TRUE(f2);
  ASSERT_TRUE(f2->wait().ok());
  EXPECT_EQ(f2->status(), 1);
  EXPECT_EQ(rig.host.stats(1).mismatches, 0U);
}

// --- the kernel defects of section 13, as ordinary situations ------------------------------------

TEST(FfsDmabuf, TwoInTransfersOfOneBufferInFlightKeepTheirOwnFences) {
  DmabufRig rig({.link = LinkConfig{.speed = LinkSpeed::Usb2}});
  auto b = rig.buffer(512 * 1024);
  fillPattern(b.buffer, 0);
  ASSERT_EQ(rig.attach(rig.in.get(), b), 0);
  auto f1 = rig.transferFence(rig.in.get(), b, b.buffer->size());
  auto f2 = rig.transferFence(rig.in.get(), b, b.buffer->size());  // readers do not conflict
  ASSERT_TRUE(f1 && f2);
  EXPECT_NE(f1, f2);
  ASSERT_TRUE(f1->wait().ok());
  ASSERT_TRUE(f2->wait().ok());
  EXPECT_EQ(f1->status(), 1);
  EXPECT_EQ(f2->status(), 1);
  EXPECT_EQ(rig.host.stats(1).blocks, 2U);
}

TEST(FfsDmabuf, ASecondOutTransferOfOneBufferWaitsForTheFirst) {
  DmabufRig rig;
  auto b = rig.buffer();
  ASSERT_EQ(rig.attach(rig.out.get(), b), 0);
  auto f1 = rig.transferFence(rig.out.get(), b, kSize);
  ASSERT_TRUE(f1);
  rig.setNonBlocking(rig.out.get(), true);
  EXPECT_EQ(rig.transfer(rig.out.get(), b.get(), kSize), -EBUSY);
  rig.host.startSending(2);
  ASSERT_TRUE(f1->wait().ok());
  auto f2 = rig.transferFence(rig.out.get(), b, kSize);
  ASSERT_TRUE(f2);
  ASSERT_TRUE(f2->wait().ok());
  EXPECT_EQ(f2->status(), 1);
}

TEST(FfsDmabuf, AFenceStaysValidAfterDetach) {
  DmabufRig rig;
  auto b = rig.buffer();
  ASSERT_EQ(rig.attach(rig.out.get(), b), 0);
  auto f = rig.transferFence(rig.out.get(), b, kSize);
  ASSERT_TRUE(f);
  ASSERT_EQ(rig.detach(rig.out.get(), b), 0);
  ASSERT_TRUE(rig.ctx->close(std::move(rig.out)).ok());
  EXPECT_TRUE(b.buffer->attachments().empty());
  EXPECT_EQ(f->status(), -ECONNRESET);
  EXPECT_EQ(f->driverName(), "functionfs");
  EXPECT_EQ(f->timelineName(), "");
  EXPECT_TRUE(f->isSignaled());
  EXPECT_EQ(f->waitTimeout(0ns).value(), 1ns);
}

TEST(FfsDmabuf, DetachAndTransferOnAnUnboundFunctionHaveDefinedResults) {
  DmabufRig rig;
  auto b = rig.buffer();
  ASSERT_EQ(rig.attach(rig.out.get(), b), 0);
  auto pending = rig.transferFence(rig.out.get(), b, kSize);
  ASSERT_TRUE(pending);
  rig.function->unbind();
  EXPECT_EQ(pending->status(), -ESHUTDOWN);
  EXPECT_EQ(rig.transfer(rig.out.get(), b.get(), kSize), -ENODEV);
  EXPECT_EQ(rig.transfer(rig.out.get(), b.get(), 0), -EINVAL);
  EXPECT_EQ(rig.detach(rig.out.get(), b), 0);
  EXPECT_EQ(rig.detach(rig.out.get(), b), -EPERM);
  EXPECT_TRUE(b.buffer->attachments().empty());
}

// --- the C++ interface (drivers, the board)
// -------------------------------------------------------

TEST(FfsDmabuf, TheObjectInterfaceSharesTheEndpointsAttachments) {
  DmabufRig rig;
  auto b = rig.buffer();
  ASSERT_EQ(rig.attach(rig.in.get(), b), 0);
  auto ep = std::move(rig.function->open(1).value());
  EXPECT_EQ(ep->attachedCount(), 1U);
  auto fence = ep->transfer(b.buffer, kSize);
  ASSERT_TRUE(fence.ok());
  ASSERT_TRUE((*fence)->wait().ok());
  ep.reset();  // closing it detaches everything, as any file of the endpoint
  EXPECT_TRUE(b.buffer->attachments().empty());
  EXPECT_EQ(rig.function->open(3).code(), ENOENT);
}

}  // namespace
}  // namespace zbuf::usb
