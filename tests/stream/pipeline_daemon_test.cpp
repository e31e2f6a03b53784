// ctest-labels: concurrency
// Pipeline on zbufd's kernel: the main job as a client of a daemon (here one started in this
// process on a temporary socket, the board in the daemon's context), every path in both modes,
// runs one after another on the same board (each verified from where the last one left the
// stream), the board's settings adopted, and what a daemon's board cannot do refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <memory>
#include <string>

#include "support/in_process_daemon.h"
#include "zbuf/devices/board.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/stream/pipeline.h"
#include "zbuf/uapi/context.h"

namespace zbuf {
namespace {

class PipelineOnDaemon : public ::testing::Test {
 protected:
  void start(bool withBoard, BoardConfig boardConfig = {}) {
    if (withBoard) {
      auto b = Board::create(*ctx, boardConfig);
      ASSERT_TRUE(b.ok()) << b.error().describe();
      board = std::move(*b);
    }
    daemon_ = testing_support::InProcessDaemon::start(ctx);
    ASSERT_NE(daemon_, nullptr);
    kernel = daemon_->client;
  }
  void TearDown() override {
    kernel.reset();
    daemon_.reset();
    board.reset();
  }

  static StreamConfig shortRun(StreamPath path) {
    StreamConfig c;
    c.path = path;
    c.blockBytes = 64 << 10;
    c.blocks = 4;
    c.bytes = 2 << 20;
    return c;
  }

  std::shared_ptr<uapi::Context> ctx = uapi::Context::create();
  std::shared_ptr<Board> board;
  std::unique_ptr<testing_support::InProcessDaemon> daemon_;
  std::shared_ptr<uapi::FdCalls> kernel;
};

TEST_F(PipelineOnDaemon, EveryPathStreamsVerifiedInBothModesRunAfterRun) {
  ASSERT_NO_FATAL_FAILURE(start(true));
  for (StreamPath path : {StreamPath::IioToUsb, StreamPath::IioToApp, StreamPath::UsbToDac}) {
    auto p = Pipeline::create(shortRun(path), kernel);
    ASSERT_TRUE(p.ok()) << p.error().describe();
    // Twice each: the second run of a mode starts where the first left the daemon's stream.
    for (StreamMode mode :
         {StreamMode::Fileio, StreamMode::Dmabuf, StreamMode::Fileio, StreamMode::Dmabuf}) {
      SCOPED_TRACE(std::string(toString(path)) + " " + toString(mode));
      auto r = p->run(mode);
      ASSERT_TRUE(r.ok()) << r.error().describe();
      EXPECT_EQ(r->bytes, 2U << 20);
      EXPECT_EQ(r->verifiedBytes, 2U << 20);
      EXPECT_EQ(r->mismatches, 0U);
      EXPECT_EQ(r->errors, 0U);
    }
  }
}

TEST_F(PipelineOnDaemon, TheDaemonsBoardSettingsReplaceTheConfigs) {
  BoardConfig b;
  b.benchmark = true;
  b.format.channels = 2;
  b.pattern = PatternKind::Prbs;
  ASSERT_NO_FATAL_FAILURE(start(true, b));
  StreamConfig c = shortRun(StreamPath::IioToUsb);
  auto p = Pipeline::create(c, kernel);
  ASSERT_TRUE(p.ok()) << p.error().describe();
  EXPECT_TRUE(p->config().benchmark);
  EXPECT_EQ(p->config().format.channels, 2U);
  EXPECT_EQ(p->config().pattern, PatternKind::Prbs);
  auto r = p->run(StreamMode::Dmabuf);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->bytes, 2U << 20);
  EXPECT_EQ(r->verifiedBytes, 0U);  // benchmark mode: nothing is checked
}

TEST_F(PipelineOnDaemon, WhatConfiguresABoardBuiltForTheRunIsRefused) {
  ASSERT_NO_FATAL_FAILURE(start(true));
  StreamConfig c = shortRun(StreamPath::IioToUsb);
  c.failTransfer = 3;
  EXPECT_EQ(Pipeline::create(c, kernel).code(), EINVAL);
  c = shortRun(StreamPath::IioToUsb);
  c.coherency.adc = false;
  EXPECT_EQ(Pipeline::create(c, kernel).code(), EINVAL);
  c = shortRun(StreamPath::IioToApp);
  c.skipSync = SkippedSync::AppStart;
  EXPECT_EQ(Pipeline::create(c, kernel).code(), EINVAL);
  c = shortRun(StreamPath::IioToApp);
  c.checkCpuAccess = true;
  EXPECT_EQ(Pipeline::create(c, kernel).code(), EINVAL);
}

TEST_F(PipelineOnDaemon, ADaemonWithoutABoardIsEnoent) {
  ASSERT_NO_FATAL_FAILURE(start(false));
  EXPECT_EQ(Pipeline::create(shortRun(StreamPath::IioToUsb), kernel).code(), ENOENT);
}

}  // namespace
}  // namespace zbuf
