// KernelCalls (uapi/kernel_calls.h): every call is the real system call, errno for errno. On
// this machine's kernel with ordinary files (a pipe, a memfd, an eventfd); the lane
// (tests/lane) runs the dma-buf scenarios on it against Debian's 6.12.
#include "zbuf/uapi/kernel_calls.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <array>
#include <cstring>
#include <string>
#include <thread>

#include "zbuf/base/sys.h"

namespace zbuf::uapi {
namespace {

std::span<const std::byte> bytes(const char* text) {
  return {reinterpret_cast<const std::byte*>(text), std::strlen(text)};
}

TEST(KernelCalls, APipeThroughEveryCall) {
  KernelCalls k;
  auto ends = sys::pipe();
  ASSERT_TRUE(ends.ok());
  const int r = ends->first.get();
  const int w = ends->second.get();
  EXPECT_EQ(k.write(w, bytes("abc")).value(), 3U);
  std::array<struct pollfd, 2> fds{{{r, POLLIN, 0}, {w, POLLOUT, 0}}};
  EXPECT_EQ(k.poll(fds, 1000).value(), 2);
  EXPECT_EQ(fds[0].revents, POLLIN);
  int queued = 0;
  EXPECT_EQ(k.ioctl(r, FIONREAD, &queued).value(), 0);
  EXPECT_EQ(queued, 3);
  std::array<std::byte, 8> buf{};
  EXPECT_EQ(k.read(r, buf).value(), 3U);
  EXPECT_EQ(std::memcmp(buf.data(), "abc", 3), 0);
  EXPECT_EQ(k.lseek(r, 0, SEEK_SET).code(), ESPIPE);
  EXPECT_EQ(k.mmap(r, 4096, PROT_READ, MAP_SHARED, 0).code(), ENODEV);
  EXPECT_EQ(k.ioctl(r, _IOW('b', 0, std::uint64_t), &queued).code(), ENOTTY);
  EXPECT_TRUE(k.fdPath(r).value().starts_with("pipe:["));
  auto st = k.fstat(r);
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(S_ISFIFO(st->mode));
  // fdinfo is the kernel's own text.
  const std::string info = k.fdinfo(w).value();
  EXPECT_TRUE(info.starts_with("pos:\t0\nflags:\t")) << info;
  EXPECT_NE(info.find("mnt_id:"), std::string::npos) << info;
  EXPECT_TRUE(k.close(ends->first.release()).ok());
}

TEST(KernelCalls, AMemfdMapsAndSeeks) {
  KernelCalls k;
  auto fd = sys::memfdCreate("kernel-calls", MFD_CLOEXEC);
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(sys::ftruncate(fd->get(), 8192).ok());
  EXPECT_EQ(k.lseek(fd->get(), 0, SEEK_END).value(), 8192);
  EXPECT_EQ(k.fstat(fd->get()).value().size, 8192U);
  auto m = k.mmap(fd->get(), 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 4096);
  ASSERT_TRUE(m.ok());
  std::memset(m->data(), 7, 16);
  std::array<std::byte, 1> one{};
  ASSERT_EQ(::pread(fd->get(), one.data(), 1, 4096), 1);
  EXPECT_EQ(one[0], std::byte{7});
  EXPECT_EQ(k.mmap(fd->get(), 4096, PROT_READ, MAP_SHARED, 100).code(), EINVAL);
  EXPECT_EQ(k.lseek(fd->get(), -1, SEEK_SET).code(), EINVAL);
  EXPECT_TRUE(k.fdPath(fd->get()).value().starts_with("/memfd:kernel-calls"));
}

TEST(KernelCalls, ErrorsAreTheKernels) {
  KernelCalls k;
  // A path no node has: ENOENT, with the path in the message.
  auto missing = k.open("/dev/dma_heap/zbuf-no-such-heap", O_RDONLY);
  ASSERT_EQ(missing.code(), ENOENT);
  EXPECT_NE(missing.error().describe().find("/dev/dma_heap/zbuf-no-such-heap"), std::string::npos);
  EXPECT_EQ(k.open("/proc", O_WRONLY).code(), EISDIR);
  // An fd that is not open: EBADF from every call.
  constexpr int kClosed = 987;
  ASSERT_LT(::fcntl(kClosed, F_GETFD), 0);
  std::array<std::byte, 4> buf{};
  EXPECT_EQ(k.read(kClosed, buf).code(), EBADF);
  EXPECT_EQ(k.write(kClosed, buf).code(), EBADF);
  EXPECT_EQ(k.ioctl(kClosed, FIONREAD, buf.data()).code(), EBADF);
  EXPECT_EQ(k.lseek(kClosed, 0, SEEK_SET).code(), EBADF);
  EXPECT_EQ(k.fstat(kClosed).code(), EBADF);
  EXPECT_EQ(k.mmap(kClosed, 4096, PROT_READ, MAP_SHARED, 0).code(), EBADF);
  EXPECT_EQ(k.fdinfo(kClosed).code(), EBADF);
  EXPECT_EQ(k.fdPath(kClosed).code(), EBADF);
  EXPECT_EQ(k.close(kClosed).code(), EBADF);
  // poll(2) reports a closed fd as POLLNVAL.
  std::array<struct pollfd, 1> fds{{{kClosed, POLLIN, 0}}};
  EXPECT_EQ(k.poll(fds, 0).value(), 1);
  EXPECT_EQ(fds[0].revents, POLLNVAL);
}

TEST(KernelCalls, PollWaitsForTheKernel) {
  KernelCalls k;
  auto ends = sys::pipe();
  ASSERT_TRUE(ends.ok());
  std::array<struct pollfd, 1> fds{{{ends->first.get(), POLLIN, 0}}};
  EXPECT_EQ(k.poll(fds, 0).value(), 0);  // nothing yet
  std::thread writer([&] { (void)sys::write(ends->second.get(), bytes("x")); });
  EXPECT_EQ(k.poll(fds, -1).value(), 1);
  EXPECT_EQ(fds[0].revents, POLLIN);
  writer.join();
}

TEST(KernelCalls, OpenAddsCloseOnExec) {
  KernelCalls k;
  auto fd = k.open("/dev/null", O_RDWR);
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(sys::getFdFlags(fd->get()).value() & FD_CLOEXEC, FD_CLOEXEC);
}

}  // namespace
}  // namespace zbuf::uapi
