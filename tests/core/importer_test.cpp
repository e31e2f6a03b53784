// ctest-labels: concurrency
// The importer mechanics every importing driver shares (core/importer.h): an ImportedBuffer
// attaches and maps under the lock and undoes each step on failure; a FenceSlot waits for the
// conflicting fences with the reservation lock held (the kernel's policy), gives EBUSY once its
// budget is spent, and publishes a fence by adding it and unlocking.
#include "zbuf/core/importer.h"

#include <gtest/gtest.h>

#include <thread>

#include "core/fake_exporter.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;
using test::fakeBuffer;
using test::FakeCounters;

std::shared_ptr<Device> device(bool coherent = true) {
  DeviceConfig c{.name = "importer", .maxSegmentSize = 1 << 20};
  c.coherent = coherent;
  return Device::create(c);
}

// Publishes `fence` on `b` through a slot that conflicts with nothing pending.
bool publish(Buffer& b, const FencePtr& fence, ResvUsage usage) {
  auto slot = FenceSlot::reserve(b.resv(), ResvUsage::Write, 0ms, true, "op");
  if (!slot.ok()) {
    return false;
  }
  slot->publish(fence, usage);
  return true;
}

TEST(ImportedBuffer, AttachesAndMapsUnderTheLockAndReleasesOnce) {
  auto c = std::make_shared<FakeCounters>();
  BufferPtr b = fakeBuffer(c);
  {
    auto imported = ImportedBuffer::create(b, device(), DmaDirection::FromDevice, false, "op");
    ASSERT_TRUE(imported.ok()) << imported.error().describe();
    EXPECT_TRUE(imported->isImported());
    EXPECT_EQ(imported->buffer(), b);
    EXPECT_EQ(imported->direction(), DmaDirection::FromDevice);
    EXPECT_FALSE(imported->table().empty());
    EXPECT_EQ(c->attach.load(), 1);
    EXPECT_EQ(c->map.load(), 1);
    EXPECT_EQ(c->mapWithoutLock.load(), 0);
    EXPECT_EQ(b->attachments().size(), 1U);
    ImportedBuffer moved = std::move(*imported);  // the moved-from one releases nothing
    EXPECT_EQ(c->unmap.load(), 0);
    moved.release();
    EXPECT_FALSE(moved.isImported());
    EXPECT_EQ(c->unmap.load(), 1);
    EXPECT_EQ(c->detach.load(), 1);
    moved.release();  // twice: nothing
  }
  EXPECT_EQ(c->unmap.load(), 1);
  EXPECT_EQ(c->detach.load(), 1);
  EXPECT_EQ(c->mapWithoutLock.load(), 0);
  EXPECT_TRUE(b->attachments().empty());
  // Destruction releases too.
  {
    auto imported = ImportedBuffer::create(b, device(), DmaDirection::ToDevice, false, "op");
    ASSERT_TRUE(imported.ok());
  }
  EXPECT_EQ(c->unmap.load(), 2);
  EXPECT_EQ(c->detach.load(), 2);
}

TEST(ImportedBuffer, EachFailureIsReturnedAndUndone) {
  auto c = std::make_shared<FakeCounters>();
  BufferPtr b = fakeBuffer(c);
  EXPECT_EQ(ImportedBuffer::create(nullptr, device(), DmaDirection::FromDevice, false, "op").code(),
            EINVAL);
  // A non-coherent device keeps its mapping: the exporter must offer begin/end device access.
  EXPECT_EQ(ImportedBuffer::create(b, device(false), DmaDirection::FromDevice, false, "op").code(),
            EINVAL);
  EXPECT_EQ(c->attach.load(), 1);
  EXPECT_EQ(c->detach.load(), 1);
  EXPECT_EQ(c->map.load(), 0);
  c->mapError = ENOMEM;
  EXPECT_EQ(ImportedBuffer::create(b, device(), DmaDirection::FromDevice, false, "op").code(),
            ENOMEM);
  EXPECT_EQ(c->detach.load(), 2);
  c->mapError = 0;
  c->attachError = EIO;
  EXPECT_EQ(ImportedBuffer::create(b, device(), DmaDirection::FromDevice, false, "op").code(), EIO);
  EXPECT_TRUE(b->attachments().empty());
}

