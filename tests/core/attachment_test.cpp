#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "core/fake_exporter.h"
#include "support/thread_state.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/fence.h"

// ctest-labels: concurrency

namespace zbuf {
namespace {

using test::fakeBuffer;
using test::FakeCounters;

std::shared_ptr<FakeCounters> counters() {
  return std::make_shared<FakeCounters>();
}
std::shared_ptr<Device> device(const char* name = "dev") {
  return Device::create({.name = name, .maxSegmentSize = 1 << 20});
}

ImporterOps dynamicImporter(std::atomic<int>* moves) {
  ImporterOps ops;
  ops.allowPeer2peer = true;
  ops.moveNotify = [moves](Attachment&) { ++*moves; };
  return ops;
}

// --- attach / detach -------------------------------------------------------------------------

TEST(AttachmentTest, AttachListsAndDetachRemoves) {
  auto c = counters();
  BufferPtr b = fakeBuffer(c);
  auto a1 = b->attach(device("a"));
  auto a2 = b->attach(device("b"));
  ASSERT_TRUE(a1.ok() && a2.ok());
  EXPECT_EQ(c->attach.load(), 2);
  EXPECT_EQ(b->attachments().size(), 2U);
  EXPECT_EQ(&(*a1)->buffer(), b.get());
  EXPECT_EQ((*a1)->device().name(), "a");
  EXPECT_FALSE((*a1)->isDynamic());
  EXPECT_FALSE((*a1)->peer2peer());
  b->detach(*a1);
  EXPECT_EQ(c->detach.load(), 1);
  ASSERT_EQ(b->attachments().size(), 1U);
  EXPECT_EQ(b->attachments()[0]->device().name(), "b");
  b->detach(*a1);  // twice: ignored
  EXPECT_EQ(c->detach.load(), 1);
}

TEST(AttachmentTest, AttachmentKeepsBufferAliveAndDropDetaches) {
  auto c = counters();
  BufferPtr b = fakeBuffer(c);
  auto a = b->attach(device());
  ASSERT_TRUE(a.ok());
  AttachmentPtr att = std::move(*a);
  Buffer* raw = b.get();
  b.reset();
  EXPECT_EQ(c->release.load(), 0);  // the attachment holds the buffer
  EXPECT_EQ(raw->attachments().size(), 1U);
  att.reset();  // dropped without detach: detached, then the buffer goes
  EXPECT_EQ(c->detach.load(), 1);
  EXPECT_EQ(c->release.load(), 1);
}

TEST(AttachmentTest, DynamicImporterNeedsMoveNotify) {
  BufferPtr b = fakeBuffer(counters());
  ImporterOps noMove;
  auto a = b->attach(device(), &noMove);
  EXPECT_EQ(a.code(), EINVAL);
  EXPECT_TRUE(b->attachments().empty());
  std::atomic<int> moves{0};
  auto imp = dynamicImporter(&moves);
  auto ok = b->attach(device(), &imp);
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE((*ok)->isDynamic());
  EXPECT_TRUE((*ok)->peer2peer());
}

TEST(AttachmentTest, NullDeviceIsEinval) {
  BufferPtr b = fakeBuffer(counters());
  EXPECT_EQ(b->attach(nullptr).code(), EINVAL);
}

TEST(AttachmentTest, ExporterMayRefuseAttach) {
  auto c = counters();
  c->attachError = EBUSY;
  BufferPtr b = fakeBuffer(c);
  EXPECT_EQ(b->attach(device()).code(), EBUSY);
  EXPECT_TRUE(b->attachments().empty());
  EXPECT_EQ(c->detach.load(), 0);  // a refused attach is never detached
}

// --- map rules -------------------------------------------------------------------------------

TEST(AttachmentMapTest, MapGivesSegmentsTheDeviceCanTranslate) {
  auto c = counters();
  BufferPtr b = fakeBuffer(c, 8 * 4096);
  auto dev = device();
  auto a = b->attach(dev);
  ASSERT_TRUE(a.ok());
  auto t = (*a)->mapUnlocked(DmaDirection::ToDevice);
  ASSERT_TRUE(t.ok()) << t.error().describe();
  EXPECT_EQ(t->segmentCount(), 8U);  // scattered 4 KiB pages
  EXPECT_EQ(t->totalLength(), 8U * 4096);
  EXPECT_EQ((*a)->mapCount(), 1U);
  EXPECT_TRUE(dev->iommu().translate(t->segments()[0].dmaAddress, 4096, false).ok());
  (*a)->unmapUnlocked(*t, DmaDirection::ToDevice);
  EXPECT_EQ((*a)->mapCount(), 0U);
  EXPECT_EQ(dev->iommu().mappedRanges(), 0U);
  EXPECT_EQ(c->map.load(), 1);
  EXPECT_EQ(c->unmap.load(), 1);
}

TEST(AttachmentMapTest, StaticImporterOfPinnableExporterIsPinnedWhileMapped) {
  auto c = counters();
  BufferPtr b = fakeBuffer(c, 4096, /*dynamic=*/true);
  ASSERT_TRUE(b->isDynamic());
  auto a = b->attach(device());
  ASSERT_TRUE(a.ok());
  auto t = (*a)->mapUnlocked(DmaDirection::Bidirectional);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(c->pin.load(), 1);
  EXPECT_TRUE((*a)->pinned());
  (*a)->unmapUnlocked(*t, DmaDirection::Bidirectional);
  EXPECT_EQ(c->unpin.load(), 1);
  EXPECT_FALSE((*a)->pinned());
}

TEST(AttachmentMapTest, PinFailureFailsTheMap) {
  auto c = counters();
  c->pinError = ENOMEM;
  BufferPtr b = fakeBuffer(c, 4096, true);
  auto a = b->attach(device());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->mapUnlocked(DmaDirection::Bidirectional).code(), ENOMEM);
  EXPECT_EQ(c->map.load(), 0);
}

TEST(AttachmentMapTest, MapFailureUnpins) {
  auto c = counters();
  c->mapError = ENOMEM;
  BufferPtr b = fakeBuffer(c, 4096, true);
  auto a = b->attach(device());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->mapUnlocked(DmaDirection::Bidirectional).code(), ENOMEM);
  EXPECT_EQ(c->pin.load(), 1);
  EXPECT_EQ(c->unpin.load(), 1);
  EXPECT_FALSE((*a)->pinned());
}

