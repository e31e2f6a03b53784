// ctest-labels: concurrency
// The free fd-level calls (uapi/calls.h): each of open, ioctl, read, write, poll, mmap, lseek,
// fstat and both closes goes to the calling thread's current context (Context::current(): the
// innermost Scope, else the embedded context), so the same fd means a zbuf file inside a scope
// and, to a context that does not own it, what the fd really is (a memfd: the real calls).
#include "zbuf/uapi/calls.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>

#include <array>
#include <cstring>
#include <thread>

#include "uapi/uapi_helpers.h"
#include "zbuf/core/fence.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/linux_uapi.h"

namespace zbuf::uapi {
namespace {

using zbuf::testing::installSystemBuffer;

TEST(Calls, TheFreeFunctionsUseTheCurrentContext) {
  auto a = Context::create();
  UniqueFd buffer = installSystemBuffer(*a);
  // Through the embedded context the buffer fd is a memfd (read(2) of a memfd works).
  std::array<std::byte, 4> buf{};
  EXPECT_TRUE(uapi::read(buffer.get(), buf).ok());
  const Context::Scope sa(*a);
  EXPECT_EQ(uapi::read(buffer.get(), buf).code(), EINVAL);  // a's buffer file
}

TEST(Calls, OpenAndIoctlAllocateInTheScopedContext) {
  auto a = Context::create();
  const Context::Scope sa(*a);
  auto heap = uapi::open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(heap.ok()) << heap.error().describe();
  EXPECT_NE(a->lookup(heap->get()).value(), nullptr);
  EXPECT_EQ(Context::embedded().lookup(heap->get()).value(), nullptr);
  dma_heap_allocation_data data{};
  data.len = 8192;
  data.fd_flags = O_RDWR | O_CLOEXEC;
  ASSERT_TRUE(uapi::ioctl(heap->get(), DMA_HEAP_IOCTL_ALLOC, &data).ok());
  const UniqueFd buffer = UniqueFd::adopt(static_cast<int>(data.fd));
  auto file = a->lookup(buffer.get());
  ASSERT_TRUE(file.ok() && *file);
  EXPECT_TRUE((*file)->is(dmaBufFileOperations()));
  EXPECT_EQ(uapi::fstat(buffer.get()).value().size, 8192U);
  EXPECT_EQ(uapi::open("/dev/dma_heap/cma", O_RDONLY).code(), ENOENT);
}

TEST(Calls, ReadWriteAndLseekAreTheDmaBufsInsideTheScopeAndTheMemfdsOutside) {
  auto a = Context::create();
  UniqueFd buffer = installSystemBuffer(*a);
  const std::array<std::byte, 4> in{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
  {
    const Context::Scope sa(*a);
    // dma_buf_fops has no read or write; its llseek knows SEEK_END (the size) and SEEK_SET 0.
    EXPECT_EQ(uapi::write(buffer.get(), in).code(), EINVAL);
    EXPECT_EQ(uapi::lseek(buffer.get(), 0, SEEK_END).value(), 4096);
    EXPECT_EQ(uapi::lseek(buffer.get(), 100, SEEK_SET).code(), EINVAL);
  }
  // Outside the scope, the embedded context does not own the fd: the memfd's own calls.
  EXPECT_EQ(uapi::lseek(buffer.get(), 100, SEEK_SET).value(), 100);
  EXPECT_EQ(uapi::write(buffer.get(), in).value(), in.size());
  std::array<std::byte, 4> out{};
  EXPECT_EQ(uapi::lseek(buffer.get(), 100, SEEK_SET).value(), 100);
  EXPECT_EQ(uapi::read(buffer.get(), out).value(), out.size());
  EXPECT_EQ(out, in);
  // What the memfd wrote is the buffer's memory, as a mapping through the scope shows.
  const Context::Scope sa(*a);
  auto map = uapi::mmap(buffer.get(), 4096, PROT_READ, MAP_SHARED);
  ASSERT_TRUE(map.ok()) << map.error().describe();
  EXPECT_EQ(std::memcmp(map->bytes().data() + 100, in.data(), in.size()), 0);
}

TEST(Calls, PollWaitsOnTheScopedContextsSyncFile) {
  auto a = Context::create();
  const Context::Scope sa(*a);
  auto fence = Timeline::create("calls", "calls-test")->createFence();
  auto sync = a->installSyncFile(fence);
  ASSERT_TRUE(sync.ok());
  std::array<struct pollfd, 1> fds{{{sync->get(), POLLIN, 0}}};
  EXPECT_EQ(uapi::poll(fds, 0).value(), 0);
  std::thread signaller([&] { fence->signal(); });
  EXPECT_EQ(uapi::poll(fds, 20000).value(), 1);  // the signal wakes it
  signaller.join();
  EXPECT_EQ(fds[0].revents, POLLIN);
}

TEST(Calls, BothClosesReleaseTheScopedContextsFile) {
  auto a = Context::create();
  const Context::Scope sa(*a);
  UniqueFd first = installSystemBuffer(*a);
  UniqueFd second = installSystemBuffer(*a);
  ASSERT_EQ(a->files().size(), 2U);
  ASSERT_TRUE(uapi::close(std::move(first)).ok());
  EXPECT_EQ(a->files().size(), 1U);
  const int raw = second.release();
  ASSERT_TRUE(uapi::close(raw).ok());
  EXPECT_EQ(a->files().size(), 0U);
  EXPECT_EQ(uapi::close(raw).code(), EBADF);
}

}  // namespace
}  // namespace zbuf::uapi
