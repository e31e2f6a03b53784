// ctest-labels: concurrency
// What a program gets when it calls libc itself on zbuf's fds instead of the fd-level calls:
// the backing file answers (a memfd for a buffer, a pipe for a sync file), not the kernel's
// dma-buf or sync file. These tests pin down each row of docs/uapi.md's table "plain libc", and
// what zbuf offers instead.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>
#include <thread>

#include "uapi/uapi_helpers.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/dma_buf.h"
#include "zbuf/uapi/linux_uapi.h"

namespace zbuf::uapi {
namespace {

using namespace std::chrono_literals;
using zbuf::testing::attachFence;
using zbuf::testing::installSystemBuffer;

class PlainLibc : public ::testing::Test {
 protected:
  ContextPtr ctx = Context::create();
  Context::Scope scope{*ctx};
};

TEST_F(PlainLibc, ReadOnASyncFileConsumesTheWakeUp) {
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto fd = ctx->installSyncFile(fence);
  ASSERT_TRUE(fd.ok());
  fence->signal();
  EXPECT_EQ(sys::pollOne(fd->get(), POLLIN, 0ms).value(), POLLIN);
  char byte = 0;
  EXPECT_EQ(::read(fd->get(), &byte, 1), 1);                   // read(2) drains the pipe
  EXPECT_EQ(sys::pollOne(fd->get(), POLLIN, 0ms).value(), 0);  // the signal is lost to poll(2)
  // The fd-level poll asks the fence, so it still says POLLIN.
  std::array<struct pollfd, 1> fds{{{fd->get(), POLLIN, 0}}};
  EXPECT_EQ(ctx->poll(fds, 0).value(), 1);
  EXPECT_EQ(fds[0].revents, POLLIN);
}

TEST_F(PlainLibc, ReadWritePreadPwriteOnABufferFdActAsOnAMemfd) {
  UniqueFd fd = installSystemBuffer(*ctx, 4096);
  auto map = ctx->mmap(fd.get(), 4096, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(::write(fd.get(), "abcd", 4), 4);         // the kernel: EINVAL
  EXPECT_EQ(std::memcmp(map->data(), "abcd", 4), 0);  // and it changed the buffer
  EXPECT_EQ(::pwrite(fd.get(), "xy", 2, 100), 2);     // the kernel: ESPIPE
  EXPECT_EQ(std::memcmp(map->data() + 100, "xy", 2), 0);
  char buf[4] = {};
  EXPECT_EQ(::pread(fd.get(), buf, 2, 100), 2);  // the kernel: ESPIPE
  EXPECT_EQ(::lseek(fd.get(), 0, SEEK_SET), 0);
  EXPECT_EQ(::read(fd.get(), buf, 4), 4);  // the kernel: EINVAL
  EXPECT_EQ(std::memcmp(buf, "abcd", 4), 0);
  EXPECT_EQ(::lseek(fd.get(), 10, SEEK_SET), 10);  // the kernel: EINVAL (offset not 0)
  // The fd-level calls answer as the kernel.
  std::array<std::byte, 4> out{};
  EXPECT_EQ(ctx->read(fd.get(), out).code(), EINVAL);
  EXPECT_EQ(ctx->lseek(fd.get(), 10, SEEK_SET).code(), EINVAL);
}

TEST_F(PlainLibc, FtruncateFsyncFstatAndFstatfsAnswerAsAMemfd) {
  UniqueFd fd = installSystemBuffer(*ctx, 8192);
  // The system heap's memfd is sealed against growing and shrinking: EPERM (the kernel: EINVAL).
  EXPECT_NE(::ftruncate(fd.get(), 4096), 0);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::ftruncate(fd.get(), 8192), 0);  // the same size passes the seals
  EXPECT_EQ(::fsync(fd.get()), 0);            // the kernel: EINVAL
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, 8192);       // the same size as the kernel's
  EXPECT_TRUE(S_ISREG(st.st_mode));  // the kernel's dma-buf inode is not a regular file
  struct statfs fs {};
  ASSERT_EQ(::fstatfs(fd.get(), &fs), 0);
  EXPECT_EQ(static_cast<unsigned long>(fs.f_type), TMPFS_MAGIC);  // the kernel: DMA_BUF_MAGIC
  EXPECT_EQ(ctx->fstat(fd.get()).value().size, 8192U);
}

TEST_F(PlainLibc, EpollRefusesABufferFdButTakesASyncFile) {
  UniqueFd buffer = installSystemBuffer(*ctx);
  auto ep = UniqueFd::adopt(::epoll_create1(EPOLL_CLOEXEC));
  ASSERT_TRUE(ep.isValid());
  struct epoll_event ev {};
  ev.events = EPOLLIN;
  EXPECT_NE(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, buffer.get(), &ev), 0);
  EXPECT_EQ(errno, EPERM);  // a memfd does not support poll (the kernel's dma-buf does)
  auto sync = ctx->installSyncFile(Fence::stub());
  ASSERT_TRUE(sync.ok());
  EXPECT_EQ(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, sync->get(), &ev), 0);  // a pipe
}

