// The board's test bench as files (devices/board.h): what they show, the host's commands and
// their errnos, and that they outlive the board without touching it.
#include <fcntl.h>
#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <string>

#include "zbuf/devices/board.h"
#include "zbuf/devices/iio/iio_device.h"
#include "zbuf/uapi/context.h"

namespace zbuf {
namespace {

class BoardBench : public ::testing::Test {
 protected:
  Result<std::string> read(const std::string& name) {
    ZBUF_ASSIGN_OR_RETURN(auto fd, ctx->open(std::string(Board::kBenchDir) + "/" + name, O_RDONLY));
    std::array<char, 4096> buf{};
    ZBUF_ASSIGN_OR_RETURN(auto n, ctx->read(fd.get(), std::as_writable_bytes(std::span(buf))));
    (void)ctx->close(std::move(fd));
    return std::string(buf.data(), n);
  }
  int write(const std::string& name, const std::string& text) {
    auto fd = ctx->open(std::string(Board::kBenchDir) + "/" + name, O_WRONLY);
    if (!fd.ok()) {
      return fd.code();
    }
    const int code = ctx->write(fd->get(), std::as_bytes(std::span(text))).code();
    (void)ctx->close(std::move(*fd));
    return code;
  }

  std::shared_ptr<uapi::Context> ctx = uapi::Context::create();
};

TEST_F(BoardBench, TheConfigurationIsShownAsKeyValueLines) {
  BoardConfig config;
  config.format.channels = 2;
  config.pattern = PatternKind::Prbs;
  config.sampleRate = 48000;
  config.benchmark = true;
  config.link = LinkSpeed::Usb2;
  config.iioFileioBlocks = 6;
  auto board = Board::create(*ctx, config);
  ASSERT_TRUE(board.ok()) << board.error().describe();
  auto text = read("board");
  ASSERT_TRUE(text.ok()) << text.error().describe();
  EXPECT_EQ(*text,
            "channels 2\nbytes_per_sample 2\nsigned 1\npattern prbs\nsample_rate 48000\n"
            "benchmark 1\nlink usb2\nfileio_blocks 6\n");
}

TEST_F(BoardBench, TheHostEndpointsAreResetToAStreamPositionAndTheOutOneSends) {
  auto board = Board::create(*ctx, BoardConfig{});
  ASSERT_TRUE(board.ok());
  EXPECT_EQ(write("host/ep1", "reset 4096\n"), 0);
  EXPECT_EQ((*board)->host().stats(Board::kUsbIn).offset, 4096U);
  auto text = read("host/ep1");
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("offset 4096\n"), std::string::npos) << *text;
  EXPECT_NE(text->find("bytes 0\n"), std::string::npos) << *text;
  EXPECT_EQ(write("host/ep2", "send"), 0);
  EXPECT_EQ(write("host/ep2", "stop"), 0);
  // Only an OUT endpoint sends; unknown commands and bad numbers are EINVAL.
  EXPECT_EQ(write("host/ep1", "send"), EINVAL);
  EXPECT_EQ(write("host/ep1", "rewind"), EINVAL);
  EXPECT_EQ(write("host/ep1", "reset x"), EINVAL);
  // Counters are read-only.
  EXPECT_EQ(ctx->open(std::string(Board::kBenchDir) + "/iio:device0", O_WRONLY).code(), EACCES);
  EXPECT_EQ(ctx->open(std::string(Board::kBenchDir) + "/board", O_WRONLY).code(), EACCES);
}

TEST_F(BoardBench, TheIioCountersFollowTheHardware) {
  auto board = Board::create(*ctx, BoardConfig{});
  ASSERT_TRUE(board.ok());
  auto text = read("iio:device0");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text,
            "hardware_bytes 0\ntransfers 0\ntransfer_errors 0\nchecked 0\nmismatches 0\n"
            "stream_offset 0\n");
  EXPECT_TRUE(read("iio:device1").ok());
  EXPECT_EQ(read("iio:device2").code(), ENOENT);
}

TEST_F(BoardBench, TheFilesAnswerEnodevOnceTheBoardIsGone) {
  auto board = Board::create(*ctx, BoardConfig{});
  ASSERT_TRUE(board.ok());
  board->reset();
  EXPECT_EQ(read("board").code(), ENODEV);
  EXPECT_EQ(read("host/ep1").code(), ENODEV);
  EXPECT_EQ(write("host/ep2", "send"), ENODEV);
  EXPECT_EQ(read("iio:device0").code(), ENODEV);
}

}  // namespace
}  // namespace zbuf
