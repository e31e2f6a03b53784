// ctest-labels: concurrency
// The FunctionFS function through its files: paths, enabling, the fileio interface, and the
// endpoint ioctls that wait for the endpoint (REVMAP, ENDPOINT_DESC, FIFO, unknown requests).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>

#include <atomic>
#include <thread>
#include <vector>

#include "ffs_rig.h"
#include "zbuf/devices/pattern.h"
#include "zbuf/devices/usb/host.h"
#include "zbuf/devices/usb/link.h"

namespace zbuf::usb {
namespace {

using testing::Rig;
using testing::RigOptions;

TEST(FunctionFs, DataCallsOnAnUnboundFunctionAreEnodev) {
  Rig rig({.bind = false});
  auto in = rig.mustOpen("ep1");
  auto out = rig.mustOpen("ep2");
  std::vector<std::byte> buf(16);
  EXPECT_EQ(rig.write(in.get(), buf), -ENODEV);
  EXPECT_EQ(rig.read(out.get(), buf), -ENODEV);
}

TEST(FunctionFs, NonBlockingDataCallsBeforeConfigurationAreEagain) {
  Rig rig({.configure = false});
  auto in = rig.mustOpen("ep1", O_RDWR | O_NONBLOCK);
  auto out = rig.mustOpen("ep2", O_RDWR | O_NONBLOCK);
  std::vector<std::byte> buf(16);
  EXPECT_EQ(rig.write(in.get(), buf), -EAGAIN);
  EXPECT_EQ(rig.read(out.get(), buf), -EAGAIN);
}

TEST(FunctionFs, NonBlockingIsReadFromTheDescriptionAtEveryCall) {
  Rig rig({.configure = false});
  auto in = rig.mustOpen("ep1");
  int on = 1;
  ASSERT_EQ(rig.ioctl(in.get(), FIONBIO, &on), 0);
  std::vector<std::byte> buf(16);
  EXPECT_EQ(rig.write(in.get(), buf), -EAGAIN);
}

TEST(FunctionFs, BlockingWriteWaitsUntilTheHostConfigures) {
  Rig rig({.configure = false});
  auto in = rig.mustOpen("ep1");
  std::vector<std::byte> buf(4096);
  PatternGenerator(SampleFormat{}, PatternKind::Ramp).fill(buf, 0);
  std::atomic<bool> written{false};
  std::thread writer([&] {
    EXPECT_EQ(rig.write(in.get(), buf), static_cast<long>(buf.size()));
    written = true;
  });
  EXPECT_FALSE(written.load());  // it cannot complete before the host configures
  ASSERT_TRUE(rig.host.configure().ok());
  writer.join();
  EXPECT_TRUE(written.load());
  EXPECT_EQ(rig.host.stats(1).verifiedBytes, buf.size());
  EXPECT_EQ(rig.host.stats(1).mismatches, 0U);
}

TEST(FunctionFs, UnbindWakesABlockedWaiterWithEnodev) {
  Rig rig({.configure = false});
  auto in = rig.mustOpen("ep1");
  std::thread writer([&] {
    std::vector<std::byte> buf(16);
    EXPECT_EQ(rig.write(in.get(), buf), -ENODEV);
  });
  rig.function->unbind();
  writer.join();
  EXPECT_FALSE(rig.function->bound());
}

TEST(FunctionFs, WrongDirectionHaltsWithEbadmsg) {
  Rig rig;
  std::vector<std::byte> buf(16);
  auto in = rig.mustOpen("ep1");
  auto out = rig.mustOpen("ep2");
  EXPECT_EQ(rig.read(in.get(), buf), -EBADMSG);
  EXPECT_EQ(rig.write(out.get(), buf), -EBADMSG);
}

TEST(FunctionFs, WrongDirectionWaitsForTheEndpointFirst) {
  Rig rig({.configure = false});  // ffs_epfile_io: wait for the endpoint, then halt
  std::vector<std::byte> buf(16);
  auto in = rig.mustOpen("ep1", O_RDWR | O_NONBLOCK);
  EXPECT_EQ(rig.read(in.get(), buf), -EAGAIN);
}

TEST(FunctionFs, ReadAndWriteMoveDataBothWays) {
  Rig rig;
  auto out = rig.mustOpen("ep2");
  std::vector<std::byte> buf(8192);
  rig.host.startSending(2, buf.size());
  ASSERT_EQ(rig.read(out.get(), buf), static_cast<long>(buf.size()));
  EXPECT_EQ(PatternChecker(SampleFormat{}, PatternKind::Ramp).countMismatches(buf, 0), 0U);
  auto in = rig.mustOpen("ep1");
  ASSERT_EQ(rig.write(in.get(), buf), static_cast<long>(buf.size()));
  EXPECT_EQ(rig.host.stats(1).mismatches, 0U);
}

// A zero-length read or write is a zero-length transfer (a ZLP), with null pointers allowed.
TEST(FunctionFs, ZeroLengthFileioIsAZeroLengthTransfer) {
  Rig rig;
  auto in = rig.mustOpen("ep1");
  auto out = rig.mustOpen("ep2");
  EXPECT_EQ(rig.ctx->write(in.get(), std::span<const std::byte>{}).value(), 0U);
  rig.host.startSending(2, 16);
  EXPECT_EQ(rig.ctx->read(out.get(), std::span<std::byte>{}).value(), 0U);
  std::vector<std::byte> buf(16);
  EXPECT_EQ(rig.ctx->read(out.get(), buf).value(), 16U);  // the empty read used none of it
}

// The link does not own its function: dropping both while bound frees both (and joins the link
// thread) instead of leaving a reference cycle and a running thread behind at exit.
TEST(FunctionFs, ReleasingABoundFunctionAndItsLinkFreesBoth) {
  std::weak_ptr<UsbLink> weakLink;
  std::weak_ptr<FunctionFs> weakFunction;
  {
    auto link = UsbLink::create();
    UsbHost host(link, {});
    auto f = FunctionFs::create();
    ASSERT_TRUE(f->bind(link).ok());
    ASSERT_TRUE(host.configure().ok());
    weakLink = link;
    weakFunction = f;
  }
  EXPECT_TRUE(weakFunction.expired());
  EXPECT_TRUE(weakLink.expired());
}

TEST(FunctionFs, ReconfigurationAfterDisconnectWorks) {
  Rig rig;
  EXPECT_TRUE(rig.function->enabled());
  rig.host.disconnect();
  EXPECT_FALSE(rig.function->enabled());
  auto in = rig.mustOpen("ep1", O_RDWR | O_NONBLOCK);
  std::vector<std::byte> buf(16);
  EXPECT_EQ(rig.write(in.get(), buf), -EAGAIN);
  ASSERT_TRUE(rig.host.configure().ok());
  EXPECT_EQ(rig.write(in.get(), buf), 16);
}

// --- the ioctls behind the wait for the endpoint
// ---------------------------------------------------

TEST(FunctionFs, RevmapReturnsTheEndpointAddress) {
  Rig rig;
  auto in = rig.mustOpen("ep1");
  auto out = rig.mustOpen("ep2");
  // 255 for every endpoint, as the kernel (ffs_ep.num is -1 from bind on).
  EXPECT_EQ(rig.ioctl(in.get(), kFunctionfsEndpointRevmap, nullptr), 255);
  EXPECT_EQ(rig.ioctl(out.get(), kFunctionfsEndpointRevmap, nullptr), 255);
}

TEST(FunctionFs, EndpointDescIsTheDescriptorOfTheLinksSpeed) {
  Rig rig({.link = LinkConfig{.speed = LinkSpeed::Usb2}});
  auto in = rig.mustOpen("ep1");
  UsbEndpointDescriptor d{};
  ASSERT_EQ(rig.ioctl(in.get(), kFunctionfsEndpointDesc, &d), 0);
  EXPECT_EQ(d.bDescriptorType, kUsbDtEndpoint);
  EXPECT_EQ(d.bEndpointAddress, 0x81);
  EXPECT_EQ(d.bmAttributes, kUsbEndpointXferBulk);
  EXPECT_EQ(d.wMaxPacketSize, 512);  // high speed
  EXPECT_EQ(rig.ioctl(in.get(), kFunctionfsEndpointDesc, nullptr), -EFAULT);
}

TEST(FunctionFs, FifoAndHaltRequests) {
  Rig rig;
  auto in = rig.mustOpen("ep1");
  EXPECT_EQ(rig.ioctl(in.get(), kFunctionfsFifoStatus, nullptr), -EOPNOTSUPP);
  EXPECT_EQ(rig.ioctl(in.get(), kFunctionfsFifoFlush, nullptr), 0);
  EXPECT_EQ(rig.ioctl(in.get(), kFunctionfsClearHalt, nullptr), 0);
}

TEST(FunctionFs, UnknownIoctlIsEnottyOnceEnabled) {
  Rig rig;
  auto in = rig.mustOpen("ep1");
  EXPECT_EQ(rig.ioctl(in.get(), 0x1234, nullptr), -ENOTTY);
}

TEST(FunctionFs, UnknownIoctlBeforeEnableIsEagainWhenNonBlocking) {
  Rig rig({.configure = false});
  auto in = rig.mustOpen("ep1", O_RDWR | O_NONBLOCK);
  EXPECT_EQ(rig.ioctl(in.get(), 0x1234, nullptr), -EAGAIN);
  EXPECT_EQ(rig.ioctl(in.get(), kFunctionfsEndpointRevmap, nullptr), -EAGAIN);
}

TEST(FunctionFs, UnknownIoctlOnAnUnboundFunctionIsEnodev) {
  Rig rig({.bind = false});
  auto in = rig.mustOpen("ep1");
  EXPECT_EQ(rig.ioctl(in.get(), 0x1234, nullptr), -ENODEV);
  EXPECT_EQ(rig.ioctl(in.get(), kFunctionfsEndpointRevmap, nullptr), -ENODEV);
}

TEST(FunctionFs, UnknownIoctlWaitsForTheEndpointThenIsEnotty) {
  Rig rig({.configure = false});
  auto in = rig.mustOpen("ep1");
  std::atomic<long> got{1};
  std::thread caller([&] { got = rig.ioctl(in.get(), 0x1234, nullptr); });
  EXPECT_EQ(got.load(), 1);  // cannot answer before the endpoint is enabled
  ASSERT_TRUE(rig.host.configure().ok());
  caller.join();
  EXPECT_EQ(got.load(), -ENOTTY);
}

TEST(FunctionFs, UnknownIoctlWaitingWhenUnboundIsEnodev) {
  Rig rig({.configure = false});
  auto in = rig.mustOpen("ep1");
  std::thread caller([&] { EXPECT_EQ(rig.ioctl(in.get(), 0x1234, nullptr), -ENODEV); });
  rig.function->unbind();
  caller.join();
}

}  // namespace
}  // namespace zbuf::usb