TEST(ImportedBuffer, ANonBlockingImportOfALockedBufferIsEbusyAndUndone) {
  auto c = std::make_shared<FakeCounters>();
  BufferPtr b = fakeBuffer(c);
  std::thread holder;
  {
    const ResvLock held(b->resv());
    holder = std::thread([&] {
      auto r = ImportedBuffer::create(b, device(), DmaDirection::FromDevice, true, "attach_op");
      EXPECT_EQ(r.code(), EBUSY);
      EXPECT_EQ(r.ok() ? "" : r.error().op(), std::string("attach_op"));
    });
    holder.join();
  }
  EXPECT_EQ(c->map.load(), 0);
  EXPECT_EQ(c->attach.load(), c->detach.load());
  EXPECT_TRUE(b->attachments().empty());
}

TEST(FenceSlot, PublishAddsTheFenceAndUnlocks) {
  BufferPtr b = fakeBuffer(std::make_shared<FakeCounters>());
  auto timeline = Timeline::create("importer", "test");
  FencePtr fence = timeline->createFence();
  auto slot = FenceSlot::reserve(b->resv(), ResvUsage::Write, 10ms, false, "op");
  ASSERT_TRUE(slot.ok()) << slot.error().describe();
  slot->publish(fence, ResvUsage::Write);
  EXPECT_FALSE(b->resv().testSignaled(ResvUsage::Write));
  ASSERT_EQ(b->resv().getFences(ResvUsage::Write).size(), 1U);
  EXPECT_EQ(b->resv().getFences(ResvUsage::Write).front(), fence);
  ASSERT_TRUE(b->resv().trylock()) << "publish must unlock";
  b->resv().unlock();
  fence->signal();
}

TEST(FenceSlot, AnAbandonedSlotAddsNothingAndUnlocks) {
  BufferPtr b = fakeBuffer(std::make_shared<FakeCounters>());
  {
    auto slot = FenceSlot::reserve(b->resv(), ResvUsage::Write, 10ms, false, "op");
    ASSERT_TRUE(slot.ok());
    EXPECT_FALSE(b->resv().trylock());  // held by the slot
  }
  ASSERT_TRUE(b->resv().trylock());
  b->resv().unlock();
  EXPECT_TRUE(b->resv().getFences(ResvUsage::Read).empty());
}

TEST(FenceSlot, APendingConflictIsEbusyOnceTheBudgetIsSpent) {
  BufferPtr b = fakeBuffer(std::make_shared<FakeCounters>());
  auto timeline = Timeline::create("importer", "test");
  FencePtr writer = timeline->createFence();
  ASSERT_TRUE(publish(*b, writer, ResvUsage::Write));
  // Non-blocking: no wait at all; blocking: the budget.
  auto nonblocking = FenceSlot::reserve(b->resv(), usageRw(false), 5000ms, true, "enqueue_op");
  EXPECT_EQ(nonblocking.code(), EBUSY);
  auto blocking = FenceSlot::reserve(b->resv(), usageRw(false), 20ms, false, "enqueue_op");
  EXPECT_EQ(blocking.code(), EBUSY);
  // A reader's slot does not conflict with a reader: only writers count for it.
  FencePtr reader = timeline->createFence();
  writer->signal();
  ASSERT_TRUE(publish(*b, reader, ResvUsage::Read));
  EXPECT_TRUE(FenceSlot::reserve(b->resv(), usageRw(false), 0ms, true, "op").ok());
  // A writer's slot waits for readers too.
  EXPECT_EQ(FenceSlot::reserve(b->resv(), usageRw(true), 0ms, true, "op").code(), EBUSY);
  ASSERT_TRUE(b->resv().trylock()) << "a failed reserve must not keep the lock";
  b->resv().unlock();
  reader->signal();
}

TEST(FenceSlot, WaitsForTheConflictWithTheLockHeld) {
  BufferPtr b = fakeBuffer(std::make_shared<FakeCounters>());
  auto timeline = Timeline::create("importer", "test");
  FencePtr writer = timeline->createFence();
  ASSERT_TRUE(publish(*b, writer, ResvUsage::Write));
  bool lockHeldWhileWaiting = false;
  std::thread signaller([&] {
    // The waiter has the lock once trylock fails; it is then in (or about to enter) its wait,
    // which only this signal ends.
    while (b->resv().trylock()) {
      b->resv().unlock();
      std::this_thread::yield();
    }
    lockHeldWhileWaiting = true;
    writer->signal();
  });
  auto slot = FenceSlot::reserve(b->resv(), usageRw(true), 10s, false, "op");
  signaller.join();
  ASSERT_TRUE(slot.ok()) << slot.error().describe();
  EXPECT_TRUE(lockHeldWhileWaiting);
  EXPECT_FALSE(b->resv().trylock());  // still held: the slot is not published yet
  slot->abandon();
}

}  // namespace
}  // namespace zbuf