TEST(AttachmentMapTest, DynamicImporterIsNotPinnedByMap) {
  auto c = counters();
  BufferPtr b = fakeBuffer(c, 4096, true);
  std::atomic<int> moves{0};
  auto imp = dynamicImporter(&moves);
  auto a = b->attach(device(), &imp);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b->resv().lock().ok());
  auto t = (*a)->mapLocked(DmaDirection::Bidirectional);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(c->pin.load(), 0);
  (*a)->unmapLocked(*t, DmaDirection::Bidirectional);
  EXPECT_EQ(c->unpin.load(), 0);
  b->resv().unlock();
}

TEST(AttachmentMapTest, StaticImporterWaitsForKernelFences) {
  BufferPtr b = fakeBuffer(counters());
  auto tl = Timeline::create("test", "kernel");
  auto kernelFence = tl->createFence();
  auto writer = tl->createFence(100);
  ASSERT_TRUE(b->resv().lock().ok());
  ASSERT_TRUE(b->resv().reserveFencesLocked(2).ok());
  b->resv().addFenceLocked(kernelFence, ResvUsage::Kernel);
  b->resv().addFenceLocked(writer, ResvUsage::Write);  // not waited for by map
  b->resv().unlock();
  auto a = b->attach(device());
  ASSERT_TRUE(a.ok());
  std::atomic<bool> mapped{false};
  testing_support::ThreadMark mapping;
  std::thread t([&] {
    mapping.mark();
    auto table = (*a)->mapUnlocked(DmaDirection::Bidirectional);
    EXPECT_TRUE(table.ok());
    EXPECT_TRUE(kernelFence->isSignaled()) << "the map returned before the kernel fence";
    mapped = true;
    (*a)->unmapUnlocked(*table, DmaDirection::Bidirectional);
  });
  // Asleep in the map (waiting for the kernel fence), or ended: then it did not wait.
  (void)mapping.waitUntilAsleep();
  EXPECT_FALSE(mapped.load());
  kernelFence->signal();
  t.join();
  EXPECT_TRUE(mapped.load());
  writer->signal();
}

