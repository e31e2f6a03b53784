// Mirrors IGT's tests/dmabuf_sync_file.c, subtest by subtest. IGT uses a vgem buffer object,
// vgem fences (each on its own context; VGEM_FENCE_WRITE adds it with WRITE usage, else READ)
// and sw_sync timelines for imports; here the buffer comes from the system heap through the
// uAPI, attachFence() adds fences as vgem does, and imported sync files come from timelines.
// poll(2) on the dma-buf is uapi::pollBuffer (IGT's dmabuf_busy).
#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "uapi/uapi_helpers.h"
#include "zbuf/core/sync_file.h"

namespace zbuf {
namespace {

using testing::allocateBuffer;
using testing::attachFence;
using testing::dmabufBusy;
using testing::dmabufSyncFileBusy;
using testing::syncFileBusy;
using uapi::kDmaBufSyncRead;
using uapi::kDmaBufSyncRw;
using uapi::kDmaBufSyncWrite;

UniqueFd exportSyncFile(int dmabuf, std::uint32_t flags) {
  auto fd = uapi::exportSyncFile(dmabuf, flags);
  EXPECT_TRUE(fd.ok()) << fd.error().describe();
  return fd.ok() ? std::move(*fd) : UniqueFd();
}

// dmabuf_import_timeline_fence: a sync file of point `seqno` on `timeline`, imported.
void importTimelineFence(int dmabuf, std::uint32_t flags, const FencePtr& point) {
  auto file = uapi::Context::current().installSyncFile(point);
  ASSERT_TRUE(file.ok());
  auto r = uapi::importSyncFile(dmabuf, flags, file->get());
  ASSERT_TRUE(r.ok()) << r.error().describe();
}

void expectAllIdle(int dmabuf) {
  EXPECT_FALSE(dmabufBusy(dmabuf, kDmaBufSyncRead));
  EXPECT_FALSE(dmabufBusy(dmabuf, kDmaBufSyncWrite));
  EXPECT_FALSE(dmabufBusy(dmabuf, kDmaBufSyncRw));
  EXPECT_FALSE(dmabufSyncFileBusy(dmabuf, kDmaBufSyncRead));
  EXPECT_FALSE(dmabufSyncFileBusy(dmabuf, kDmaBufSyncWrite));
  EXPECT_FALSE(dmabufSyncFileBusy(dmabuf, kDmaBufSyncRw));
}

void expectAllBusy(int dmabuf) {
  EXPECT_TRUE(dmabufBusy(dmabuf, kDmaBufSyncRead));
  EXPECT_TRUE(dmabufBusy(dmabuf, kDmaBufSyncWrite));
  EXPECT_TRUE(dmabufBusy(dmabuf, kDmaBufSyncRw));
  EXPECT_TRUE(dmabufSyncFileBusy(dmabuf, kDmaBufSyncRead));
  EXPECT_TRUE(dmabufSyncFileBusy(dmabuf, kDmaBufSyncWrite));
  EXPECT_TRUE(dmabufSyncFileBusy(dmabuf, kDmaBufSyncRw));
}

// Only readers pending: reads may go on, writes wait.
void expectReadBusyOnlyForWriters(int dmabuf) {
  EXPECT_FALSE(dmabufBusy(dmabuf, kDmaBufSyncRead));
  EXPECT_TRUE(dmabufBusy(dmabuf, kDmaBufSyncWrite));
  EXPECT_TRUE(dmabufBusy(dmabuf, kDmaBufSyncRw));
  EXPECT_FALSE(dmabufSyncFileBusy(dmabuf, kDmaBufSyncRead));
  EXPECT_TRUE(dmabufSyncFileBusy(dmabuf, kDmaBufSyncWrite));
  EXPECT_TRUE(dmabufSyncFileBusy(dmabuf, kDmaBufSyncRw));
}

TEST(IgtDmabufSyncFile, ExportBasic) {
  UniqueFd dmabuf = allocateBuffer();
  EXPECT_FALSE(dmabufBusy(dmabuf.get(), kDmaBufSyncRead));
  EXPECT_FALSE(dmabufBusy(dmabuf.get(), kDmaBufSyncWrite));
  EXPECT_FALSE(dmabufSyncFileBusy(dmabuf.get(), kDmaBufSyncRead));
  EXPECT_FALSE(dmabufSyncFileBusy(dmabuf.get(), kDmaBufSyncWrite));

  auto fence = attachFence(dmabuf.get(), ResvUsage::Read);
  expectReadBusyOnlyForWriters(dmabuf.get());
  fence->signal();
  expectAllIdle(dmabuf.get());

  fence = attachFence(dmabuf.get(), ResvUsage::Write);
  expectAllBusy(dmabuf.get());
  fence->signal();
  expectAllIdle(dmabuf.get());
}

TEST(IgtDmabufSyncFile, ExportBeforeSignal) {
  UniqueFd dmabuf = allocateBuffer();
  EXPECT_FALSE(dmabufSyncFileBusy(dmabuf.get(), kDmaBufSyncRead));
  EXPECT_FALSE(dmabufSyncFileBusy(dmabuf.get(), kDmaBufSyncWrite));

  auto fence = attachFence(dmabuf.get(), ResvUsage::Read);
  UniqueFd readFd = exportSyncFile(dmabuf.get(), kDmaBufSyncRead);
  UniqueFd writeFd = exportSyncFile(dmabuf.get(), kDmaBufSyncWrite);
  EXPECT_FALSE(syncFileBusy(readFd.get()));
  EXPECT_TRUE(syncFileBusy(writeFd.get()));
  fence->signal();
  EXPECT_FALSE(syncFileBusy(readFd.get()));
  EXPECT_FALSE(syncFileBusy(writeFd.get()));

  fence = attachFence(dmabuf.get(), ResvUsage::Write);
  readFd = exportSyncFile(dmabuf.get(), kDmaBufSyncRead);
  writeFd = exportSyncFile(dmabuf.get(), kDmaBufSyncWrite);
  EXPECT_TRUE(syncFileBusy(readFd.get()));
  EXPECT_TRUE(syncFileBusy(writeFd.get()));
  fence->signal();
  EXPECT_FALSE(syncFileBusy(readFd.get()));
  EXPECT_FALSE(syncFileBusy(writeFd.get()));
}

TEST(IgtDmabufSyncFile, ExportMultiwait) {
  UniqueFd dmabuf = allocateBuffer();
  auto fence1 = attachFence(dmabuf.get(), ResvUsage::Read);
  auto fence2 = attachFence(dmabuf.get(), ResvUsage::Read);
  UniqueFd syncFile = exportSyncFile(dmabuf.get(), kDmaBufSyncWrite);
  auto fence3 = attachFence(dmabuf.get(), ResvUsage::Read);

  EXPECT_TRUE(syncFileBusy(syncFile.get()));
  fence1->signal();
  EXPECT_TRUE(syncFileBusy(syncFile.get()));
  fence2->signal();
  EXPECT_FALSE(syncFileBusy(syncFile.get()));  // fence3 came after the export
  fence3->signal();
}

TEST(IgtDmabufSyncFile, ExportWaitAfterAttach) {
  UniqueFd dmabuf = allocateBuffer();
  UniqueFd readFile = exportSyncFile(dmabuf.get(), kDmaBufSyncRead);
  UniqueFd writeFile = exportSyncFile(dmabuf.get(), kDmaBufSyncWrite);
  auto fence1 = attachFence(dmabuf.get(), ResvUsage::Write);
  EXPECT_FALSE(syncFileBusy(readFile.get()));
  EXPECT_FALSE(syncFileBusy(writeFile.get()));

  // These wait on fence1.
  readFile = exportSyncFile(dmabuf.get(), kDmaBufSyncRead);
  writeFile = exportSyncFile(dmabuf.get(), kDmaBufSyncWrite);
  EXPECT_TRUE(syncFileBusy(readFile.get()));
  EXPECT_TRUE(syncFileBusy(writeFile.get()));

  fence1->signal();
  auto fence2 = attachFence(dmabuf.get(), ResvUsage::Write);
  // fence1 has signalled...
  EXPECT_FALSE(syncFileBusy(readFile.get()));
  EXPECT_FALSE(syncFileBusy(writeFile.get()));
  // ...fence2 has not.
  EXPECT_TRUE(dmabufSyncFileBusy(dmabuf.get(), kDmaBufSyncRead));
  EXPECT_TRUE(dmabufSyncFileBusy(dmabuf.get(), kDmaBufSyncWrite));
  fence2->signal();
}

TEST(IgtDmabufSyncFile, ImportBasic) {
  UniqueFd dmabuf = allocateBuffer();
  EXPECT_FALSE(dmabufBusy(dmabuf.get(), kDmaBufSyncRead));
  EXPECT_FALSE(dmabufBusy(dmabuf.get(), kDmaBufSyncWrite));
  auto timeline = Timeline::create("sw_sync", "sw_sync_timeline");

  auto point1 = timeline->createFence(1);
  importTimelineFence(dmabuf.get(), kDmaBufSyncRead, point1);
  expectReadBusyOnlyForWriters(dmabuf.get());
  point1->signal();
  expectAllIdle(dmabuf.get());

  auto point2 = timeline->createFence(2);
  importTimelineFence(dmabuf.get(), kDmaBufSyncWrite, point2);
  expectAllBusy(dmabuf.get());
  point2->signal();
  expectAllIdle(dmabuf.get());

  auto point3 = timeline->createFence(3);
  importTimelineFence(dmabuf.get(), kDmaBufSyncRw, point3);
  expectAllBusy(dmabuf.get());
  point3->signal();
  expectAllIdle(dmabuf.get());
}

void importMultiple(bool write) {
  UniqueFd dmabuf = allocateBuffer();
  EXPECT_FALSE(dmabufBusy(dmabuf.get(), kDmaBufSyncRead));
  EXPECT_FALSE(dmabufBusy(dmabuf.get(), kDmaBufSyncWrite));

  std::vector<FencePtr> readPoints;
  for (int i = 0; i < 32; ++i) {
    readPoints.push_back(Timeline::create("sw_sync", "read")->createFence(1));
    importTimelineFence(dmabuf.get(), kDmaBufSyncRead, readPoints.back());
  }
  FencePtr writePoint;
  if (write) {
    writePoint = Timeline::create("sw_sync", "write")->createFence(1);
    importTimelineFence(dmabuf.get(), kDmaBufSyncWrite, writePoint);
  }
  UniqueFd readFile = exportSyncFile(dmabuf.get(), kDmaBufSyncRead);
  UniqueFd writeFile = exportSyncFile(dmabuf.get(), kDmaBufSyncWrite);

  for (int i = 31; i >= 0; --i) {
    EXPECT_EQ(dmabufBusy(dmabuf.get(), kDmaBufSyncRead), write);
    EXPECT_EQ(syncFileBusy(readFile.get()), write);
    EXPECT_TRUE(dmabufBusy(dmabuf.get(), kDmaBufSyncWrite));
    EXPECT_TRUE(syncFileBusy(writeFile.get()));
    readPoints[static_cast<std::size_t>(i)]->signal();
  }
  EXPECT_EQ(dmabufBusy(dmabuf.get(), kDmaBufSyncRead), write);
  EXPECT_EQ(syncFileBusy(readFile.get()), write);
  EXPECT_EQ(dmabufBusy(dmabuf.get(), kDmaBufSyncWrite), write);
  EXPECT_EQ(syncFileBusy(writeFile.get()), write);
  if (write) {
    writePoint->signal();
  }
  EXPECT_FALSE(dmabufBusy(dmabuf.get(), kDmaBufSyncRead));
  EXPECT_FALSE(syncFileBusy(readFile.get()));
  EXPECT_FALSE(dmabufBusy(dmabuf.get(), kDmaBufSyncWrite));
  EXPECT_FALSE(syncFileBusy(writeFile.get()));
}

TEST(IgtDmabufSyncFile, ImportMultipleReadOnly) {
  importMultiple(false);
}

TEST(IgtDmabufSyncFile, ImportMultipleReadWrite) {
  importMultiple(true);
}

}  // namespace
}  // namespace zbuf
