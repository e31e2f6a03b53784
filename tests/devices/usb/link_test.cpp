// ctest-labels: concurrency
#include "zbuf/devices/usb/link.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "support/thread_state.h"
#include "support/usb_rig.h"
#include "zbuf/base/hw_thread.h"
#include "zbuf/devices/usb/functionfs.h"
#include "zbuf/devices/usb/host.h"

namespace zbuf::usb {
namespace {

constexpr unsigned kIn = testing_support::kUsbIn;
constexpr unsigned kOut = testing_support::kUsbOut;
using Rig = testing_support::UsbRig;

class TestRequest final : public UsbRequest {
 public:
  void complete(int s, std::uint64_t a) noexcept override {
    status = s;
    actual = a;
    done = true;
  }
  std::atomic<bool> done{false};
  int status = 1;
  std::uint64_t actual = 0;
};

TEST(LinkSpeed, NamesParseAndRates) {
  EXPECT_STREQ(toString(LinkSpeed::Usb2), "usb2");
  EXPECT_EQ(parseLinkSpeed("usb3").value(), LinkSpeed::Usb3);
  EXPECT_EQ(parseLinkSpeed("unlimited").value(), LinkSpeed::Unlimited);
  EXPECT_EQ(parseLinkSpeed("usb4").code(), EINVAL);
  EXPECT_EQ(linkBytesPerSecond(LinkSpeed::Usb2), 43'000'000U);
  EXPECT_EQ(linkBytesPerSecond(LinkSpeed::Usb3), 425'000'000U);
  EXPECT_EQ(linkBytesPerSecond(LinkSpeed::Unlimited), 0U);
}

TEST(UsbLink, QueueBeforeConfigurationIsEshutdown) {
  auto link = UsbLink::create();
  auto req = std::make_shared<TestRequest>();
  EXPECT_EQ(link->queue(req).code(), ESHUTDOWN);
  EXPECT_EQ(link->configure().code(), ENODEV);  // no function bound
}

TEST(UsbLink, SecondFunctionOnOneControllerIsEbusy) {
  auto link = UsbLink::create();
  auto f1 = FunctionFs::create();
  auto f2 = FunctionFs::create();
  ASSERT_TRUE(f1->bind(link).ok());
  EXPECT_EQ(f1->bind(link).code(), EEXIST);
  EXPECT_EQ(f2->bind(link).code(), EBUSY);
  f1->unbind();
  EXPECT_TRUE(f2->bind(link).ok());
}

TEST(UsbLink, InjectedFaultFailsTheNthTransferAndTheHostCountsAGap) {
  Rig rig;
  const std::size_t n = 64 * 1024;
  rig.link->failNth(2, EIO);
  EXPECT_TRUE(rig.in->write(rig.pattern(0, n)).ok());
  auto second = rig.in->write(rig.pattern(n, n));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.code(), EIO);
  EXPECT_TRUE(rig.in->write(rig.pattern(2 * n, n)).ok());
  const EndpointStats s = rig.host.stats(kIn);
  EXPECT_EQ(s.blocks, 2U);
  EXPECT_EQ(s.gaps, 1U);
  EXPECT_EQ(s.lostBytes, n);
  EXPECT_EQ(s.mismatches, 0U);  // the third block is checked at its true stream offset
  EXPECT_EQ(rig.link->executed(), 3U);
}

TEST(UsbLink, ConfiguredFaultUsesTheConfigErrno) {
  Rig rig(LinkConfig{.failTransfer = 1, .failErrno = EPIPE});
  EXPECT_EQ(rig.in->write(rig.pattern(0, 512)).code(), EPIPE);
  EXPECT_TRUE(rig.in->write(rig.pattern(512, 512)).ok());
}

TEST(UsbLink, OutRequestWaitsForTheHost) {
  Rig rig;
  testing_support::ThreadMark reading;
  std::thread reader([&] {
    std::vector<std::byte> buf(1024);
    reading.mark();
    auto r = rig.out->read(buf);
    EXPECT_TRUE(r.ok());
  });
  // The reader sleeps with its request queued, and the link thread, woken by the queueing,
  // sleeps again: it has seen the request and left it for the host.
  EXPECT_TRUE(reading.waitUntilAsleep()) << "the read did not wait";
  EXPECT_TRUE(testing_support::waitUntilAsleep("usb-link"));
  EXPECT_EQ(rig.link->executed(), 0U);  // nothing to receive yet
  rig.host.startSending(kOut, 1024);
  reader.join();
  EXPECT_EQ(rig.link->executed(), 1U);
}

TEST(UsbLink, DisconnectEndsPendingTransfersWithEshutdown) {
  Rig rig;
  testing_support::ThreadMark reading;
  std::thread reader([&] {
    std::vector<std::byte> buf(1024);
    reading.mark();
    EXPECT_EQ(rig.out->read(buf).code(), ESHUTDOWN);
  });
  while (!rig.function->enabled()) {
    std::this_thread::yield();
  }
  (void)reading.waitUntilAsleep();  // the disconnect ends a pending request
  rig.host.disconnect();
  reader.join();
  EXPECT_FALSE(rig.function->enabled());
}

TEST(UsbLink, Usb2ModelPacesTheWire) {
  Rig rig(LinkConfig{.speed = LinkSpeed::Usb2}, HostConfig{.benchmark = true});
  std::vector<std::byte> block(512 * 1024);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(rig.in->write(block).ok());
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double rate = 4.0 * block.size() / s;
  EXPECT_LE(rate, 43e6 * 1.02);  // never faster than the model
  EXPECT_GE(rate, 43e6 * 0.5);   // and not wildly slower (shared machine)
}

TEST(UsbLink, Usb3ModelPacesTheWire) {
  Rig rig(LinkConfig{.speed = LinkSpeed::Usb3}, HostConfig{.benchmark = true});
  std::vector<std::byte> block(2 * 1024 * 1024);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(rig.in->write(block).ok());
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LE(4.0 * block.size() / s, 425e6 * 1.02);
}

TEST(UsbLink, TheLinkThreadCountsAsHardware) {
  Rig rig;
  const auto before = cpu::hardwareTime();
  std::vector<std::byte> block(4 * 1024 * 1024);
  PatternGenerator(SampleFormat{}, PatternKind::Ramp).fill(block, 0);
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(rig.in->write(block).ok());
  }
  EXPECT_GT(cpu::hardwareTime(), before);  // the host's checking ran on the link thread
}

}  // namespace
}  // namespace zbuf::usb