TEST(AttachmentMapTest, DynamicImporterDoesNotWaitForKernelFences) {
  BufferPtr b = fakeBuffer(counters());
  auto tl = Timeline::create("test", "kernel");
  auto kernelFence = tl->createFence();
  std::atomic<int> moves{0};
  auto imp = dynamicImporter(&moves);
  auto a = b->attach(device(), &imp);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b->resv().lock().ok());
  ASSERT_TRUE(b->resv().reserveFencesLocked(1).ok());
  b->resv().addFenceLocked(kernelFence, ResvUsage::Kernel);
  auto t = (*a)->mapLocked(DmaDirection::Bidirectional);  // returns at once
  ASSERT_TRUE(t.ok());
  (*a)->unmapLocked(*t, DmaDirection::Bidirectional);
  b->resv().unlock();
  kernelFence->signal();
}

TEST(AttachmentMapTest, BeyondDmaMaskIsEinvalNotBounced) {
  auto c = counters();
  auto info = test::fakeInfo(c, 4096);
  static_cast<test::FakePriv*>(info.priv.get())->physBase = 1ULL << 36;
  auto b = Buffer::exportBuffer(std::move(info));
  ASSERT_TRUE(b.ok());
  auto dev32 = Device::create({.name = "dma32", .dmaMask = 0xffffffffULL});
  auto a = (*b)->attach(dev32);
  ASSERT_TRUE(a.ok());
  auto t = (*a)->mapUnlocked(DmaDirection::Bidirectional);
  EXPECT_EQ(t.code(), EINVAL);
  EXPECT_EQ((*a)->mapCount(), 0U);
  EXPECT_EQ(dev32->iommu().mappedRanges(), 0U);
}

TEST(AttachmentMapTest, MapAfterDetachIsEinval) {
  BufferPtr b = fakeBuffer(counters());
  auto a = b->attach(device());
  ASSERT_TRUE(a.ok());
  b->detach(*a);
  EXPECT_EQ((*a)->mapUnlocked(DmaDirection::Bidirectional).code(), EINVAL);
}

TEST(AttachmentMapTest, ScopeObjectUnmaps) {
  auto c = counters();
  BufferPtr b = fakeBuffer(c, 4096, true);
  auto dev = device();
  auto a = b->attach(dev);
  ASSERT_TRUE(a.ok());
  {
    auto m = MappedAttachment::create(*a, DmaDirection::FromDevice);
    ASSERT_TRUE(m.ok());
    EXPECT_TRUE(m->isMapped());
    EXPECT_EQ(m->table().direction(), DmaDirection::FromDevice);
    MappedAttachment moved = std::move(*m);
    EXPECT_EQ(dev->iommu().mappedRanges(), 1U);
  }
  EXPECT_EQ(dev->iommu().mappedRanges(), 0U);
  EXPECT_EQ(c->unmap.load(), 1);
  EXPECT_EQ(c->unpin.load(), 1);
  EXPECT_EQ(MappedAttachment::create(nullptr, DmaDirection::ToDevice).code(), EINVAL);
}

