// Board (devices/board.h): the nodes it registers in a context, the test-bench files beside
// them (and their answer once the board is gone), one board per context, and the bench's view
// of a buffer's last fence.
#include "zbuf/devices/board.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "zbuf/uapi/abi.h"

namespace zbuf {
namespace {

std::string readAll(uapi::Context& ctx, const std::string& path) {
  auto fd = ctx.open(path, O_RDONLY);
  EXPECT_TRUE(fd.ok()) << path << ": " << fd.error().describe();
  if (!fd.ok()) {
    return {};
  }
  std::array<std::byte, 4096> buf{};
  auto n = ctx.read(fd->get(), buf);
  EXPECT_TRUE(n.ok()) << path;
  return n.ok() ? std::string(reinterpret_cast<const char*>(buf.data()), *n) : std::string();
}

bool has(const std::vector<std::string>& nodes, const std::string& path) {
  return std::find(nodes.begin(), nodes.end(), path) != nodes.end();
}

TEST(Board, RegistersEveryDeviceNodeAndTheBenchFiles) {
  auto ctx = uapi::Context::create();
  auto board = Board::create(*ctx, BoardConfig{});
  ASSERT_TRUE(board.ok()) << board.error().describe();
  const std::vector<std::string> nodes = ctx->nodes();
  for (const std::string& path :
       {std::string(Board::kAdcPath), std::string(Board::kDacPath),
        std::string(Board::kFunctionFsMount) + "/ep0",
        std::string(Board::kFunctionFsMount) + "/ep1",
        std::string(Board::kFunctionFsMount) + "/ep2", std::string(Board::kAdcSysfs) + "/name",
        std::string(Board::kBenchDir) + "/board", std::string(Board::kBenchDir) + "/host/ep1",
        std::string(Board::kBenchDir) + "/host/ep2", std::string(Board::kBenchDir) + "/iio:device0",
        std::string(Board::kBenchDir) + "/iio:device1", std::string(virtio::kDecoderPath),
        std::string(virtio::kDisplayPath), std::string(virtio::kBenchDir) + "/host"}) {
    EXPECT_TRUE(has(nodes, path)) << path;
  }
  EXPECT_EQ(readAll(*ctx, std::string(Board::kAdcSysfs) + "/name"), "cf-ad9361-lpc\n");
}

TEST(Board, TheBoardFileShowsTheConfiguration) {
  auto ctx = uapi::Context::create();
  BoardConfig config;
  config.format.channels = 2;
  config.sampleRate = 48000;
  config.pattern = PatternKind::Prbs;
  config.link = LinkSpeed::Usb2;
  auto board = Board::create(*ctx, config).value();
  EXPECT_EQ(board->config().sampleRate, 48000U);
  const std::string text = readAll(*ctx, std::string(Board::kBenchDir) + "/board");
  for (const char* line :
       {"channels 2\n", "sample_rate 48000\n", "pattern prbs\n", "benchmark 0\n", "link usb2\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << " in\n" << text;
  }
}

TEST(Board, OneBoardPerContextAndAnInvalidFormatIsRefused) {
  auto ctx = uapi::Context::create();
  auto first = Board::create(*ctx, BoardConfig{});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(Board::create(*ctx, BoardConfig{}).code(), EEXIST);  // the nodes are taken
  auto other = uapi::Context::create();
  BoardConfig bad;
  bad.format.channels = 0;
  EXPECT_EQ(Board::create(*other, bad).code(), EINVAL);
}

TEST(Board, TheBenchFilesAnswerEnodevOnceTheBoardIsGone) {
  auto ctx = uapi::Context::create();
  auto board = Board::create(*ctx, BoardConfig{}).value();
  UniqueFd bench = ctx->open(std::string(Board::kBenchDir) + "/host/ep1", O_RDONLY).value();
  board.reset();
  std::array<std::byte, 256> buf{};
  EXPECT_EQ(ctx->read(bench.get(), buf).code(), ENODEV);
  auto again = ctx->open(std::string(Board::kBenchDir) + "/board", O_RDONLY);
  ASSERT_TRUE(again.ok());  // the node stays in the context; the board behind it does not
  EXPECT_EQ(ctx->read(again->get(), buf).code(), ENODEV);
}

TEST(Board, TheHostCountersResetThroughTheirFile) {
  auto ctx = uapi::Context::create();
  auto board = Board::create(*ctx, BoardConfig{}).value();
  UniqueFd ep1 = ctx->open(std::string(Board::kBenchDir) + "/host/ep1", O_RDWR).value();
  const std::string reset = "reset 4096\n";
  ASSERT_TRUE(ctx->write(ep1.get(), std::as_bytes(std::span(reset))).ok());
  EXPECT_NE(readAll(*ctx, std::string(Board::kBenchDir) + "/host/ep1").find("offset 4096\n"),
            std::string::npos);
  const std::string bad = "frobnicate\n";
  EXPECT_EQ(ctx->write(ep1.get(), std::as_bytes(std::span(bad))).code(), EINVAL);
  // "send" is for the OUT endpoint only.
  const std::string send = "send\n";
  EXPECT_EQ(ctx->write(ep1.get(), std::as_bytes(std::span(send))).code(), EINVAL);
}

TEST(Board, ABufferWithoutFencesHasStatusOne) {
  auto ctx = uapi::Context::create();
  auto board = Board::create(*ctx, BoardConfig{}).value();
  UniqueFd heap = ctx->open("/dev/dma_heap/system", O_RDONLY).value();
  uapi::DmaHeapAllocationData data{};
  data.len = 4096;
  data.fdFlags = O_RDWR | O_CLOEXEC;
  ASSERT_TRUE(ctx->ioctl(heap.get(), uapi::kDmaHeapIoctlAlloc, &data).ok());
  UniqueFd buffer = UniqueFd::adopt(static_cast<int>(data.fd));
  EXPECT_EQ(Board::lastFenceStatus(*ctx, buffer.get(), "iio"), 1);
  EXPECT_EQ(Board::lastFenceStatus(*ctx, buffer.get(), "functionfs"), 1);
}

}  // namespace
}  // namespace zbuf
