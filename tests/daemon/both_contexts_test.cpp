// One suite, two kernels: each scenario runs on the embedded Context and, through zbufd's
// protocol, on a RemoteContext served by a daemon started in this process on a temporary socket
// (the same Context behind it), and must give the same results errno for errno.
// ctest-labels: concurrency
#include "support/both_contexts.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/wait_until.h"
#include "zbuf/base/sys.h"
#include "zbuf/daemon/server.h"
#include "zbuf/devices/board.h"
#include "zbuf/devices/iio/iio_device.h"
#include "zbuf/devices/iio/iio_uapi.h"
#include "zbuf/devices/pattern.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"

namespace zbuf {
namespace {

using testing_support::BothContexts;

TEST_P(BothContexts, AHeapBufferIsMappedSyncedNamedAndSeeked) {
  constexpr std::uint64_t kSize = 64ULL * 1024;
  UniqueFd buf = allocate(kSize);
  ASSERT_TRUE(buf.isValid());
  EXPECT_TRUE((sys::getFdFlags(buf.get()).value() & FD_CLOEXEC) != 0);
  auto map = calls->mmap(buf.get(), kSize, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
  ASSERT_TRUE(map.ok()) << map.error().describe();
  uapi::DmaBufSync start{uapi::kDmaBufSyncStart | uapi::kDmaBufSyncWrite};
  uapi::DmaBufSync end{uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncWrite};
  ASSERT_TRUE(calls->ioctl(buf.get(), uapi::kDmaBufIoctlSync, &start).ok());
  std::memset(map->bytes().data(), 0x5a, kSize);
  ASSERT_TRUE(calls->ioctl(buf.get(), uapi::kDmaBufIoctlSync, &end).ok());
  // The daemon's buffer is the same memory.
  BufferPtr b = ctx->bufferFromFd(buf.get()).value();
  EXPECT_EQ(b->size(), kSize);
  EXPECT_EQ(calls->fstat(buf.get()).value().size, kSize);
  EXPECT_EQ(calls->lseek(buf.get(), 0, SEEK_END).value(), static_cast<std::int64_t>(kSize));
  EXPECT_EQ(calls->lseek(buf.get(), 1, SEEK_SET).code(), EINVAL);
  std::string name = "frame-7";
  ASSERT_TRUE(calls->ioctl(buf.get(), uapi::kDmaBufSetNameB, name.data()).ok());
  EXPECT_EQ(calls->fdPath(buf.get()).value(), "/dmabuf:frame-7");
  const std::string info = calls->fdinfo(buf.get()).value();
  EXPECT_NE(info.find("name:\tframe-7"), std::string::npos) << info;
  EXPECT_NE(info.find("flags:\t02000002"), std::string::npos) << info;  // O_RDWR | O_CLOEXEC
  // A name of 33 bytes is EINVAL (DMA_BUF_NAME_LEN counts the NUL).
  std::string tooLong = "0123456789abcdef0123456789abcdefX";
  EXPECT_EQ(calls->ioctl(buf.get(), uapi::kDmaBufSetNameB, tooLong.data()).code(), EINVAL);
  EXPECT_EQ(calls->ioctl(buf.get(), uapi::kDmaBufSetNameB, nullptr).code(), EFAULT);
  // The system heap maps privately too (copy-on-write), as Debian's 6.12 does (the kernel lane).
  auto priv = calls->mmap(buf.get(), kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE, 0);
  ASSERT_TRUE(priv.ok()) << priv.error().describe();
  auto shared = calls->mmap(buf.get(), kSize, PROT_READ, MAP_SHARED, 0);
  ASSERT_TRUE(shared.ok());
  const std::byte before = shared->data()[0];
  priv->data()[0] = ~before;
  EXPECT_EQ(shared->data()[0], before);
}

TEST_P(BothContexts, TheErrnosOfBadCalls) {
  UniqueFd buf = allocate(4096);
  const int closed = closedFd();
  uapi::DmaBufSync sync{uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRead};
  EXPECT_EQ(calls->ioctl(closed, uapi::kDmaBufIoctlSync, &sync).code(), EBADF);
  EXPECT_EQ(calls->ioctl(-1, uapi::kDmaBufIoctlSync, &sync).code(), EBADF);
  uapi::DmaBufSync bad{0x80};
  EXPECT_EQ(calls->ioctl(buf.get(), uapi::kDmaBufIoctlSync, &bad).code(), EINVAL);
  EXPECT_EQ(calls->ioctl(buf.get(), uapi::kDmaBufIoctlSync, nullptr).code(), EFAULT);
  EXPECT_EQ(calls->ioctl(buf.get(), _IOW('b', 0x42, int), &sync).code(), ENOTTY);
  EXPECT_EQ(calls->open("/dev/nothing-here", O_RDWR).code(), ENOENT);
  UniqueFd heap = open("/dev/dma_heap/system", O_RDONLY);
  uapi::DmaHeapAllocationData data{};
  data.len = 4096;
  data.fd = 3;  // must be 0 on input
  data.fdFlags = O_RDWR | O_CLOEXEC;
  EXPECT_EQ(calls->ioctl(heap.get(), uapi::kDmaHeapIoctlAlloc, &data).code(), EINVAL);
  data.fd = 0;
  data.len = 0;
  EXPECT_EQ(calls->ioctl(heap.get(), uapi::kDmaHeapIoctlAlloc, &data).code(), EINVAL);
  // IMPORT_SYNC_FILE with an fd that is not a sync file.
  uapi::DmaBufImportSyncFile imp{uapi::kDmaBufSyncWrite, heap.get()};
  EXPECT_EQ(calls->ioctl(buf.get(), uapi::kDmaBufIoctlImportSyncFile, &imp).code(), EINVAL);
  imp.fd = closed;
  EXPECT_EQ(calls->ioctl(buf.get(), uapi::kDmaBufIoctlImportSyncFile, &imp).code(), EINVAL);
  EXPECT_EQ(calls->close(closedFd()).code(), EBADF);
  // A pipe is not zbuf's: its calls are the real system calls.
  auto p = sys::pipe();
  ASSERT_TRUE(p.ok());
  const std::array<std::byte, 3> three{};
  ASSERT_EQ(::write(p->second.get(), three.data(), three.size()), 3);
  int queued = 0;
  EXPECT_EQ(calls->ioctl(p->first.get(), FIONREAD, &queued).value(), 0);
  EXPECT_EQ(queued, 3);
}

TEST_P(BothContexts, SyncFilesExportMergeAndReportTheirFences) {
  UniqueFd a = allocate(4096);
  UniqueFd b = allocate(4096);
  UniqueFd fa = exportSyncFile(a.get(), uapi::kDmaBufSyncRead);
  UniqueFd fb = exportSyncFile(b.get(), uapi::kDmaBufSyncWrite);
  ASSERT_TRUE(fa.isValid() && fb.isValid());
  EXPECT_EQ(calls->fdPath(fa.get()).value(), "anon_inode:sync_file");
  uapi::SyncMergeData merge{};
  std::strncpy(merge.name, "both", sizeof merge.name);
  merge.fd2 = fb.get();
  ASSERT_TRUE(calls->ioctl(fa.get(), uapi::kSyncIocMerge, &merge).ok());
  UniqueFd merged = UniqueFd::adopt(merge.fence);
  EXPECT_EQ(merge.fd2, fb.get());  // the caller's fields are the caller's own again
  std::array<struct pollfd, 2> p{{{merged.get(), POLLIN, 0}, {fa.get(), POLLIN, 0}}};
  EXPECT_EQ(calls->poll(p, 1000).value(), 2);
  EXPECT_EQ(p[0].revents, POLLIN);
  uapi::SyncFileInfo info{};
  ASSERT_TRUE(calls->ioctl(merged.get(), uapi::kSyncIocFileInfo, &info).ok());
  EXPECT_STREQ(info.name, "both");
  EXPECT_EQ(info.status, 1);
  const std::uint32_t count = info.numFences;
  std::vector<uapi::SyncFenceInfo> fences(count + 2);
  info.numFences = static_cast<std::uint32_t>(fences.size());
  info.syncFenceInfo = reinterpret_cast<std::uintptr_t>(fences.data());
  ASSERT_TRUE(calls->ioctl(merged.get(), uapi::kSyncIocFileInfo, &info).ok());
  EXPECT_EQ(info.numFences, count);
  EXPECT_EQ(info.syncFenceInfo, reinterpret_cast<std::uintptr_t>(fences.data()));
  for (std::uint32_t i = 0; i < count; ++i) {
    EXPECT_EQ(fences[i].status, 1);
  }
  // Too small an array is EINVAL when the sync file has fences to report.
  if (count > 1) {  // (signalled fences may have been merged away into one)
    info.numFences = count - 1;
    EXPECT_EQ(calls->ioctl(merged.get(), uapi::kSyncIocFileInfo, &info).code(), EINVAL);
  }
  merge.fd2 = -1;  // sync_file_merge: no sync file behind fd2 is ENOENT
  EXPECT_EQ(calls->ioctl(fa.get(), uapi::kSyncIocMerge, &merge).code(), ENOENT);
  // A sync file imported into a buffer: its fence is the buffer's now.
  uapi::DmaBufImportSyncFile imp{uapi::kDmaBufSyncWrite, fa.get()};
  EXPECT_TRUE(calls->ioctl(b.get(), uapi::kDmaBufIoctlImportSyncFile, &imp).ok());
  // poll with a closed fd reports POLLNVAL at once.
  std::array<struct pollfd, 2> q{{{closedFd(), POLLIN, 0}, {a.get(), POLLOUT, 0}}};
  EXPECT_EQ(calls->poll(q, -1).value(), 2);
  EXPECT_EQ(q[0].revents, POLLNVAL);
  EXPECT_EQ(q[1].revents, POLLOUT);
}

// The libiio local-dmabuf flow through the fd-level calls: the ADC fills the client's buffers,
// the client checks every byte through its own mapping, and closing releases it all.
TEST_P(BothContexts, TheAdcStreamsIntoBuffersTheClientMaps) {
  UniqueFd dev = open(Board::kAdcPath);
  int bufferFd = 0;
  ASSERT_TRUE(calls->ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &bufferFd).ok());
  UniqueFd ring = UniqueFd::adopt(bufferFd);
  EXPECT_EQ(calls->fdPath(ring.get()).value(), "anon_inode:iio:buffer");
  int index = 0;
  EXPECT_EQ(calls->ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &index).code(), EBUSY);
  index = 1;  // the ADC has one buffer
  EXPECT_EQ(calls->ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &index).code(), ENODEV);
  constexpr std::uint64_t kSize = 16ULL * 1024;
  std::vector<UniqueFd> blocks;
  std::vector<sys::Mapping> maps;
  for (int i = 0; i < 3; ++i) {
    blocks.push_back(allocate(kSize));
    maps.push_back(
        std::move(calls->mmap(blocks.back().get(), kSize, PROT_READ, MAP_SHARED, 0).value()));
    int dmabuf = blocks.back().get();
    ASSERT_TRUE(calls->ioctl(ring.get(), IIO_BUFFER_DMABUF_ATTACH_IOCTL, &dmabuf).ok());
  }
  ASSERT_EQ(writeAttr(std::string(Board::kAdcSysfs) + "/buffer0/enable", "1\n"), 0);
  PatternChecker checker(board->adc().format(), board->config().pattern);
  std::uint64_t offset = 0;
  uapi::DmaBufSync start{uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRead};
  uapi::DmaBufSync end{uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRead};
  for (int round = 0; round < 2; ++round) {
    for (auto& b : blocks) {
      iio_dmabuf req{static_cast<std::uint32_t>(b.get()), 0, kSize};
      auto r = calls->ioctl(ring.get(), IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req);
      ASSERT_TRUE(r.ok()) << r.error().describe();
    }
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      std::array<struct pollfd, 1> p{{{blocks[i].get(), POLLIN, 0}}};
      ASSERT_EQ(calls->poll(p, 5000).value(), 1);
      ASSERT_TRUE(calls->ioctl(blocks[i].get(), uapi::kDmaBufIoctlSync, &start).ok());
      EXPECT_EQ(checker.countMismatches(maps[i].bytes(), offset), 0U);
      ASSERT_TRUE(calls->ioctl(blocks[i].get(), uapi::kDmaBufIoctlSync, &end).ok());
      offset += kSize;
    }
  }
  iio_dmabuf bad{static_cast<std::uint32_t>(blocks[0].get()), 0x10, kSize};
  EXPECT_EQ(calls->ioctl(ring.get(), IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &bad).code(), EINVAL);
  int dmabuf = blocks[0].get();
  ASSERT_TRUE(calls->ioctl(ring.get(), IIO_BUFFER_DMABUF_DETACH_IOCTL, &dmabuf).ok());
  EXPECT_EQ(calls->ioctl(ring.get(), IIO_BUFFER_DMABUF_DETACH_IOCTL, &dmabuf).code(), EPERM);
  std::weak_ptr<Buffer> last = ctx->bufferFromFd(blocks[1].get()).value();
  ASSERT_TRUE(calls->close(ring.release()).ok());  // detaches the other two
  EXPECT_EQ(last.lock()->attachments().size(), 0U);
  maps.clear();
  ASSERT_TRUE(calls->close(blocks[1].release()).ok());
  EXPECT_TRUE(last.expired());  // released by the close, before it returned
}