TEST(AttachmentMapTest, ExporterMapRunsWithTheResvLockHeld) {
  auto c = counters();
  BufferPtr b = fakeBuffer(c);
  auto a = b->attach(device());
  ASSERT_TRUE(a.ok());
  auto m = MappedAttachment::create(*a, DmaDirection::Bidirectional);
  ASSERT_TRUE(m.ok());
  m->reset();
  EXPECT_EQ(c->map.load(), 1);
  EXPECT_EQ(c->unmap.load(), 1);
  EXPECT_EQ(c->mapWithoutLock.load(), 0);
}

TEST(AttachmentMapTest, ConcurrentAttachMapDetach) {
  auto c = counters();
  BufferPtr b = fakeBuffer(c, 4 * 4096, /*dynamic=*/true);
  constexpr int kThreads = 4;
  constexpr int kRounds = 200;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto dev = device(t % 2 == 0 ? "even" : "odd");
      for (int i = 0; i < kRounds; ++i) {
        auto a = b->attach(dev);
        ASSERT_TRUE(a.ok());
        {
          auto m = MappedAttachment::create(*a, DmaDirection::Bidirectional);
          ASSERT_TRUE(m.ok());
          EXPECT_EQ(m->table().segmentCount(), 4U);
        }
        (void)b->attachments();
        b->detach(*a);
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_TRUE(b->attachments().empty());
  EXPECT_EQ(c->attach.load(), kThreads * kRounds);
  EXPECT_EQ(c->detach.load(), kThreads * kRounds);
  EXPECT_EQ(c->pin.load(), c->unpin.load());
  EXPECT_EQ(c->mapWithoutLock.load(), 0);
}

// --- pin / move_notify -----------------------------------------------------------------------

TEST(AttachmentPinTest, DynamicImportersPin) {
  auto c = counters();
  BufferPtr b = fakeBuffer(c, 4096, true);
  std::atomic<int> moves{0};
  auto imp = dynamicImporter(&moves);
  auto dyn = b->attach(device(), &imp);
  auto stat = b->attach(device());
  ASSERT_TRUE(dyn.ok() && stat.ok());
  ASSERT_TRUE(b->resv().lock().ok());
  EXPECT_EQ((*stat)->pinLocked().code(), EINVAL);
  ASSERT_TRUE((*dyn)->pinLocked().ok());
  EXPECT_TRUE((*dyn)->pinned());
  EXPECT_EQ(c->pin.load(), 1);
  (*dyn)->unpinLocked();
  EXPECT_FALSE((*dyn)->pinned());
  EXPECT_EQ(c->unpin.load(), 1);
  (*dyn)->unpinLocked();  // unbalanced: ignored
  EXPECT_EQ(c->unpin.load(), 1);
  b->resv().unlock();
}

TEST(AttachmentPinTest, PinErrorIsReturned) {
  auto c = counters();
  c->pinError = EBUSY;
  BufferPtr b = fakeBuffer(c, 4096, true);
  std::atomic<int> moves{0};
  auto imp = dynamicImporter(&moves);
  auto dyn = b->attach(device(), &imp);
  ASSERT_TRUE(dyn.ok());
  ASSERT_TRUE(b->resv().lock().ok());
  EXPECT_EQ((*dyn)->pinLocked().code(), EBUSY);
  EXPECT_FALSE((*dyn)->pinned());
  b->resv().unlock();
}

TEST(AttachmentPinTest, MoveNotifyReachesDynamicAttachmentsOnly) {
  BufferPtr b = fakeBuffer(counters(), 4096, true);
  std::atomic<int> moves{0};
  auto imp = dynamicImporter(&moves);
  auto d1 = b->attach(device(), &imp);
  auto d2 = b->attach(device(), &imp);
  auto s = b->attach(device());
  ASSERT_TRUE(d1.ok() && d2.ok() && s.ok());
  ASSERT_TRUE(b->resv().lock().ok());
  b->moveNotifyLocked();
  b->resv().unlock();
  EXPECT_EQ(moves.load(), 2);
}

}  // namespace
}  // namespace zbuf
