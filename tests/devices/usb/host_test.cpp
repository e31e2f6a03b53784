// UsbHost (devices/usb/host.h): the emulated host checks every IN transfer against the pattern
// at its stream position (mismatches, benchmark mode), sends the pattern on OUT endpoints (a
// failed transfer again), and its counters can be reset and waited for.
#include "zbuf/devices/usb/host.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <vector>

#include "support/usb_rig.h"
#include "zbuf/devices/usb/functionfs.h"

namespace zbuf::usb {
namespace {

using namespace std::chrono_literals;

constexpr unsigned kIn = testing_support::kUsbIn;
constexpr unsigned kOut = testing_support::kUsbOut;
using Rig = testing_support::UsbRig;

TEST(UsbHost, InTransfersAreCheckedByteForByte) {
  Rig rig;
  const std::size_t n = 256 * 1024;
  for (int i = 0; i < 4; ++i) {
    auto data = rig.pattern(i * n, n);
    ASSERT_EQ(rig.in->write(data).value(), n);
  }
  const EndpointStats s = rig.host.stats(kIn);
  EXPECT_EQ(s.bytes, 4 * n);
  EXPECT_EQ(s.blocks, 4U);
  EXPECT_EQ(s.verifiedBytes, 4 * n);
  EXPECT_EQ(s.mismatches, 0U);
  EXPECT_EQ(s.gaps, 0U);
}

TEST(UsbHost, CorruptedBytesAreCountedAsMismatches) {
  Rig rig;
  auto data = rig.pattern(0, 4096);
  data[10] ^= std::byte{0xff};
  data[4000] ^= std::byte{0x01};
  ASSERT_EQ(rig.in->write(data).value(), 4096U);
  EXPECT_EQ(rig.host.stats(kIn).mismatches, 2U);
}

TEST(UsbHost, BenchmarkModeNeitherChecksNorGenerates) {
  Rig rig({}, HostConfig{.benchmark = true});
  std::vector<std::byte> junk(4096, std::byte{0x5a});
  ASSERT_EQ(rig.in->write(junk).value(), 4096U);
  EXPECT_EQ(rig.host.stats(kIn).verifiedBytes, 0U);
  EXPECT_EQ(rig.host.stats(kIn).mismatches, 0U);
  rig.host.startSending(kOut, 4096);
  std::vector<std::byte> out(4096, std::byte{0x11});
  ASSERT_EQ(rig.out->read(out).value(), 4096U);
  EXPECT_EQ(rig.host.stats(kOut).bytes, 4096U);
  // The host generated nothing: the request buffer's old contents (zeros) arrived.
  EXPECT_EQ(out[100], std::byte{0});
}

TEST(UsbHost, OutTransfersCarryThePattern) {
  Rig rig;
  rig.host.startSending(kOut, 3 * 8192);
  PatternChecker checker(SampleFormat{}, PatternKind::Ramp);
  std::vector<std::byte> buf(8192);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(rig.out->read(buf).value(), 8192U);
    EXPECT_EQ(checker.countMismatches(buf, i * 8192), 0U);
  }
  EXPECT_EQ(rig.host.stats(kOut).bytes, 3 * 8192U);
  EXPECT_FALSE(rig.host.outReady(kOut));  // all sent
}

TEST(UsbHost, FailedOutTransferIsSentAgain) {
  Rig rig;
  rig.host.startSending(kOut);
  rig.link->failNth(1, EIO);
  std::vector<std::byte> buf(4096);
  EXPECT_EQ(rig.out->read(buf).code(), EIO);
  ASSERT_EQ(rig.out->read(buf).value(), 4096U);
  PatternChecker checker(SampleFormat{}, PatternKind::Ramp);
  EXPECT_EQ(checker.countMismatches(buf, 0), 0U);  // the same data again, from offset 0
  EXPECT_EQ(rig.host.stats(kOut).gaps, 1U);
}

TEST(UsbHost, ResetZeroesTheCountersAndMovesTheStreamPosition) {
  Rig rig;
  ASSERT_EQ(rig.in->write(rig.pattern(0, 4096)).value(), 4096U);
  EXPECT_TRUE(rig.host.waitInBytes(kIn, 4096, 10s));
  EXPECT_EQ(rig.host.stats(kIn).offset, 4096U);
  rig.host.reset(kIn, 1 << 20);
  EndpointStats s = rig.host.stats(kIn);
  EXPECT_EQ(s.bytes, 0U);
  EXPECT_EQ(s.blocks, 0U);
  EXPECT_EQ(s.verifiedBytes, 0U);
  EXPECT_EQ(s.offset, 1U << 20);
  // The next transfer is checked at the new position.
  ASSERT_EQ(rig.in->write(rig.pattern(1 << 20, 4096)).value(), 4096U);
  s = rig.host.stats(kIn);
  EXPECT_EQ(s.verifiedBytes, 4096U);
  EXPECT_EQ(s.mismatches, 0U);
  EXPECT_EQ(s.offset, (1U << 20) + 4096);
}

TEST(UsbHost, WaitInBytesIsFalseOnTimeout) {
  Rig rig;
  EXPECT_FALSE(rig.host.waitInBytes(kIn, 1, 1ms));
}

TEST(UsbHost, ConfigureWithoutABoundFunctionIsEnodev) {
  auto link = UsbLink::create({});
  UsbHost host(link, {});
  EXPECT_EQ(host.configure().code(), ENODEV);
}

}  // namespace
}  // namespace zbuf::usb
