#include "zbuf/base/sys.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <cstring>
#include <thread>
#include <vector>

namespace zbuf {
namespace {

TEST(Sys, ErrorsCarryErrnoAndSyscallName) {
  auto r = sys::fstat(-1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), EBADF);
  EXPECT_STREQ(r.error().op(), "fstat");
}

TEST(Sys, MemfdSealsAndMapping) {
  auto fd = sys::memfdCreate("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(sys::ftruncate(fd->get(), 8192).ok());
  ASSERT_TRUE(sys::addSeals(fd->get(), F_SEAL_SHRINK).ok());
  EXPECT_EQ(*sys::getSeals(fd->get()) & F_SEAL_SHRINK, F_SEAL_SHRINK);
  EXPECT_EQ(sys::ftruncate(fd->get(), 4096).code(), EPERM);
  auto map = sys::mmap(8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd->get(), 0);
  ASSERT_TRUE(map.ok());
  std::memset(map->data(), 0x5a, map->size());
  EXPECT_EQ(static_cast<int>(map->bytes()[8191]), 0x5a);
  EXPECT_EQ(sys::fstat(fd->get())->size, 8192U);
}

TEST(Sys, FutexWaitTimesOutAndWakes) {
  std::atomic<std::uint32_t> word{0};
  EXPECT_EQ(sys::futexWait(word, 0, std::chrono::milliseconds(1)).code(), ETIMEDOUT);
  EXPECT_EQ(sys::futexWait(word, 1, std::chrono::milliseconds(1)).code(), EAGAIN);
  std::thread t([&] {
    word.store(1);
    sys::futexWake(word, 1);
  });
  while (word.load() == 0) {
    (void)sys::futexWait(word, 0, std::chrono::milliseconds(100));
  }
  t.join();
  EXPECT_EQ(word.load(), 1U);
}

TEST(Sys, FdsCrossASocket) {
  auto pair = sys::socketpair(SOCK_SEQPACKET);
  ASSERT_TRUE(pair.ok());
  auto ev = sys::eventfd(0, 0);
  ASSERT_TRUE(ev.ok());
  ASSERT_TRUE(sys::eventfdWrite(ev->get(), 7).ok());
  const char msg[] = "fd";
  const int fds[] = {ev->get()};
  ASSERT_TRUE(sys::sendWithFds(pair->first.get(), std::as_bytes(std::span(msg)), fds).ok());
  std::byte buf[8];
  auto got = sys::recvWithFds(pair->second.get(), buf, 4);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->fds.size(), 1U);
  EXPECT_EQ(*sys::eventfdRead(got->fds[0].get()), 7U);
}

// A write that moved some bytes and then finds the reader gone returns the short count, and the
// kernel raises SIGPIPE all the same (pipe_write): writeNoSigpipe consumes that one too, or
// the process would die of it. The reader leaves once the pipe is full (the writer blocked or
// about to block on it).
TEST(Sys, WriteNoSigpipeSurvivesAReaderLeavingMidWrite) {
  auto p = sys::pipe();
  ASSERT_TRUE(p.ok()) << p.error().describe();
  UniqueFd rd = std::move(p->first);
  const UniqueFd wr = std::move(p->second);
  const int capacity = ::fcntl(wr.get(), F_GETPIPE_SZ);
  ASSERT_GT(capacity, 0);
  std::thread reader([&rd, capacity] {
    int queued = 0;
    while (::ioctl(rd.get(), FIONREAD, &queued) == 0 && queued < capacity) {
      std::this_thread::yield();
    }
    rd.reset();
  });
  const std::vector<std::byte> data(static_cast<std::size_t>(capacity) * 4);
  const auto n = sys::writeNoSigpipe(wr.get(), data);
  reader.join();
  ASSERT_TRUE(n.ok()) << n.error().describe();
  EXPECT_EQ(*n, static_cast<std::size_t>(capacity)) << "the short count";
  EXPECT_EQ(sys::writeNoSigpipe(wr.get(), data).code(), EPIPE) << "then EPIPE";
}

}  // namespace
}  // namespace zbuf
