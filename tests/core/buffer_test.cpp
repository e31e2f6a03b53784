#include "zbuf/core/buffer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <chrono>
#include <thread>

#include "core/fake_exporter.h"
#include "support/thread_state.h"
#include "zbuf/core/fence.h"

// ctest-labels: concurrency

namespace zbuf {
namespace {

using test::fakeBuffer;
using test::FakeCounters;
using test::fakeInfo;

std::shared_ptr<FakeCounters> counters() {
  return std::make_shared<FakeCounters>();
}

// --- export checks ---------------------------------------------------------------------------

TEST(BufferExportTest, ExportsWithFixedSizeAndExporterName) {
  auto c = counters();
  auto info = fakeInfo(c, 8192);
  info.flags = O_RDWR | O_CLOEXEC | O_NONBLOCK | O_APPEND;
  auto b = Buffer::exportBuffer(std::move(info));
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ((*b)->size(), 8192U);
  EXPECT_EQ((*b)->exporterName(), "fake");
  EXPECT_EQ((*b)->fileFlags(), O_RDWR | O_NONBLOCK);  // only O_ACCMODE | O_NONBLOCK kept
  EXPECT_FALSE((*b)->isDynamic());
  EXPECT_NE((*b)->priv(), nullptr);
  EXPECT_TRUE((*b)->fd().isValid());
}

void expectExportEinval(ExportInfo info, const char* what) {
  auto b = Buffer::exportBuffer(std::move(info));
  ASSERT_FALSE(b.ok()) << what;
  EXPECT_EQ(b.code(), EINVAL) << what;
  EXPECT_FALSE(b.error().message().empty()) << what;
}

ExportInfo withOps(ExportInfo info, const std::function<void(ExporterOps&)>& edit) {
  ExporterOps ops = *info.ops;
  edit(ops);
  info.ops = std::make_shared<const ExporterOps>(std::move(ops));
  return info;
}

TEST(BufferExportTest, MissingRequiredPiecesAreEinval) {
  auto c = counters();
  auto noPriv = fakeInfo(c);
  noPriv.priv.reset();
  expectExportEinval(std::move(noPriv), "priv");
  auto noOps = fakeInfo(c);
  noOps.ops.reset();
  expectExportEinval(std::move(noOps), "ops");
  expectExportEinval(withOps(fakeInfo(c), [](ExporterOps& o) { o.map = nullptr; }), "map");
  expectExportEinval(withOps(fakeInfo(c), [](ExporterOps& o) { o.unmap = nullptr; }), "unmap");
  expectExportEinval(withOps(fakeInfo(c), [](ExporterOps& o) { o.release = nullptr; }), "release");
  auto noFd = fakeInfo(c);
  noFd.fd = SharedFd();
  expectExportEinval(std::move(noFd), "fd");
  EXPECT_EQ(c->release.load(), 0);  // nothing was exported, nothing released
}

TEST(BufferExportTest, PinWithoutUnpinAndReverseAreEinval) {
  auto c = counters();
  expectExportEinval(withOps(fakeInfo(c, 4096, true), [](ExporterOps& o) { o.unpin = nullptr; }),
                     "pin only");
  expectExportEinval(withOps(fakeInfo(c, 4096, true), [](ExporterOps& o) { o.pin = nullptr; }),
                     "unpin only");
}

TEST(BufferExportTest, DynamicExporterWithDeviceAccessIsEinval) {
  auto c = counters();
  auto info = withOps(fakeInfo(c, 4096, true), [](ExporterOps& o) {
    o.beginDeviceAccess = [](Attachment&, const SgTable&, DmaDirection) -> Result<void> {
      return {};
    };
  });
  expectExportEinval(std::move(info), "dynamic + begin device access");
  auto info2 = withOps(fakeInfo(c, 4096, true), [](ExporterOps& o) {
    o.endDeviceAccess = [](Attachment&, const SgTable&, DmaDirection) -> Result<void> {
      return {};
    };
  });
  expectExportEinval(std::move(info2), "dynamic + end device access");
  // A static exporter may offer device access.
  auto info3 = withOps(fakeInfo(c, 4096, false), [](ExporterOps& o) {
    o.beginDeviceAccess = [](Attachment&, const SgTable&, DmaDirection) -> Result<void> {
      return {};
    };
    o.endDeviceAccess = [](Attachment&, const SgTable&, DmaDirection) -> Result<void> {
      return {};
    };
  });
  EXPECT_TRUE(Buffer::exportBuffer(std::move(info3)).ok());
}

// One memfd standing for two buffers is refused where the fd becomes a file (installBuffer,
// EBUSY): tests/uapi/buffer_fd_test.cpp.

TEST(BufferExportTest, ReleaseRunsOnLastReference) {
  auto c = counters();
  BufferPtr b = fakeBuffer(c);
  ASSERT_NE(b, nullptr);
  BufferPtr copy = b;
  b.reset();
  EXPECT_EQ(c->release.load(), 0);
  copy.reset();
  EXPECT_EQ(c->release.load(), 1);
}

TEST(BufferExportTest, OwnResvUnlessGiven) {
  auto c = counters();
  BufferPtr a = fakeBuffer(c);
  BufferPtr b = fakeBuffer(c);
  EXPECT_NE(&a->resv(), &b->resv());
  auto shared = std::make_shared<Resv>();
  auto i1 = fakeInfo(c);
  i1.resv = shared;
  auto i2 = fakeInfo(c);
  i2.resv = shared;
  auto s1 = Buffer::exportBuffer(std::move(i1));
  auto s2 = Buffer::exportBuffer(std::move(i2));
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_EQ(&(*s1)->resv(), shared.get());
  EXPECT_EQ(&(*s2)->resv(), shared.get());
}

TEST(BufferExportTest, InodesAreUniqueAndIncreasing) {
  auto c = counters();
  BufferPtr a = fakeBuffer(c);
  BufferPtr b = fakeBuffer(c);
  EXPECT_GT(b->inode(), a->inode());
  std::uint64_t old = a->inode();
  a.reset();
  BufferPtr d = fakeBuffer(c);
  EXPECT_NE(d->inode(), old);
}

// --- names -----------------------------------------------------------------------------------

TEST(BufferNameTest, SetNameUpTo31Characters) {
  BufferPtr b = fakeBuffer(counters());
  EXPECT_FALSE(b->hasName());
  EXPECT_EQ(b->name(), "");
  std::string n31(31, 'x');
  ASSERT_TRUE(b->setName(n31).ok());
  EXPECT_EQ(b->name(), n31);
  auto r = b->setName(std::string(32, 'y'));
  EXPECT_EQ(r.code(), EINVAL);
  EXPECT_EQ(b->name(), n31);  // the old name stays
  ASSERT_TRUE(b->setName("").ok());
  EXPECT_TRUE(b->hasName());  // an empty name counts as a name
  ASSERT_TRUE(b->setName("a/b").ok());
  EXPECT_EQ(b->name(), "a/b");
}

// --- the list of live buffers -----------------------------------------------------------------

// dma_buf_get (finding a buffer by an fd) is the file table's: tests/uapi/context_test.cpp.

TEST(BufferRegistryTest, LiveBuffersInExportOrder) {
  auto c = counters();
  BufferPtr a = fakeBuffer(c);
  BufferPtr b = fakeBuffer(c);
  auto live = Buffer::liveBuffers();
  std::vector<Buffer*> ours;
  for (auto& l : live) {
    if (l == a || l == b) {
      ours.push_back(l.get());
    }
  }
  ASSERT_EQ(ours.size(), 2U);
  EXPECT_EQ(ours[0], a.get());
  EXPECT_EQ(ours[1], b.get());
}

// --- CPU access ------------------------------------------------------------------------------

struct Signaller {
  std::shared_ptr<Timeline> timeline = Timeline::create("test", "cpu");
};

void addFence(Buffer& b, const FencePtr& f, ResvUsage usage) {
  ASSERT_TRUE(b.resv().lock().ok());
  ASSERT_TRUE(b.resv().reserveFencesLocked(1).ok());
  b.resv().addFenceLocked(f, usage);
  b.resv().unlock();
}

TEST(BufferCpuAccessTest, CallsExporterThenNeedsNoWaitWithoutFences) {
  auto c = counters();
  BufferPtr b = fakeBuffer(c);
  ASSERT_TRUE(b->beginCpuAccess(DmaDirection::Bidirectional).ok());
  ASSERT_TRUE(b->endCpuAccess(DmaDirection::Bidirectional).ok());
  EXPECT_EQ(c->begin.load(), 1);
  EXPECT_EQ(c->end.load(), 1);
}

// Begins access in another thread and reports whether it waited for the fence: whether it
// returned only once the fence had signalled. The fence signals only once that thread sleeps
// (in beginCpuAccess) or has ended, so an access that does not wait has finished with the
// fence unsignalled, whatever the scheduling.
bool beginWaitsFor(const BufferPtr& b, DmaDirection dir, const FencePtr& fence) {
  testing_support::ThreadMark beginning;
  std::atomic<bool> done{false};
  bool signalledAtReturn = false;
  std::thread t([&] {
    beginning.mark();
    EXPECT_TRUE(b->beginCpuAccess(dir).ok());
    signalledAtReturn = fence->isSignaled();
    done = true;
  });
  (void)beginning.waitUntilAsleep();
  const bool finishedEarly = done.load();
  fence->signal();
  t.join();
  return !finishedEarly && signalledAtReturn;
}

TEST(BufferCpuAccessTest, ReadWaitsForWritersOnly) {
  Signaller s;
  BufferPtr b = fakeBuffer(counters());
  auto reader = s.timeline->createFence();
  addFence(*b, reader, ResvUsage::Read);
  // A read-only access does not wait for a reader.
  ASSERT_TRUE(b->beginCpuAccess(DmaDirection::FromDevice).ok());
  auto writer = s.timeline->createFence();
  addFence(*b, writer, ResvUsage::Write);
  EXPECT_TRUE(beginWaitsFor(b, DmaDirection::FromDevice, writer));
  reader->signal();
}

TEST(BufferCpuAccessTest, WriteWaitsForReaders) {
  Signaller s;
  BufferPtr b = fakeBuffer(counters());
  auto reader = s.timeline->createFence();
  addFence(*b, reader, ResvUsage::Read);
  EXPECT_TRUE(beginWaitsFor(b, DmaDirection::ToDevice, reader));
  auto reader2 = s.timeline->createFence();
  addFence(*b, reader2, ResvUsage::Read);
  EXPECT_TRUE(beginWaitsFor(b, DmaDirection::Bidirectional, reader2));
}

TEST(BufferCpuAccessTest, BookkeepIsNeverWaitedFor) {
  Signaller s;
  BufferPtr b = fakeBuffer(counters());
  auto bk = s.timeline->createFence();
  addFence(*b, bk, ResvUsage::Bookkeep);
  EXPECT_TRUE(b->beginCpuAccess(DmaDirection::Bidirectional).ok());
  bk->signal();
}

TEST(BufferCpuAccessTest, EndNeverWaits) {
  Signaller s;
  BufferPtr b = fakeBuffer(counters());
  auto writer = s.timeline->createFence();
  addFence(*b, writer, ResvUsage::Write);
  EXPECT_TRUE(b->endCpuAccess(DmaDirection::Bidirectional).ok());
  writer->signal();
}

TEST(BufferCpuAccessTest, ExporterErrorSkipsTheWait) {
  auto c = counters();
  auto info = withOps(fakeInfo(c), [](ExporterOps& o) {
    o.beginCpuAccess = [](Buffer&, DmaDirection) -> Result<void> {
      return Error(EIO, "fake_begin");
    };
  });
  auto b = Buffer::exportBuffer(std::move(info));
  ASSERT_TRUE(b.ok());
  Signaller s;
  auto writer = s.timeline->createFence();
  addFence(**b, writer, ResvUsage::Write);
  EXPECT_EQ((*b)->beginCpuAccess(DmaDirection::Bidirectional).code(), EIO);  // no hang
  writer->signal();
}

TEST(BufferCpuAccessTest, ScopeObjectEndsOnce) {
  auto c = counters();
  BufferPtr b = fakeBuffer(c);
  {
    auto access = CpuAccess::begin(b, DmaDirection::ToDevice);
    ASSERT_TRUE(access.ok());
    EXPECT_TRUE(access->active());
    CpuAccess moved = std::move(*access);
    EXPECT_EQ(c->end.load(), 0);
  }
  EXPECT_EQ(c->begin.load(), 1);
  EXPECT_EQ(c->end.load(), 1);
  auto access = CpuAccess::begin(b, DmaDirection::ToDevice);
  ASSERT_TRUE(access.ok());
  EXPECT_TRUE(access->end().ok());
  EXPECT_FALSE(access->active());
  EXPECT_TRUE(access->end().ok());
  EXPECT_EQ(c->end.load(), 2);
}

// --- mmap ------------------------------------------------------------------------------------

TEST(BufferMmapTest, RangeChecks) {
  auto c = counters();
  BufferPtr b = fakeBuffer(c, 4 * 4096);
  auto m = b->mmap(0, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(m.ok()) << m.error().describe();
  EXPECT_EQ(m->size(), 4U * 4096);
  EXPECT_TRUE(b->mmap(3, 4096, PROT_READ, MAP_SHARED).ok());
  EXPECT_EQ(b->mmap(3, 4097, PROT_READ, MAP_SHARED).code(), EINVAL);  // 2 pages from page 3
  EXPECT_EQ(b->mmap(4, 1, PROT_READ, MAP_SHARED).code(), EINVAL);
  EXPECT_EQ(b->mmap(0, 0, PROT_READ, MAP_SHARED).code(), EINVAL);
  EXPECT_EQ(b->mmap(~std::uint64_t{0}, 4096, PROT_READ, MAP_SHARED).code(), EOVERFLOW);
  EXPECT_EQ(c->mmap.load(), 2);
}

TEST(BufferMmapTest, NoMmapOpIsEinval) {
  auto c = counters();
  auto b = Buffer::exportBuffer(withOps(fakeInfo(c), [](ExporterOps& o) { o.mmap = nullptr; }));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->mmap(0, 4096, PROT_READ, MAP_SHARED).code(), EINVAL);
}

TEST(BufferMmapTest, ReadOnlyBufferRefusesWritableSharedMap) {
  auto c = counters();
  auto info = fakeInfo(c);
  info.flags = O_RDONLY;
  auto b = Buffer::exportBuffer(std::move(info));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED).code(), EACCES);
  EXPECT_TRUE((*b)->mmap(0, 4096, PROT_READ, MAP_SHARED).ok());
}

