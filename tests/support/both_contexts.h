// BothContexts: a parametrised fixture for suites that run every scenario on two kernels: the
// embedded Context (Kernel::Embedded) and, through zbufd's protocol, a RemoteContext served by a
// daemon::Server started in the test process on a temporary socket, with the same Context
// behind it (Kernel::Daemon). A test makes its calls through `calls` (uapi::FdCalls), and may
// look behind them at `ctx` (the daemon's context in both cases) and `board`.
//
//   class MySuite : public testing_support::BothContexts {};
//   TEST_P(MySuite, Something) { UniqueFd buf = allocate(4096); ... calls->ioctl(...) ... }
//   ZBUF_BOTH_CONTEXTS(MySuite);
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "support/in_process_daemon.h"
#include "zbuf/daemon/server.h"
#include "zbuf/devices/board.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"

namespace zbuf::testing_support {

enum class Kernel { Embedded, Daemon };

class BothContexts : public ::testing::TestWithParam<Kernel> {
 protected:
  void SetUp() override {
    board = std::move(Board::create(*ctx, boardConfig).value());
    if (GetParam() == Kernel::Embedded) {
      calls = ctx;
      return;
    }
    daemon_ = InProcessDaemon::start(ctx);
    ASSERT_NE(daemon_, nullptr);
    server = daemon_->server.get();
    calls = daemon_->client;
  }
  void TearDown() override {
    calls.reset();
    daemon_.reset();
  }

  UniqueFd open(const std::string& path, int flags = O_RDWR) {
    auto fd = calls->open(path, flags);
    EXPECT_TRUE(fd.ok()) << path << ": " << fd.error().describe();
    return fd.ok() ? std::move(*fd) : UniqueFd();
  }
  UniqueFd allocate(std::uint64_t len, std::uint32_t fdFlags = O_RDWR | O_CLOEXEC) {
    UniqueFd heap = open("/dev/dma_heap/system", O_RDONLY);
    uapi::DmaHeapAllocationData data{};
    data.len = len;
    data.fdFlags = fdFlags;
    auto r = calls->ioctl(heap.get(), uapi::kDmaHeapIoctlAlloc, &data);
    EXPECT_TRUE(r.ok()) << r.error().describe();
    return r.ok() ? UniqueFd::adopt(static_cast<int>(data.fd)) : UniqueFd();
  }
  int writeAttr(const std::string& path, const std::string& value) {
    auto fd = calls->open(path, O_WRONLY);
    if (!fd.ok()) {
      return fd.code();
    }
    return calls->write(fd->get(), std::as_bytes(std::span(value))).code();
  }
  UniqueFd exportSyncFile(int buffer, std::uint32_t flags) {
    uapi::DmaBufExportSyncFile arg{flags, -1};
    auto r = calls->ioctl(buffer, uapi::kDmaBufIoctlExportSyncFile, &arg);
    EXPECT_TRUE(r.ok()) << r.error().describe();
    return r.ok() ? UniqueFd::adopt(arg.fd) : UniqueFd();
  }

  // An fd number that is not open, and that no other thread of this test will open meanwhile.
  static int closedFd() { return 900; }

  std::shared_ptr<uapi::Context> ctx = uapi::Context::create();
  BoardConfig boardConfig{};  // what SetUp builds the board with (a suite's constructor may set it)
  std::shared_ptr<Board> board;
  daemon::Server* server = nullptr;  // Kernel::Daemon's, else null
  std::shared_ptr<uapi::FdCalls> calls;

 private:
  std::unique_ptr<InProcessDaemon> daemon_;
};

// The instantiation's parameter names: .../Embedded and .../Daemon.
inline std::string kernelName(const ::testing::TestParamInfo<Kernel>& info) {
  return info.param == Kernel::Embedded ? "Embedded" : "Daemon";
}

}  // namespace zbuf::testing_support

// Instantiates `suite` (a BothContexts or a class derived from it) on both kernels.
#define ZBUF_BOTH_CONTEXTS(suite)                                                       \
  INSTANTIATE_TEST_SUITE_P(Kernels, suite,                                              \
                           ::testing::Values(::zbuf::testing_support::Kernel::Embedded, \
                                             ::zbuf::testing_support::Kernel::Daemon),  \
                           ::zbuf::testing_support::kernelName)