TEST_P(BothContexts, AClosedDescriptionIsReleasedWhicheverWayItCloses) {
  UniqueFd a = allocate(4096);
  std::weak_ptr<Buffer> wa = ctx->bufferFromFd(a.get()).value();
  ASSERT_TRUE(calls->close(std::move(a)).ok());
  EXPECT_TRUE(wa.expired());
  UniqueFd b = allocate(4096);
  std::weak_ptr<Buffer> wb = ctx->bufferFromFd(b.get()).value();
  b.reset();  // close(2) behind the calls' back: the daemon's (or the context's) reaper sees it
  EXPECT_TRUE(testing_support::waitUntil([&] { return wb.expired(); }));
}

// A mapping holds its file as a vma holds the struct file: a buffer whose last fd is closed lives
// while it is mapped, in the client as in the embedded process, and goes with the unmap.
TEST_P(BothContexts, AMappingKeepsItsBufferAfterTheLastFdCloses) {
  constexpr std::size_t kSize = 8192;
  UniqueFd a = allocate(kSize);
  std::weak_ptr<Buffer> wa = ctx->bufferFromFd(a.get()).value();
  auto map = calls->mmap(a.get(), kSize, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
  ASSERT_TRUE(map.ok()) << map.error().describe();
  ASSERT_TRUE(calls->close(std::move(a)).ok());
  ASSERT_FALSE(wa.expired());
  std::memset(map->data(), 0x3c, kSize);
  {
    BufferPtr b = wa.lock();
    ASSERT_NE(b, nullptr);
    auto other = sys::mmap(kSize, PROT_READ, MAP_SHARED, b->fd().get(), 0);
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(std::to_integer<int>(other->data()[kSize - 1]), 0x3c);  // the buffer's memory
  }
  ASSERT_TRUE(calls->close(open("/dev/dma_heap/system", O_RDONLY)).ok());
  EXPECT_FALSE(wa.expired());  // a close and its reap in between: the mapping still holds it
  *map = sys::Mapping();       // munmap: the last reference goes
  EXPECT_TRUE(testing_support::waitUntil([&] { return wa.expired(); }));
}

ZBUF_BOTH_CONTEXTS(BothContexts);

}  // namespace
}  // namespace zbuf
