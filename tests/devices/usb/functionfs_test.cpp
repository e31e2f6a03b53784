// ctest-labels: concurrency
// The FunctionFS function: endpoints, enabling, and the fileio interface.
#include "zbuf/devices/usb/functionfs.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "zbuf/devices/usb/host.h"

namespace zbuf::usb {
namespace {

TEST(FunctionFs, OpenOutOfRangeIsEnoent) {
  auto f = FunctionFs::create();
  EXPECT_EQ(f->dataEndpoints(), 2U);
  EXPECT_TRUE(f->open(0).ok());
  EXPECT_TRUE(f->open(2).ok());
  EXPECT_EQ(f->open(3).code(), ENOENT);
  EXPECT_TRUE(f->open(1).value()->isIn());
  EXPECT_FALSE(f->open(2).value()->isIn());
  EXPECT_TRUE(f->open(0).value()->isEp0());
}

TEST(FunctionFs, DataCallsOnAnUnboundFunctionAreEnodev) {
  auto f = FunctionFs::create();
  auto in = std::move(f->open(1).value());
  std::vector<std::byte> buf(16);
  EXPECT_EQ(in->write(buf).code(), ENODEV);
  auto out = std::move(f->open(2).value());
  EXPECT_EQ(out->read(buf).code(), ENODEV);
}

TEST(FunctionFs, NonBlockingDataCallsBeforeConfigurationAreEagain) {
  auto link = UsbLink::create();
  auto f = FunctionFs::create();
  ASSERT_TRUE(f->bind(link).ok());
  auto in = std::move(f->open(1, O_NONBLOCK).value());
  EXPECT_TRUE(in->nonblocking());
  std::vector<std::byte> buf(16);
  EXPECT_EQ(in->write(buf).code(), EAGAIN);
  auto out = std::move(f->open(2, O_NONBLOCK).value());
  EXPECT_EQ(out->read(buf).code(), EAGAIN);
}

TEST(FunctionFs, BlockingWriteWaitsUntilTheHostConfigures) {
  auto link = UsbLink::create();
  UsbHost host(link, {});
  auto f = FunctionFs::create();
  ASSERT_TRUE(f->bind(link).ok());
  auto in = std::move(f->open(1).value());
  std::vector<std::byte> buf(4096);
  PatternGenerator(SampleFormat{}, PatternKind::Ramp).fill(buf, 0);
  std::atomic<bool> written{false};
  std::thread writer([&] {
    EXPECT_EQ(in->write(buf).value(), buf.size());
    written = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(written.load());
  ASSERT_TRUE(host.configure().ok());
  writer.join();
  EXPECT_TRUE(written.load());
  EXPECT_EQ(host.stats(1).verifiedBytes, buf.size());
  EXPECT_EQ(host.stats(1).mismatches, 0U);
}

TEST(FunctionFs, UnbindWakesABlockedWaiterWithEnodev) {
  auto link = UsbLink::create();
  auto f = FunctionFs::create();
  ASSERT_TRUE(f->bind(link).ok());
  auto in = std::move(f->open(1).value());
  std::thread writer([&] {
    std::vector<std::byte> buf(16);
    EXPECT_EQ(in->write(buf).code(), ENODEV);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  f->unbind();
  writer.join();
  EXPECT_FALSE(f->bound());
}

TEST(FunctionFs, WrongDirectionHaltsWithEbadmsg) {
  auto link = UsbLink::create();
  UsbHost host(link, {});
  auto f = FunctionFs::create();
  ASSERT_TRUE(f->bind(link).ok());
  ASSERT_TRUE(host.configure().ok());
  std::vector<std::byte> buf(16);
  EXPECT_EQ(f->open(1).value()->read(buf).code(), EBADMSG);
  EXPECT_EQ(f->open(2).value()->write(buf).code(), EBADMSG);
}

// ffs_epfile_io waits for the endpoint before it decides to halt: a wrong-direction call on an
// endpoint that is not enabled is EAGAIN (non-blocking) or ENODEV (unbound), not EBADMSG.
TEST(FunctionFs, WrongDirectionWaitsForTheEndpointBeforeHalting) {
  std::vector<std::byte> buf(16);
  auto unbound = FunctionFs::create();
  EXPECT_EQ(unbound->open(1, O_NONBLOCK).value()->read(buf).code(), ENODEV);
  EXPECT_EQ(unbound->open(2).value()->write(buf).code(), ENODEV);

  auto link = UsbLink::create();
  UsbHost host(link, {});
  auto f = FunctionFs::create();
  ASSERT_TRUE(f->bind(link).ok());
  auto in = std::move(f->open(1, O_NONBLOCK).value());
  auto out = std::move(f->open(2, O_NONBLOCK).value());
  EXPECT_EQ(in->read(buf).code(), EAGAIN);
  EXPECT_EQ(out->write(buf).code(), EAGAIN);
  ASSERT_TRUE(host.configure().ok());
  EXPECT_EQ(in->read(buf).code(), EBADMSG);
  EXPECT_EQ(out->write(buf).code(), EBADMSG);
  f->unbind();
}

// A zero-length write or read is a zero-length transfer; no copy of zero bytes from or to a
// null pointer (UBSan: null pointer passed to memcpy).
TEST(FunctionFs, ZeroLengthFileioIsAZeroLengthTransfer) {
  auto link = UsbLink::create();
  UsbHost host(link, {});
  auto f = FunctionFs::create();
  ASSERT_TRUE(f->bind(link).ok());
  ASSERT_TRUE(host.configure().ok());
  auto in = std::move(f->open(1).value());
  auto out = std::move(f->open(2).value());
  EXPECT_EQ(in->write(std::span<const std::byte>{}).value(), 0U);
  host.startSending(2, 16);
  EXPECT_EQ(out->read(std::span<std::byte>{}).value(), 0U);
  std::vector<std::byte> buf(16);
  EXPECT_EQ(out->read(buf).value(), 16U);  // the host's data was not used up by the empty read
  EXPECT_EQ(link->executed(), 3U);
  f->unbind();
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

TEST(FunctionFs, Ep0CarriesNoData) {
  auto f = FunctionFs::create();
  auto ep0 = std::move(f->open(0).value());
  std::vector<std::byte> buf(16);
  EXPECT_EQ(ep0->write(buf).code(), EINVAL);
  EXPECT_EQ(ep0->read(buf).code(), EINVAL);
}

TEST(FunctionFs, ReconfigurationAfterDisconnectWorks) {
  auto link = UsbLink::create();
  UsbHost host(link, {});
  auto f = FunctionFs::create();
  ASSERT_TRUE(f->bind(link).ok());
  ASSERT_TRUE(host.configure().ok());
  EXPECT_TRUE(f->enabled());
  host.disconnect();
  EXPECT_FALSE(f->enabled());
  auto in = std::move(f->open(1, O_NONBLOCK).value());
  std::vector<std::byte> buf(16);
  EXPECT_EQ(in->write(buf).code(), EAGAIN);
  ASSERT_TRUE(host.configure().ok());
  EXPECT_TRUE(in->write(buf).ok());
}

}  // namespace
}  // namespace zbuf::usb
