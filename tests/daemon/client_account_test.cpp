// Per-client limits in zbufd (daemon/client_account.h): a client process holds at most so many
// files, buffers and bytes; past them a request is refused with the kernel's errno (EMFILE for
// files, ENOMEM for buffers) before any call, and what the client closes is given back.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/in_process_daemon.h"
#include "zbuf/daemon/server.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"

namespace zbuf {
namespace {

class ClientLimitsTest : public ::testing::Test {
 protected:
  void start(daemon::ClientLimits limits) {
    daemon_ = testing_support::InProcessDaemon::start(ctx, limits);
    ASSERT_NE(daemon_, nullptr);
    server = daemon_->server.get();
    kernel = daemon_->client;
  }
  void TearDown() override {
    kernel.reset();
    daemon_.reset();
  }
  // ALLOC of `len` bytes on `heap`: the fd, or the errno.
  std::pair<UniqueFd, int> allocate(int heap, std::uint64_t len) {
    uapi::DmaHeapAllocationData data{};
    data.len = len;
    data.fdFlags = O_RDWR | O_CLOEXEC;
    auto r = kernel->ioctl(heap, uapi::kDmaHeapIoctlAlloc, &data);
    return r.ok() ? std::pair{UniqueFd::adopt(static_cast<int>(data.fd)), 0}
                  : std::pair{UniqueFd(), r.code()};
  }

  std::shared_ptr<uapi::Context> ctx = uapi::Context::create();
  std::unique_ptr<testing_support::InProcessDaemon> daemon_;
  daemon::Server* server = nullptr;
  std::shared_ptr<ipc::RemoteContext> kernel;
};

TEST_F(ClientLimitsTest, BuffersPastTheLimitAreEnomemAndAClosedOneIsGivenBack) {
  ASSERT_NO_FATAL_FAILURE(start({.files = 16, .buffers = 2, .bytes = 64 << 10}));
  UniqueFd heap = std::move(kernel->open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC).value());
  auto [a, ea] = allocate(heap.get(), 16 << 10);
  auto [b, eb] = allocate(heap.get(), 16 << 10);
  ASSERT_EQ(ea, 0);
  ASSERT_EQ(eb, 0);
  EXPECT_EQ(allocate(heap.get(), 4096).second, ENOMEM);  // a third buffer
  const daemon::ClientUsage u = server->usage(::getpid());
  EXPECT_EQ(u.buffers, 2U);
  EXPECT_EQ(u.bytes, 32U << 10);
  EXPECT_EQ(u.files, 3U);                         // the heap's file too
  ASSERT_TRUE(kernel->close(std::move(a)).ok());  // released in the daemon before it returns
  auto [c, ec] = allocate(heap.get(), 16 << 10);
  EXPECT_EQ(ec, 0);
  // Bytes: 16 + 16 KiB held, 48 KiB more would pass 64 KiB.
  ASSERT_TRUE(kernel->close(std::move(c)).ok());
  EXPECT_EQ(allocate(heap.get(), 49 << 10).second, ENOMEM);
  EXPECT_EQ(allocate(heap.get(), 48 << 10).second, 0);
}

TEST_F(ClientLimitsTest, FilesPastTheLimitAreEmfile) {
  ASSERT_NO_FATAL_FAILURE(start({.files = 3, .buffers = 16, .bytes = 1 << 20}));
  std::vector<UniqueFd> held;
  UniqueFd heap = std::move(kernel->open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC).value());
  for (int i = 0; i < 2; ++i) {
    auto [fd, e] = allocate(heap.get(), 4096);
    ASSERT_EQ(e, 0) << i;
    held.push_back(std::move(fd));
  }
  // Three files held: a fourth of any kind is EMFILE (an open, an export, an allocation).
  EXPECT_EQ(kernel->open("/dev/udmabuf", O_RDWR | O_CLOEXEC).code(), EMFILE);
  uapi::DmaBufExportSyncFile exp{uapi::kDmaBufSyncRead, -1};
  EXPECT_EQ(kernel->ioctl(held[0].get(), uapi::kDmaBufIoctlExportSyncFile, &exp).code(), EMFILE);
  EXPECT_EQ(allocate(heap.get(), 4096).second, EMFILE);
  // Calls that make no file go on.
  uapi::DmaBufSync sync{uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRead};
  EXPECT_TRUE(kernel->ioctl(held[0].get(), uapi::kDmaBufIoctlSync, &sync).ok());
  ASSERT_TRUE(kernel->close(std::move(held.back())).ok());
  held.pop_back();
  EXPECT_TRUE(kernel->open("/dev/udmabuf", O_RDWR | O_CLOEXEC).ok());
}

TEST_F(ClientLimitsTest, AnAllocationLargerThanTheLimitIsEnomemWithoutACall) {
  ASSERT_NO_FATAL_FAILURE(start({.files = 16, .buffers = 16, .bytes = 1 << 20}));
  UniqueFd heap = std::move(kernel->open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC).value());
  EXPECT_EQ(allocate(heap.get(), 2 << 20).second, ENOMEM);
  // A length the heap refuses itself keeps the heap's errno.
  EXPECT_EQ(allocate(heap.get(), ~std::uint64_t{0}).second, EINVAL);
  EXPECT_EQ(server->usage(::getpid()).buffers, 0U);
  EXPECT_EQ(server->usage(12345678).files, 0U);  // a process the daemon does not know
}

}  // namespace
}  // namespace zbuf
