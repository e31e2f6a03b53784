// ctest-labels: concurrency
// The virtio video job (stream/virtio_video.h) on an embedded board: both registrations show
// every frame with every byte checked and the set-up measured; the config's bounds are EINVAL
// before any device is touched; the registration names parse both ways.
#include "zbuf/stream/virtio_video.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

#include "zbuf/devices/board.h"
#include "zbuf/uapi/context.h"

namespace zbuf {
namespace {

class VirtioVideoJob : public ::testing::Test {
 protected:
  void SetUp() override {
    BoardConfig bc;
    bc.virtioRegistrationLatency = std::chrono::milliseconds(2);
    auto b = Board::create(*ctx, bc);
    ASSERT_TRUE(b.ok()) << b.error().describe();
    board = std::move(*b);
  }

  uapi::ContextPtr ctx = uapi::Context::create();
  std::shared_ptr<Board> board;
};

TEST_F(VirtioVideoJob, BothRegistrationsShowEveryFrameWithEveryByteChecked) {
  for (Registration mode : {Registration::Async, Registration::Blocking}) {
    SCOPED_TRACE(toString(mode));
    VirtioVideoConfig c;
    c.frames = 24;
    c.buffers = 3;
    c.frameBytes = std::uint64_t{64} * 1024;
    c.registration = mode;
    auto r = runVirtioVideo(*ctx, c);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->registration, mode);
    EXPECT_EQ(r->frames, c.frames);
    EXPECT_EQ(r->verifiedBytes, c.frames * c.frameBytes);
    EXPECT_EQ(r->mismatches, 0U);
    EXPECT_EQ(r->latencyNs, 2'000'000U);  // the board's configured round trip
    // Every UUID is known only after the host registered it: at least one round trip.
    EXPECT_GE(r->setupSeconds, 0.002);
    EXPECT_GT(r->streamSeconds, 0.0);
  }
}

TEST_F(VirtioVideoJob, AFrameSizeIsRoundedUpToThePage) {
  VirtioVideoConfig c;
  c.frames = 4;
  c.buffers = 1;
  c.frameBytes = 1000;
  auto r = runVirtioVideo(*ctx, c);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->frames, 4U);
  EXPECT_EQ(r->mismatches, 0U);
  EXPECT_GE(r->verifiedBytes, 4U * 1000U);
}

TEST_F(VirtioVideoJob, AConfigOutOfBoundsIsEinval) {
  VirtioVideoConfig none;
  none.buffers = 0;
  EXPECT_EQ(runVirtioVideo(*ctx, none).code(), EINVAL);
  VirtioVideoConfig tooMany;
  tooMany.buffers = 65;
  EXPECT_EQ(runVirtioVideo(*ctx, tooMany).code(), EINVAL);
  VirtioVideoConfig noFrames;
  noFrames.frames = 0;
  EXPECT_EQ(runVirtioVideo(*ctx, noFrames).code(), EINVAL);
  VirtioVideoConfig tiny;
  tiny.frameBytes = 7;
  EXPECT_EQ(runVirtioVideo(*ctx, tiny).code(), EINVAL);
  // Nothing was left behind by the refused runs: a good one still works.
  VirtioVideoConfig ok;
  ok.frames = 2;
  ok.buffers = 1;
  ok.frameBytes = 4096;
  EXPECT_TRUE(runVirtioVideo(*ctx, ok).ok());
}

TEST(VirtioVideoRegistration, NamesParseBothWays) {
  for (Registration mode : {Registration::Async, Registration::Blocking}) {
    auto parsed = parseRegistration(toString(mode));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, mode);
  }
  EXPECT_EQ(parseRegistration("sync").code(), EINVAL);
  EXPECT_EQ(parseRegistration("").code(), EINVAL);
  EXPECT_EQ(parseRegistration("Async").code(), EINVAL);
}

}  // namespace
}  // namespace zbuf
