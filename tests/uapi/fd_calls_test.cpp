// ctest-labels: concurrency
// The fd-level calls (uapi/context.h) as the seam to the real system calls: an fd the context
// does not own goes to the real call (a pipe, an eventfd); a poll() mixes zbuf files with
// ordinary fds and wakes on each; the requests the VFS answers for every file (FIONBIO,
// FIOCLEX, FIONCLEX) work on zbuf files; a request number is the kernel's 32-bit cmd; an
// argument may have any alignment, and null is EFAULT.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <array>
#include <cstring>
#include <string>
#include <thread>

#include "uapi/uapi_helpers.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/linux_uapi.h"

namespace zbuf::uapi {
namespace {

using zbuf::testing::attachFence;
using zbuf::testing::installSystemBuffer;

std::span<const std::byte> bytes(const char* text) {
  return {reinterpret_cast<const std::byte*>(text), std::strlen(text)};
}

class FdCalls : public ::testing::Test {
 protected:
  ContextPtr ctx = Context::create();
  Context::Scope scope{*ctx};
};

// --- fall-through to the real system call -----------------------------------------------------

TEST_F(FdCalls, AForeignFdShowsTheKernelsFdinfo) {
  auto ends = sys::pipe();
  ASSERT_TRUE(ends.ok());
  const std::string info = ctx->fdinfo(ends->second.get()).value();
  // The kernel's text, with what only the kernel writes (the mount id).
  EXPECT_TRUE(info.starts_with("pos:\t0\nflags:\t")) << info;
  EXPECT_NE(info.find("mnt_id:"), std::string::npos) << info;
  // A zbuf file shows zbuf's, with the kind's lines.
  UniqueFd buffer = installSystemBuffer(*ctx, 4096);
  const std::string mine = ctx->fdinfo(buffer.get()).value();
  EXPECT_NE(mine.find("exp_name:\tsystem"), std::string::npos) << mine;
}

TEST_F(FdCalls, APipeGoesToTheRealCalls) {
  auto ends = sys::pipe();
  ASSERT_TRUE(ends.ok());
  const int r = ends->first.get();
  const int w = ends->second.get();
  EXPECT_EQ(ctx->lookup(r).value(), nullptr);  // not one of the context's files
  EXPECT_EQ(ctx->write(w, bytes("abc")).value(), 3U);
  std::array<struct pollfd, 1> fds{{{r, POLLIN, 0}}};
  EXPECT_EQ(ctx->poll(fds, 1000).value(), 1);
  EXPECT_EQ(fds[0].revents, POLLIN);
  int queued = 0;
  ASSERT_TRUE(ctx->ioctl(r, FIONREAD, &queued).ok());
  EXPECT_EQ(queued, 3);
  std::array<std::byte, 8> buf{};
  EXPECT_EQ(ctx->read(r, buf).value(), 3U);
  EXPECT_EQ(std::memcmp(buf.data(), "abc", 3), 0);
  EXPECT_EQ(ctx->lseek(r, 0, SEEK_SET).code(), ESPIPE);
  auto st = ctx->fstat(r);
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(S_ISFIFO(st->mode));
  EXPECT_EQ(ctx->fdPath(r).value().rfind("pipe:[", 0), 0U);
  EXPECT_EQ(ctx->ioctl(r, DMA_BUF_IOCTL_SYNC, &queued).code(), ENOTTY);  // the pipe's answer
  ASSERT_TRUE(ctx->close(ends->second.release()).ok());
  EXPECT_EQ(ctx->poll(fds, 0).value(), 1);
  EXPECT_EQ(fds[0].revents, POLLHUP);  // the writer is gone
  const int number = ends->first.release();
  ASSERT_TRUE(ctx->close(number).ok());
  EXPECT_EQ(ctx->close(number).code(), EBADF);
  EXPECT_EQ(ctx->read(number, buf).code(), EBADF);
}

TEST_F(FdCalls, AnEventfdGoesToTheRealCalls) {
  auto efd = sys::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_TRUE(efd.ok());
  const int fd = efd->get();
  std::array<struct pollfd, 1> fds{{{fd, POLLIN | POLLOUT, 0}}};
  EXPECT_EQ(ctx->poll(fds, 0).value(), 1);
  EXPECT_EQ(fds[0].revents, POLLOUT);
  const std::uint64_t five = 5;
  EXPECT_EQ(ctx->write(fd, std::as_bytes(std::span(&five, 1))).value(), 8U);
  EXPECT_EQ(ctx->poll(fds, 0).value(), 1);
  EXPECT_EQ(fds[0].revents, POLLIN | POLLOUT);
  std::uint64_t got = 0;
  EXPECT_EQ(ctx->read(fd, std::as_writable_bytes(std::span(&got, 1))).value(), 8U);
  EXPECT_EQ(got, 5U);
  EXPECT_EQ(ctx->read(fd, std::as_writable_bytes(std::span(&got, 1))).code(), EAGAIN);
  EXPECT_EQ(ctx->lseek(fd, 0, SEEK_SET).value(), 0);  // eventfd's noop_llseek
  EXPECT_TRUE(ctx->fstat(fd).ok());
  EXPECT_EQ(ctx->fdPath(fd).value(), "anon_inode:[eventfd]");
  ASSERT_TRUE(ctx->close(efd->release()).ok());
}

TEST_F(FdCalls, AnFdThatIsNotOpenIsEbadfEverywhere) {
  std::array<std::byte, 4> buf{};
  EXPECT_EQ(ctx->ioctl(-1, FIONBIO, nullptr).code(), EBADF);
  EXPECT_EQ(ctx->read(-1, buf).code(), EBADF);
  EXPECT_EQ(ctx->write(-1, buf).code(), EBADF);
  EXPECT_EQ(ctx->lseek(-1, 0, SEEK_SET).code(), EBADF);
  EXPECT_EQ(ctx->fstat(-1).code(), EBADF);
  EXPECT_EQ(ctx->fdinfo(-1).code(), EBADF);
  EXPECT_EQ(ctx->fdPath(-1).code(), EBADF);
  EXPECT_EQ(ctx->mmap(-1, 4096, PROT_READ, MAP_SHARED).code(), EBADF);
  // poll(2) reports a closed fd as POLLNVAL, and a negative one is ignored.
  // A number far above anything open (a just-closed number may be reused by another thread).
  const int closed = 4000;
  ASSERT_EQ(::fcntl(closed, F_GETFD), -1);
  std::array<struct pollfd, 2> fds{{{closed, POLLIN, 0}, {-1, POLLIN, 0}}};
  EXPECT_EQ(ctx->poll(fds, 0).value(), 1);
  EXPECT_EQ(fds[0].revents, POLLNVAL);
  EXPECT_EQ(fds[1].revents, 0);
}

// --- one poll over zbuf files and ordinary fds ------------------------------------------------

TEST_F(FdCalls, OnePollMixesASyncFileABufferAndAPipeAndEachWakesIt) {
  auto syncFence = Timeline::create("drv", "sync")->createFence();
  auto sync = ctx->installSyncFile(syncFence);
  ASSERT_TRUE(sync.ok());
  UniqueFd buffer = installSystemBuffer(*ctx);
  auto writer = attachFence(buffer.get(), ResvUsage::Write);  // POLLIN waits for it
  auto ends = sys::pipe();
  ASSERT_TRUE(ends.ok());
  std::array<struct pollfd, 3> fds{
      {{sync->get(), POLLIN, 0}, {buffer.get(), POLLIN, 0}, {ends->first.get(), POLLIN, 0}}};

  EXPECT_EQ(ctx->poll(fds, 0).value(), 0);
  EXPECT_EQ(ctx->poll(fds, 20).value(), 0);  // times out

  // 1: the sync file's fence, signalled from another thread.
  std::thread a([&] { syncFence->signal(); });
  EXPECT_EQ(ctx->poll(fds, 10'000).value(), 1);
  a.join();
  EXPECT_EQ(fds[0].revents, POLLIN);
  EXPECT_EQ(fds[1].revents, 0);
  EXPECT_EQ(fds[2].revents, 0);

  // 2: the buffer's writer fence (the sync file entry ignored from now on, fd -1, as poll(2)).
  fds[0].fd = -1;
  std::thread b([&] { writer->signal(); });
  EXPECT_EQ(ctx->poll(fds, 10'000).value(), 1);
  b.join();
  EXPECT_EQ(fds[1].revents, POLLIN);
  EXPECT_EQ(fds[2].revents, 0);

  // 3: a write to the pipe.
  fds[1].fd = -1;
  std::thread c([&] { EXPECT_TRUE(sys::write(ends->second.get(), bytes("x")).ok()); });
  EXPECT_EQ(ctx->poll(fds, 10'000).value(), 1);
  c.join();
  EXPECT_EQ(fds[2].revents, POLLIN);

  // All three ready together.
  fds[0].fd = sync->get();
  fds[1].fd = buffer.get();
  EXPECT_EQ(ctx->poll(fds, 0).value(), 3);
}

// --- requests every file has ------------------------------------------------------------------

void expectGenericIoctlsWork(Context& ctx, int fd) {
  int on = 1;
  ASSERT_TRUE(ctx.ioctl(fd, FIONBIO, &on).ok());
  EXPECT_NE(*sys::getFileFlags(fd) & O_NONBLOCK, 0);
  int off = 0;
  ASSERT_TRUE(ctx.ioctl(fd, FIONBIO, &off).ok());
  EXPECT_EQ(*sys::getFileFlags(fd) & O_NONBLOCK, 0);
  ASSERT_TRUE(ctx.ioctl(fd, FIONCLEX, nullptr).ok());
  EXPECT_EQ(*sys::getFdFlags(fd) & FD_CLOEXEC, 0);
  ASSERT_TRUE(ctx.ioctl(fd, FIOCLEX, nullptr).ok());
  EXPECT_EQ(*sys::getFdFlags(fd) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(ctx.ioctl(fd, FIONBIO, nullptr).code(), EFAULT);  // the kernel reads an int
}

TEST_F(FdCalls, FionbioFioclexAndFionclexWorkOnABufferFd) {
  UniqueFd buffer = installSystemBuffer(*ctx);
  expectGenericIoctlsWork(*ctx, buffer.get());
  // fdinfo shows the description's flags as the kernel does: O_RDWR | O_NONBLOCK | O_CLOEXEC.
  int on = 1;
  ASSERT_TRUE(ctx->ioctl(buffer.get(), FIONBIO, &on).ok());
  EXPECT_NE(ctx->fdinfo(buffer.get()).value().find("flags:\t02004002\n"), std::string::npos)
      << ctx->fdinfo(buffer.get()).value();
}

TEST_F(FdCalls, FionbioFioclexAndFionclexWorkOnASyncFileFd) {
  auto sync = ctx->installSyncFile(Fence::stub());
  ASSERT_TRUE(sync.ok());
  expectGenericIoctlsWork(*ctx, sync->get());
}

TEST_F(FdCalls, FionbioOnOneDescriptionLeavesTheOthersAlone) {
  UniqueFd a = installSystemBuffer(*ctx);
  auto b = ctx->installBuffer(ctx->bufferFromFd(a.get()).value());
  ASSERT_TRUE(b.ok());
  auto dupOfA = sys::dup(a.get());
  ASSERT_TRUE(dupOfA.ok());
  int on = 1;
  ASSERT_TRUE(ctx->ioctl(a.get(), FIONBIO, &on).ok());
  EXPECT_NE(*sys::getFileFlags(dupOfA->get()) & O_NONBLOCK, 0);  // same description
  EXPECT_EQ(*sys::getFileFlags(b->get()) & O_NONBLOCK, 0);       // another one
}

// --- request numbers and argument pointers ----------------------------------------------------

// What a C caller passes when it writes ioctl(fd, REQ, ...) with REQ an int: sign-extended to
// the unsigned long of the prototype. The kernel takes an unsigned int cmd.
unsigned long signExtended(unsigned long request) {
  return static_cast<unsigned long>(static_cast<long>(static_cast<int>(request)));
}

TEST_F(FdCalls, ARequestWithBitsAbove32IsTheSameIoctl) {
  ASSERT_NE(SYNC_IOC_FILE_INFO & 0x80000000UL, 0U);  // _IOWR: the sign bit of an int
  ASSERT_NE(signExtended(SYNC_IOC_FILE_INFO), static_cast<unsigned long>(SYNC_IOC_FILE_INFO));
  auto fence = Timeline::create("drv", "tl")->createFence();
  auto sync = ctx->installSyncFile(fence);
  ASSERT_TRUE(sync.ok());
  sync_file_info info{};
  ASSERT_TRUE(ctx->ioctl(sync->get(), signExtended(SYNC_IOC_FILE_INFO), &info).ok());
  EXPECT_EQ(info.num_fences, 1U);
  UniqueFd buffer = installSystemBuffer(*ctx);
  dma_buf_export_sync_file exp{DMA_BUF_SYNC_RW, -1};
  ASSERT_TRUE(ctx->ioctl(buffer.get(), signExtended(DMA_BUF_IOCTL_EXPORT_SYNC_FILE), &exp).ok());
  UniqueFd exported = UniqueFd::adopt(exp.fd);
  EXPECT_TRUE(ctx->syncFileFence(exported.get()).ok());
  // Any bits above 32 are dropped, as the kernel's unsigned int cmd drops them.
  dma_buf_sync s{DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ};
  EXPECT_TRUE(ctx->ioctl(buffer.get(), 0xabcd'0000'0000'0000UL | DMA_BUF_IOCTL_SYNC, &s).ok());
  EXPECT_EQ(ctx->ioctl(buffer.get(), 0xabcd'0000'0000'0000UL | 0x1234U, &s).code(), ENOTTY);
  fence->signal();
}

TEST_F(FdCalls, MisalignedArgumentsAreCopiedInAndOut) {
  alignas(16) std::array<std::byte, 256> raw{};
  UniqueFd buffer = installSystemBuffer(*ctx);

  // SYNC: copied in from an odd address.
  const dma_buf_sync s{DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW};
  std::memcpy(raw.data() + 1, &s, sizeof s);
  EXPECT_TRUE(ctx->ioctl(buffer.get(), DMA_BUF_IOCTL_SYNC, raw.data() + 1).ok());

  // EXPORT_SYNC_FILE: copied in and the fd copied out.
  dma_buf_export_sync_file exp{DMA_BUF_SYNC_READ, -1};
  std::memcpy(raw.data() + 3, &exp, sizeof exp);
  ASSERT_TRUE(ctx->ioctl(buffer.get(), DMA_BUF_IOCTL_EXPORT_SYNC_FILE, raw.data() + 3).ok());
  std::memcpy(&exp, raw.data() + 3, sizeof exp);
  UniqueFd sync = UniqueFd::adopt(exp.fd);
  ASSERT_TRUE(ctx->syncFileFence(sync.get()).ok());

  // FILE_INFO: the whole struct copied out to an odd address.
  sync_file_info info{};
  std::memcpy(raw.data() + 5, &info, sizeof info);
  ASSERT_TRUE(ctx->ioctl(sync.get(), SYNC_IOC_FILE_INFO, raw.data() + 5).ok());
  std::memcpy(&info, raw.data() + 5, sizeof info);
  EXPECT_EQ(info.num_fences, 1U);
  EXPECT_EQ(info.status, 1);

  // SET_NAME: the name itself at an odd address.
  std::memcpy(raw.data() + 7, "odd", 4);
  ASSERT_TRUE(ctx->ioctl(buffer.get(), DMA_BUF_SET_NAME, raw.data() + 7).ok());
  EXPECT_EQ(ctx->fdPath(buffer.get()).value(), "/dmabuf:odd");

  // DMA_HEAP_IOCTL_ALLOC: in and out.
  auto heap = ctx->open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(heap.ok());
  dma_heap_allocation_data alloc{};
  alloc.len = 4096;
  alloc.fd_flags = O_RDWR | O_CLOEXEC;
  std::memcpy(raw.data() + 9, &alloc, sizeof alloc);
  ASSERT_TRUE(ctx->ioctl(heap->get(), DMA_HEAP_IOCTL_ALLOC, raw.data() + 9).ok());
  std::memcpy(&alloc, raw.data() + 9, sizeof alloc);
  UniqueFd allocated = UniqueFd::adopt(static_cast<int>(alloc.fd));
  EXPECT_TRUE(ctx->bufferFromFd(allocated.get()).ok());
}

TEST_F(FdCalls, ANullArgumentIsEfault) {
  UniqueFd buffer = installSystemBuffer(*ctx);
  auto sync = ctx->installSyncFile(Fence::stub());
  ASSERT_TRUE(sync.ok());
  auto heap = ctx->open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(heap.ok());
  auto udmabuf = ctx->open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
  ASSERT_TRUE(udmabuf.ok());
  for (unsigned long request : {DMA_BUF_IOCTL_SYNC, DMA_BUF_SET_NAME,
                                DMA_BUF_IOCTL_EXPORT_SYNC_FILE, DMA_BUF_IOCTL_IMPORT_SYNC_FILE}) {
    EXPECT_EQ(ctx->ioctl(buffer.get(), request, nullptr).code(), EFAULT) << request;
  }
  for (unsigned long request : {SYNC_IOC_MERGE, SYNC_IOC_FILE_INFO}) {
    EXPECT_EQ(ctx->ioctl(sync->get(), request, nullptr).code(), EFAULT) << request;
  }
  EXPECT_EQ(ctx->ioctl(heap->get(), DMA_HEAP_IOCTL_ALLOC, nullptr).code(), EFAULT);
  EXPECT_EQ(ctx->ioctl(udmabuf->get(), UDMABUF_CREATE, nullptr).code(), EFAULT);
}

}  // namespace
}  // namespace zbuf::uapi
