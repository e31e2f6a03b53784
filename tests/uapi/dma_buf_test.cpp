// ctest-labels: concurrency
// The dma-buf uAPI on a buffer fd: behaviour and every errno (reference sections 1 and 12).
#include "zbuf/uapi/dma_buf.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/dma-buf.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "support/thread_state.h"
#include "uapi/uapi_helpers.h"
#include "zbuf/core/sync_file.h"
#include "zbuf/uapi/calls.h"
#include "zbuf/uapi/sync_file.h"
#include "zbuf/uapi/udmabuf.h"

namespace zbuf::uapi {
namespace {

using namespace std::chrono_literals;
using testing::allocateBuffer;
using testing::attachFence;
using testing_support::ThreadMark;

long syncIoctl(int fd, std::uint64_t flags) {
  dma_buf_sync s{flags};
  auto r = ioctl(fd, DMA_BUF_IOCTL_SYNC, &s);
  return r.ok() ? 0 : -r.code();
}

// --- SYNC -------------------------------------------------------------------------------------

TEST(UapiDmaBufSync, ValidFlagCombinationsSucceed) {
  UniqueFd fd = allocateBuffer();
  for (std::uint64_t rw : {DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW}) {
    EXPECT_EQ(syncIoctl(fd.get(), DMA_BUF_SYNC_START | rw), 0);
    EXPECT_EQ(syncIoctl(fd.get(), DMA_BUF_SYNC_END | rw), 0);
  }
}

TEST(UapiDmaBufSync, BitsOutsideTheMaskAreEinval) {
  UniqueFd fd = allocateBuffer();
  EXPECT_EQ(syncIoctl(fd.get(), DMA_BUF_SYNC_RW | 8), -EINVAL);
  EXPECT_EQ(syncIoctl(fd.get(), DMA_BUF_SYNC_READ | (1ULL << 63)), -EINVAL);
}

TEST(UapiDmaBufSync, NeitherReadNorWriteIsEinval) {
  UniqueFd fd = allocateBuffer();
  EXPECT_EQ(syncIoctl(fd.get(), DMA_BUF_SYNC_START), -EINVAL);
  EXPECT_EQ(syncIoctl(fd.get(), DMA_BUF_SYNC_END), -EINVAL);
}

TEST(UapiDmaBufSync, NoBracketStateIsKept) {
  UniqueFd fd = allocateBuffer();
  EXPECT_EQ(syncIoctl(fd.get(), DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ), 0);
  EXPECT_EQ(syncIoctl(fd.get(), DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ), 0);
  EXPECT_EQ(syncIoctl(fd.get(), DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ), 0);
  EXPECT_EQ(syncIoctl(fd.get(), DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE), 0);
}

TEST(UapiDmaBufSync, NullArgumentIsEfault) {
  UniqueFd fd = allocateBuffer();
  EXPECT_EQ(ioctl(fd.get(), DMA_BUF_IOCTL_SYNC, nullptr).code(), EFAULT);
}

TEST(UapiDmaBufSync, StartReadWaitsOnlyForWriters) {
  UniqueFd fd = allocateBuffer();
  auto reader = attachFence(fd.get(), ResvUsage::Read);
  EXPECT_TRUE(sync(fd.get(), DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ).ok());
  EXPECT_FALSE(reader->isSignaled());
  reader->signal();
}

TEST(UapiDmaBufSync, EndNeverWaits) {
  UniqueFd fd = allocateBuffer();
  auto writer = attachFence(fd.get(), ResvUsage::Write);
  EXPECT_TRUE(sync(fd.get(), DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW).ok());
  EXPECT_FALSE(writer->isSignaled());
  writer->signal();
}

TEST(UapiDmaBufSync, StartWriteWaitsForReadersAndStartReadForWriters) {
  UniqueFd fd = allocateBuffer();
  for (auto [usage, flags] :
       {std::pair{ResvUsage::Read, DMA_BUF_SYNC_WRITE}, std::pair{ResvUsage::Read, DMA_BUF_SYNC_RW},
        std::pair{ResvUsage::Write, DMA_BUF_SYNC_READ}}) {
    auto fence = attachFence(fd.get(), usage);
    ThreadMark syncing;
    std::thread signaller([&] {
      // Signals once SYNC START sleeps (or, if it did not wait, once it is back and asleep in
      // join(): the fence is then still unsignalled when the check below runs).
      (void)syncing.waitUntilAsleep();
      fence->signal();
    });
    syncing.mark();
    EXPECT_TRUE(sync(fd.get(), DMA_BUF_SYNC_START | flags).ok());
    EXPECT_TRUE(fence->isSignaled()) << "SYNC START returned before the fence signalled";
    signaller.join();
  }
}

TEST(UapiDmaBufSync, TheExportersErrorIsReturned) {
  // udmabuf (6.12) refuses END before any START.
  auto memfd = sys::memfdCreate("udmabuf-src", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_TRUE(memfd.ok());
  ASSERT_TRUE(sys::ftruncate(memfd->get(), 4096).ok());
  ASSERT_TRUE(sys::addSeals(memfd->get(), F_SEAL_SHRINK).ok());
  auto dev = openUdmabuf();
  ASSERT_TRUE(dev.ok());
  UdmabufCreate create{static_cast<std::uint32_t>(memfd->get()), kUdmabufFlagsCloexec, 0, 4096};
  auto buf = udmabufCreate(dev->get(), &create);
  ASSERT_TRUE(buf.ok()) << buf.error().describe();
  EXPECT_EQ(sync(buf->get(), DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ).code(), EINVAL);
  EXPECT_TRUE(sync(buf->get(), DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ).ok());
  EXPECT_TRUE(sync(buf->get(), DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ).ok());
}

TEST(UapiDmaBufSync, ScopeBracketsAndRefusesEnd) {
  UniqueFd fd = allocateBuffer();
  {
    auto scope = syncScope(fd.get(), DMA_BUF_SYNC_RW);
    ASSERT_TRUE(scope.ok());
    EXPECT_TRUE(scope->active());
  }
  EXPECT_EQ(syncScope(fd.get(), DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW).code(), EINVAL);
  EXPECT_EQ(syncScope(fd.get(), 0).code(), EINVAL);
  EXPECT_EQ(syncScope(fd.get(), 16 | DMA_BUF_SYNC_READ).code(), EINVAL);
}

// --- SET_NAME ---------------------------------------------------------------------------------

TEST(UapiDmaBufSetName, ThirtyOneCharactersAreKept) {
  UniqueFd fd = allocateBuffer();
  const std::string n31(31, 'a');
  ASSERT_TRUE(ioctl(fd.get(), DMA_BUF_SET_NAME, const_cast<char*>(n31.c_str())).ok());
  EXPECT_EQ(*name(fd.get()), n31);
}

TEST(UapiDmaBufSetName, ThirtyTwoIsEinvalAndTheOldNameStays) {
  UniqueFd fd = allocateBuffer();
  ASSERT_TRUE(setName(fd.get(), "old").ok());
  EXPECT_EQ(setName(fd.get(), std::string(32, 'b')).code(), EINVAL);
  EXPECT_EQ(setName(fd.get(), std::string(100, 'b')).code(), EINVAL);
  EXPECT_EQ(*name(fd.get()), "old");
}

TEST(UapiDmaBufSetName, EmptySlashAndBothRequestSizesAreAccepted) {
  UniqueFd fd = allocateBuffer();
  EXPECT_TRUE(ioctl(fd.get(), DMA_BUF_SET_NAME_A, const_cast<char*>("a/b")).ok());
  EXPECT_EQ(*name(fd.get()), "a/b");
  EXPECT_TRUE(ioctl(fd.get(), DMA_BUF_SET_NAME_B, const_cast<char*>("")).ok());
  EXPECT_EQ(*name(fd.get()), "");
}

TEST(UapiDmaBufSetName, NullPointerIsEfault) {
  UniqueFd fd = allocateBuffer();
  EXPECT_EQ(ioctl(fd.get(), DMA_BUF_SET_NAME, nullptr).code(), EFAULT);
}

TEST(UapiDmaBufSetName, AReadOnlyFdMayRename) {
  UniqueFd fd = allocateBuffer(4096, O_RDONLY | O_CLOEXEC);
  EXPECT_TRUE(setName(fd.get(), "ro").ok());
  EXPECT_EQ(*name(fd.get()), "ro");
}

// --- EXPORT_SYNC_FILE -------------------------------------------------------------------------

TEST(UapiDmaBufExportSyncFile, FlagsMustBeANonEmptySubsetOfRw) {
  UniqueFd fd = allocateBuffer();
  for (std::uint32_t bad : {0U, 4U, 4U | 1U, 8U, 3U | 8U}) {
    dma_buf_export_sync_file arg{bad, -1};
    EXPECT_EQ(ioctl(fd.get(), DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &arg).code(), EINVAL) << bad;
  }
  EXPECT_EQ(ioctl(fd.get(), DMA_BUF_IOCTL_EXPORT_SYNC_FILE, nullptr).code(), EFAULT);
}

TEST(UapiDmaBufExportSyncFile, NoFenceGivesTheSignalledStub) {
  UniqueFd fd = allocateBuffer();
  dma_buf_export_sync_file arg{DMA_BUF_SYNC_RW, -1};
  ASSERT_TRUE(ioctl(fd.get(), DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &arg).ok());
  UniqueFd file = UniqueFd::adopt(arg.fd);
  EXPECT_EQ(*sys::getFdFlags(file.get()) & FD_CLOEXEC, FD_CLOEXEC);
  auto info = syncFileInfo(file.get());
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->fences.size(), 1U);
  EXPECT_EQ(info->fences[0].driverName, "stub");
  EXPECT_EQ(info->fences[0].objName, "stub");
  EXPECT_EQ(info->fences[0].status, 1);
  EXPECT_GT(info->fences[0].timestampNs, 0U);
  EXPECT_EQ(info->status, 1);
  EXPECT_EQ(*Context::current().syncFileFence(file.get()), Fence::stub());
}

TEST(UapiDmaBufExportSyncFile, OneFenceIsThatFenceAndReadExportsOnlyWriters) {
  UniqueFd fd = allocateBuffer();
  auto reader = attachFence(fd.get(), ResvUsage::Read);
  auto forWrite = exportSyncFile(fd.get(), DMA_BUF_SYNC_WRITE);
  auto forRead = exportSyncFile(fd.get(), DMA_BUF_SYNC_READ);
  ASSERT_TRUE(forWrite.ok() && forRead.ok());
  EXPECT_EQ(*Context::current().syncFileFence(forWrite->get()), reader);
  EXPECT_EQ(*Context::current().syncFileFence(forRead->get()), Fence::stub());
  reader->signal();
}

TEST(UapiDmaBufExportSyncFile, TwoFencesGiveAnArrayListingBothAndASnapshot) {
  UniqueFd fd = allocateBuffer();
  auto a = attachFence(fd.get(), ResvUsage::Write);
  auto b = attachFence(fd.get(), ResvUsage::Read);
  auto file = exportSyncFile(fd.get(), DMA_BUF_SYNC_RW);
  ASSERT_TRUE(file.ok());
  auto later = attachFence(fd.get(), ResvUsage::Write);
  auto info = syncFileInfo(file->get());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->fences.size(), 2U);
  a->signal();
  b->signal();
  EXPECT_FALSE(testing::syncFileBusy(file->get()));
  later->signal();
}

// --- IMPORT_SYNC_FILE -------------------------------------------------------------------------

TEST(UapiDmaBufImportSyncFile, FlagsMustBeANonEmptySubsetOfRw) {
  UniqueFd fd = allocateBuffer();
  auto file = Context::current().installSyncFile(Fence::stub());
  ASSERT_TRUE(file.ok());
  for (std::uint32_t bad : {0U, 4U, 4U | 2U, 8U}) {
    dma_buf_import_sync_file arg{bad, file->get()};
    EXPECT_EQ(ioctl(fd.get(), DMA_BUF_IOCTL_IMPORT_SYNC_FILE, &arg).code(), EINVAL) << bad;
  }
  EXPECT_EQ(ioctl(fd.get(), DMA_BUF_IOCTL_IMPORT_SYNC_FILE, nullptr).code(), EFAULT);
}

TEST(UapiDmaBufImportSyncFile, AnFdThatIsNotASyncFileIsEinval) {
  UniqueFd fd = allocateBuffer();
  auto memfd = sys::memfdCreate("x", MFD_CLOEXEC);
  ASSERT_TRUE(memfd.ok());
  EXPECT_EQ(importSyncFile(fd.get(), DMA_BUF_SYNC_READ, memfd->get()).code(), EINVAL);
  EXPECT_EQ(importSyncFile(fd.get(), DMA_BUF_SYNC_READ, fd.get()).code(), EINVAL);
  EXPECT_EQ(importSyncFile(fd.get(), DMA_BUF_SYNC_READ, -1).code(), EINVAL);
}

TEST(UapiDmaBufImportSyncFile, RwActsAsWriteAndReadAsRead) {
  UniqueFd fd = allocateBuffer();
  auto point = Timeline::create("drv", "tl")->createFence();
  auto file = Context::current().installSyncFile(point);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(importSyncFile(fd.get(), DMA_BUF_SYNC_READ, file->get()).ok());
  auto resv = testing::bufferOf(fd.get());
  EXPECT_TRUE(resv->resv().testSignaled(ResvUsage::Write));
  EXPECT_FALSE(resv->resv().testSignaled(ResvUsage::Read));
  ASSERT_TRUE(importSyncFile(fd.get(), DMA_BUF_SYNC_RW, file->get()).ok());
  EXPECT_FALSE(resv->resv().testSignaled(ResvUsage::Write));
  point->signal();
}

TEST(UapiDmaBufImportSyncFile, AMergedFileIsImportedLeafByLeaf) {
  UniqueFd fd = allocateBuffer();
  auto a = Timeline::create("drv", "a")->createFence();
  auto b = Timeline::create("drv", "b")->createFence();
  auto fa = Context::current().installSyncFile(a);
  auto fb = Context::current().installSyncFile(b);
  ASSERT_TRUE(fa.ok() && fb.ok());
  auto merged = mergeSyncFiles("m", fa->get(), fb->get());
  ASSERT_TRUE(merged.ok());
  ASSERT_TRUE(importSyncFile(fd.get(), DMA_BUF_SYNC_WRITE, merged->get()).ok());
  auto entries = testing::bufferOf(fd.get())->resv().getFences(ResvUsage::Write);
  ASSERT_EQ(entries.size(), 2U);
  a->signal();
  // Later exports skip fences that have signalled.
  auto file = exportSyncFile(fd.get(), DMA_BUF_SYNC_READ);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(*Context::current().syncFileFence(file->get()), b);
  b->signal();
}

// --- lseek, mmap ------------------------------------------------------------------------------

TEST(UapiDmaBufSeek, OnlyOffsetZeroWithSetOrEnd) {
  UniqueFd fd = allocateBuffer(5000);
  EXPECT_EQ(*seek(fd.get(), 0, SEEK_SET), 0U);
  EXPECT_EQ(*seek(fd.get(), 0, SEEK_END), 8192U);
  EXPECT_EQ(*size(fd.get()), 8192U);
  EXPECT_EQ(seek(fd.get(), 0, SEEK_CUR).code(), EINVAL);
  EXPECT_EQ(seek(fd.get(), 1, SEEK_SET).code(), EINVAL);
  EXPECT_EQ(seek(fd.get(), -1, SEEK_END).code(), EINVAL);
  EXPECT_EQ(seek(fd.get(), 0, 42).code(), EINVAL);
  EXPECT_EQ(sys::fstat(fd.get())->size, 8192U);
}

TEST(UapiDmaBufMmap, SharedMappingsSeeTheSameBytes) {
  UniqueFd fd = allocateBuffer(8192);
  auto a = mmap(fd.get(), 8192, PROT_READ | PROT_WRITE, MAP_SHARED);
  auto b = mmap(fd.get(), 4096, PROT_READ, MAP_SHARED, 4096);
  ASSERT_TRUE(a.ok() && b.ok()) << a.code() << " " << b.code();
  std::memcpy(a->data() + 4096, "zbuf", 4);
  EXPECT_EQ(std::memcmp(b->data(), "zbuf", 4), 0);
}

TEST(UapiDmaBufMmap, ErrorsAsTheKernel) {
  UniqueFd fd = allocateBuffer(8192);
  EXPECT_EQ(mmap(fd.get(), 4096, PROT_READ, 0).code(), EINVAL);
  EXPECT_EQ(mmap(fd.get(), 0, PROT_READ, MAP_SHARED).code(), EINVAL);
  EXPECT_EQ(mmap(fd.get(), 3 * 4096, PROT_READ, MAP_SHARED).code(), EINVAL);
  EXPECT_EQ(mmap(fd.get(), 4096, PROT_READ, MAP_SHARED, 8192).code(), EINVAL);
  EXPECT_EQ(mmap(fd.get(), 4096, PROT_READ, MAP_SHARED, 100).code(), EINVAL);
}

TEST(UapiDmaBufMmap, AReadOnlyFdRefusesWritableSharedMaps) {
  UniqueFd fd = allocateBuffer(4096, O_RDONLY | O_CLOEXEC);
  EXPECT_EQ(*sys::getFileFlags(fd.get()) & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(mmap(fd.get(), 4096, PROT_READ | PROT_WRITE, MAP_SHARED).code(), EACCES);
  EXPECT_TRUE(mmap(fd.get(), 4096, PROT_READ, MAP_SHARED).ok());
}

TEST(UapiDmaBufMmap, AWriteOnlyFdIsEacces) {
  UniqueFd fd = allocateBuffer(4096, O_WRONLY | O_CLOEXEC);
  EXPECT_EQ(mmap(fd.get(), 4096, PROT_WRITE, MAP_SHARED).code(), EACCES);
}

// --- poll -------------------------------------------------------------------------------------

TEST(UapiDmaBufPoll, ReadyEventsFollowTheUsages) {
  UniqueFd fd = allocateBuffer();
  EXPECT_EQ(*pollBuffer(fd.get(), POLLIN | POLLOUT, 0ms), POLLIN | POLLOUT);
  auto reader = attachFence(fd.get(), ResvUsage::Read);
  EXPECT_EQ(*pollBuffer(fd.get(), POLLIN | POLLOUT, 0ms), POLLIN);
  EXPECT_EQ(*pollBuffer(fd.get(), POLLOUT, 0ms), 0);
  auto writer = attachFence(fd.get(), ResvUsage::Write);
  EXPECT_EQ(*pollBuffer(fd.get(), POLLIN | POLLOUT, 0ms), 0);
  writer->signal();
  EXPECT_EQ(*pollBuffer(fd.get(), POLLIN | POLLOUT, 0ms), POLLIN);
  reader->signal();
  EXPECT_EQ(*pollBuffer(fd.get(), POLLIN | POLLOUT, 0ms), POLLIN | POLLOUT);
}

TEST(UapiDmaBufPoll, NoEventsOrPollpriReportNothing) {
  UniqueFd fd = allocateBuffer();
  EXPECT_EQ(*pollBuffer(fd.get(), 0, 0ms), 0);
  EXPECT_EQ(*pollBuffer(fd.get(), POLLPRI, 1000ms), 0);
}

TEST(UapiDmaBufPoll, BookkeepFencesAreIgnored) {
  UniqueFd fd = allocateBuffer();
  auto bookkeep = attachFence(fd.get(), ResvUsage::Bookkeep);
  EXPECT_EQ(*pollBuffer(fd.get(), POLLIN | POLLOUT, 0ms), POLLIN | POLLOUT);
  bookkeep->signal();
}

TEST(UapiDmaBufPoll, WaitsForASignalOrTimesOut) {
  UniqueFd fd = allocateBuffer();
  auto writer = attachFence(fd.get(), ResvUsage::Write);
  EXPECT_EQ(*pollBuffer(fd.get(), POLLIN, 10ms), 0);
  ThreadMark polling;
  std::thread signaller([&] {
    (void)polling.waitUntilAsleep();  // the signal wakes a poll that sleeps
    writer->signal();
  });
  polling.mark();
  EXPECT_EQ(*pollBuffer(fd.get(), POLLIN, 5000ms), POLLIN);
  signaller.join();
}

// --- fds that are not buffers -----------------------------------------------------------------

TEST(UapiDmaBuf, OtherFdsAreEnottyForIoctlsEinvalForBufferCallsEbadfWhenClosed) {
  auto memfd = sys::memfdCreate("x", MFD_CLOEXEC);
  ASSERT_TRUE(memfd.ok());
  const int fd = memfd->get();
  dma_buf_sync s{DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ};
  EXPECT_EQ(ioctl(fd, DMA_BUF_IOCTL_SYNC, &s).code(), ENOTTY);
  EXPECT_EQ(sync(fd, DMA_BUF_SYNC_READ).code(), ENOTTY);
  EXPECT_EQ(setName(fd, "x").code(), ENOTTY);
  EXPECT_EQ(name(fd).code(), ENOTTY);
  EXPECT_EQ(exportSyncFile(fd, DMA_BUF_SYNC_READ).code(), ENOTTY);
  EXPECT_EQ(importSyncFile(fd, DMA_BUF_SYNC_READ, -1).code(), ENOTTY);
  EXPECT_EQ(syncScope(fd, DMA_BUF_SYNC_READ).code(), ENOTTY);
  EXPECT_EQ(seek(fd, 0, SEEK_SET).code(), EINVAL);
  EXPECT_TRUE(mmap(fd, 4096, PROT_READ, MAP_SHARED).ok());  // a memfd: the real mmap(2)
  EXPECT_EQ(pollBuffer(fd, POLLIN, 0ms).code(), EINVAL);
  EXPECT_EQ(sync(-1, DMA_BUF_SYNC_READ).code(), EBADF);
  EXPECT_EQ(seek(-1, 0, SEEK_SET).code(), EBADF);
  EXPECT_EQ(ioctl(-1, DMA_BUF_IOCTL_SYNC, &s).code(), EBADF);
}

TEST(UapiDmaBuf, UnknownAndWrongSizeRequestsAreEnotty) {
  UniqueFd fd = allocateBuffer();
  std::uint64_t arg[8] = {};
  EXPECT_EQ(ioctl(fd.get(), iocNumber(kIocWrite, 'b', 0, 4), arg).code(), ENOTTY);
  EXPECT_EQ(ioctl(fd.get(), iocNumber(kIocRead | kIocWrite, 'b', 4, 8), arg).code(), ENOTTY);
  EXPECT_EQ(ioctl(fd.get(), kSyncIocFileInfo, arg).code(), ENOTTY);
  EXPECT_EQ(ioctl(fd.get(), kDmaHeapIoctlAlloc, arg).code(), ENOTTY);
}

}  // namespace
}  // namespace zbuf::uapi
