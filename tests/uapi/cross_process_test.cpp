// A buffer fd and a sync-file fd cross a process boundary over a Unix socket (SCM_RIGHTS):
// the child polls the sync file until the parent's fence signals, then maps the buffer and
// checks the bytes the parent wrote, and exits by itself with a status the parent checks.
// Every wait is bounded.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <thread>

#include "support/thread_state.h"
#include "uapi/uapi_helpers.h"
#include "zbuf/core/sync_file.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kSize = 64 * 1024;

enum ChildStatus : int {
  kChildOk = 0,
  kNoFds = 10,
  kSyncFileNotReadable = 11,
  kSignalledTooEarly = 12,
  kMapFailed = 13,
  kWrongData = 14,
  kGotPollout = 15,
};

std::byte pattern(std::size_t i) {
  return static_cast<std::byte>((i * 31 + 7) & 0xff);
}

// The child: only async-signal-safe-enough work (no threads are started here), then _exit.
[[noreturn]] void child(int socket) {
  std::array<std::byte, 8> message{};
  auto received = sys::recvWithFds(socket, message, 2);
  if (!received.ok() || received->fds.size() != 2) {
    ::_exit(kNoFds);
  }
  const int bufferFd = received->fds[0].get();
  const int syncFd = received->fds[1].get();
  // Not signalled yet: the parent waits for our "ready" byte before signalling.
  auto early = sys::pollOne(syncFd, POLLIN, 0ms);
  if (!early.ok() || *early != 0) {
    ::_exit(kSignalledTooEarly);
  }
  const std::byte ready{1};
  (void)sys::write(socket, {&ready, 1});
  auto revents = sys::pollOne(syncFd, POLLIN | POLLOUT, 10'000ms);
  if (!revents.ok() || (*revents & POLLIN) == 0) {
    ::_exit(kSyncFileNotReadable);
  }
  if ((*revents & POLLOUT) != 0) {
    ::_exit(kGotPollout);
  }
  // The buffer fd is the system heap's memfd: a plain shared mapping sees the parent's bytes.
  auto map = sys::mmap(kSize, PROT_READ, MAP_SHARED, bufferFd, 0);
  if (!map.ok()) {
    ::_exit(kMapFailed);
  }
  for (std::size_t i = 0; i < kSize; ++i) {
    if (map->data()[i] != pattern(i)) {
      ::_exit(kWrongData);
    }
  }
  ::_exit(kChildOk);
}

TEST(UapiCrossProcess, ChildPollsSyncFileThenReadsTheParentsData) {
  UniqueFd buffer = testing::allocateBuffer(kSize);
  ASSERT_TRUE(buffer.isValid());
  auto writer = Timeline::create("parent", "cpu-write")->createFence();
  auto syncFile = uapi::Context::current().installSyncFile(writer);
  ASSERT_TRUE(syncFile.ok());
  auto sockets = sys::socketpair(SOCK_STREAM);
  ASSERT_TRUE(sockets.ok());

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    sockets->first.reset();
    child(sockets->second.get());
  }
  sockets->second.reset();
  const int socket = sockets->first.get();

  const int fds[] = {buffer.get(), syncFile->get()};
  const std::byte hello[] = {std::byte{'z'}};
  ASSERT_TRUE(sys::sendWithFds(socket, hello, fds).ok());

  // Wait (bounded) for the child to be polling, then write the data and signal the fence.
  auto ready = sys::pollOne(socket, POLLIN, 10'000ms);
  ASSERT_TRUE(ready.ok() && (*ready & POLLIN) != 0);
  std::byte ack{};
  ASSERT_TRUE(sys::read(socket, {&ack, 1}).ok());
  {
    auto cpu = uapi::syncScope(buffer.get(), uapi::kDmaBufSyncWrite);
    ASSERT_TRUE(cpu.ok());
    auto map = uapi::mmap(buffer.get(), kSize, PROT_READ | PROT_WRITE, MAP_SHARED);
    ASSERT_TRUE(map.ok());
    for (std::size_t i = 0; i < kSize; ++i) {
      map->data()[i] = pattern(i);
    }
  }
  // The signal wakes the child asleep in poll (bounded: signalled anyway if it never sleeps).
  (void)testing_support::waitUntilAsleep(pid);
  writer->signal();

  // Reap the child within a bounded time; it exits by itself.
  int status = 0;
  pid_t reaped = 0;
  if (!testing::waitUntil([&] { return (reaped = ::waitpid(pid, &status, WNOHANG)) != 0; })) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "the child did not exit within 10 s";
  }
  ASSERT_EQ(reaped, pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died by a signal: " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), kChildOk);
}

}  // namespace
}  // namespace zbuf