// --- vmap ------------------------------------------------------------------------------------

TEST(BufferVmapTest, RefcountedExporterCalledOnFirstAndLast) {
  auto c = counters();
  BufferPtr b = fakeBuffer(c);
  ASSERT_TRUE(b->resv().lock().ok());
  auto v1 = b->vmapLocked();
  auto v2 = b->vmapLocked();
  ASSERT_TRUE(v1.ok() && v2.ok());
  EXPECT_EQ(v1->data(), v2->data());
  EXPECT_EQ(c->vmap.load(), 1);
  EXPECT_EQ(b->vmapCount(), 2U);
  b->vunmapLocked();
  EXPECT_EQ(c->vunmap.load(), 0);
  b->vunmapLocked();
  EXPECT_EQ(c->vunmap.load(), 1);
  EXPECT_EQ(b->vmapCount(), 0U);
  b->resv().unlock();
}

TEST(BufferVmapTest, NoVmapOpIsEinval) {
  auto c = counters();
  auto b = Buffer::exportBuffer(withOps(fakeInfo(c), [](ExporterOps& o) { o.vmap = nullptr; }));
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)->resv().lock().ok());
  EXPECT_EQ((*b)->vmapLocked().code(), EINVAL);
  (*b)->resv().unlock();
}

}  // namespace
}  // namespace zbuf