TEST_F(PlainLibc, WhatZbufOffersInsteadAnExportedSyncFileInAnEpollLoop) {
  // The buffer's readiness for reading (no pending writer) as an fd epoll accepts:
  // EXPORT_SYNC_FILE(READ) snapshots the writers; its sync file becomes readable when they
  // signal.
  UniqueFd buffer = installSystemBuffer(*ctx);
  auto writer = attachFence(buffer.get(), ResvUsage::Write);
  auto ready = exportSyncFile(buffer.get(), DMA_BUF_SYNC_READ);
  ASSERT_TRUE(ready.ok());
  auto ep = UniqueFd::adopt(::epoll_create1(EPOLL_CLOEXEC));
  ASSERT_TRUE(ep.isValid());
  struct epoll_event ev {};
  ev.events = EPOLLIN;
  ev.data.fd = ready->get();
  ASSERT_EQ(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, ready->get(), &ev), 0);
  std::array<struct epoll_event, 1> got{};
  EXPECT_EQ(::epoll_wait(ep.get(), got.data(), 1, 0), 0);
  std::thread signaller([&] { writer->signal(); });
  EXPECT_EQ(::epoll_wait(ep.get(), got.data(), 1, 10'000), 1);
  signaller.join();
  EXPECT_EQ(got[0].data.fd, ready->get());
  EXPECT_NE(got[0].events & EPOLLIN, 0U);
  // And the other offer: the buffer fd itself in the fd-level poll.
  std::array<struct pollfd, 1> fds{{{buffer.get(), POLLIN, 0}}};
  EXPECT_EQ(ctx->poll(fds, 0).value(), 1);
}

TEST_F(PlainLibc, FionbioAndFioclexThroughLibcWorkOnTheDescription) {
  UniqueFd buffer = installSystemBuffer(*ctx);
  int on = 1;
  ASSERT_EQ(::ioctl(buffer.get(), FIONBIO, &on), 0);
  EXPECT_NE(::fcntl(buffer.get(), F_GETFL) & O_NONBLOCK, 0);
  ASSERT_EQ(::ioctl(buffer.get(), FIONCLEX), 0);
  EXPECT_EQ(::fcntl(buffer.get(), F_GETFD) & FD_CLOEXEC, 0);
  // zbuf reads the description's flags live, so it sees the change.
  EXPECT_NE(ctx->fdinfo(buffer.get()).value().find("flags:\t04002\n"), std::string::npos)
      << ctx->fdinfo(buffer.get()).value();
  // But the kernel's own ioctls through libc reach the memfd: ENOTTY.
  dma_buf_sync s{DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ};
  EXPECT_NE(::ioctl(buffer.get(), DMA_BUF_IOCTL_SYNC, &s), 0);
  EXPECT_EQ(errno, ENOTTY);
}

std::string readText(const std::string& path) {
  auto fd = sys::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_TRUE(fd.ok());
  std::string out(4096, '\0');
  auto n = sys::read(fd->get(), std::as_writable_bytes(std::span(out)));
  out.resize(n.ok() ? *n : 0);
  return out;
}

TEST_F(PlainLibc, ProcShowsTheMemfdNotTheDmaBuf) {
  UniqueFd buffer = installSystemBuffer(*ctx);
  ASSERT_TRUE(setName(buffer.get(), "cam0").ok());
  const std::string fd = std::to_string(buffer.get());
  std::string link(256, '\0');
  const ssize_t n = ::readlink(("/proc/self/fd/" + fd).c_str(), link.data(), link.size());
  ASSERT_GT(n, 0);
  link.resize(static_cast<std::size_t>(n));
  EXPECT_EQ(link.rfind("/memfd:", 0), 0U) << link;  // the kernel: /dmabuf:cam0
  const std::string info = readText("/proc/self/fdinfo/" + fd);
  EXPECT_EQ(info.find("exp_name:"), std::string::npos) << info;
  // Only the fd-level calls show the kernel's.
  EXPECT_EQ(ctx->fdPath(buffer.get()).value(), "/dmabuf:cam0");
  EXPECT_NE(ctx->fdinfo(buffer.get()).value().find("exp_name:\tsystem\n"), std::string::npos);
  // Opening that /proc path makes a new description, which zbuf counts (file_table.h).
}

TEST_F(PlainLibc, AReadOnlyFdsZbufMappingCanBeMadeWritableWithMprotect) {
  // The mapping made by the fd-level mmap comes from the exporter's own read-write memfd, not
  // from the read-only description, so mprotect(2) can add PROT_WRITE, where the kernel (whose
  // mapping is of the read-only file) says EACCES. A plain mmap(2) of the fd cannot
  // (buffer_file_test.cpp).
  UniqueFd fd = installSystemBuffer(*ctx, 4096, O_RDONLY | O_CLOEXEC);
  auto map = ctx->mmap(fd.get(), 4096, PROT_READ, MAP_SHARED);
  ASSERT_TRUE(map.ok());
  EXPECT_EQ(::mprotect(map->data(), 4096, PROT_READ | PROT_WRITE), 0);
}

TEST_F(PlainLibc, UdmabufThroughLibcOnZbufsDeviceFdIsTheMemfdsEnotty) {
  auto dev = ctx->open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
  ASSERT_TRUE(dev.ok());
  udmabuf_create create{};
  EXPECT_NE(::ioctl(dev->get(), UDMABUF_CREATE, &create), 0);
  EXPECT_EQ(errno, ENOTTY);
}

}  // namespace
}  // namespace zbuf::uapi
