#include "zbuf/heaps/system_heap.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>

#include "zbuf/base/sys.h"

namespace zbuf {
namespace {

constexpr std::uint64_t kPage = 4096;

TEST(SystemHeapTest, AllocatesPageRoundedZeroedSealedMemfd) {
  auto b = SystemHeap::instance()->allocate(1);
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ((*b)->size(), kPage);
  EXPECT_EQ((*b)->exporterName(), "system");
  auto st = sys::fstat((*b)->fd().get());
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, kPage);
  auto seals = sys::getSeals((*b)->fd().get());
  ASSERT_TRUE(seals.ok());
  EXPECT_NE(*seals & F_SEAL_SHRINK, 0);
  EXPECT_NE(*seals & F_SEAL_GROW, 0);
  EXPECT_FALSE(sys::ftruncate((*b)->fd().get(), 0).ok());  // cannot shrink
  auto m = (*b)->mmap(0, kPage, PROT_READ, MAP_SHARED);
  ASSERT_TRUE(m.ok());
  for (std::byte x : m->bytes()) {
    ASSERT_EQ(x, std::byte{0});
  }
}

TEST(SystemHeapTest, ErrorsAreEinval) {
  auto heap = SystemHeap::instance();
  EXPECT_EQ(heap->allocate(0).code(), EINVAL);
  EXPECT_EQ(heap->allocate(kPage, O_RDWR | O_CLOEXEC, 1).code(), EINVAL);            // heap flags
  EXPECT_EQ(heap->allocate(kPage, O_RDWR | O_CLOEXEC | O_NONBLOCK).code(), EINVAL);  // fd flags
  EXPECT_EQ(heap->allocate(kPage, ~(O_RDWR | O_CLOEXEC)).code(), EINVAL);
}

TEST(SystemHeapTest, RefusesWhatCannotBeBacked) {
  auto r = SystemHeap::instance()->allocate(1ULL << 60);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ENOMEM);
  EXPECT_NE(r.error().message().find("can be backed"), std::string::npos);
}

// The kernel page-aligns the length first: within a page of 2^64 it wraps to 0 (EINVAL); the
// largest length that does not wrap is merely too big (ENOMEM).
TEST(SystemHeapTest, ALengthThatPageAlignsToZeroIsEinval) {
  auto heap = SystemHeap::instance();
  const std::uint64_t page = sys::pageSize();
  EXPECT_EQ(heap->allocate(~std::uint64_t{0}).code(), EINVAL);
  EXPECT_EQ(heap->allocate(~std::uint64_t{0} - (page - 2)).code(), EINVAL);  // 2^64 - page + 1
  EXPECT_EQ(heap->allocate(~std::uint64_t{0} - (page - 1)).code(), ENOMEM);  // 2^64 - page
}

TEST(SystemHeapTest, MmapSharesMemoryAndMapsPrivatelyCopyOnWrite) {
  auto b = SystemHeap::instance()->allocate(4 * kPage);
  ASSERT_TRUE(b.ok());
  auto m1 = (*b)->mmap(0, 4 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED);
  auto m2 = (*b)->mmap(2, kPage, PROT_READ, MAP_SHARED);
  ASSERT_TRUE(m1.ok() && m2.ok());
  std::memset(m1->data() + 2 * kPage, 0x5a, kPage);
  EXPECT_EQ(m2->data()[100], std::byte{0x5a});
  // A private mapping sees the buffer's bytes; its own writes stay in it (6.12's system heap).
  auto priv = (*b)->mmap(2, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE);
  ASSERT_TRUE(priv.ok()) << priv.error().describe();
  EXPECT_EQ(priv->data()[100], std::byte{0x5a});
  priv->data()[100] = std::byte{0x11};
  EXPECT_EQ(m2->data()[100], std::byte{0x5a});
  EXPECT_EQ((*b)->mmap(4, kPage, PROT_READ, MAP_SHARED).code(), EINVAL);
}

TEST(SystemHeapTest, ReadOnlyAllocationIsAReadOnlyFileOfTheSameBuffer) {
  auto b = SystemHeap::instance()->allocate(kPage, O_RDONLY);
  ASSERT_TRUE(b.ok());
  auto fl = sys::getFileFlags((*b)->fd().get());
  ASSERT_TRUE(fl.ok());
  EXPECT_EQ(*fl & O_ACCMODE, O_RDONLY);
  EXPECT_EQ((*b)->mmap(0, kPage, PROT_READ | PROT_WRITE, MAP_SHARED).code(), EACCES);
  // Installed as a dma-buf file it is found again: tests/uapi/buffer_file_test.cpp.
}

TEST(SystemHeapTest, MapsAsScattered4KiBPages) {
  auto b = SystemHeap::instance()->allocate(64 * kPage);
  ASSERT_TRUE(b.ok());
  auto dev = Device::create({.name = "dev", .maxSegmentSize = 1ULL << 30});
  auto a = (*b)->attach(dev);
  ASSERT_TRUE(a.ok());
  auto m = MappedAttachment::create(*a, DmaDirection::Bidirectional);
  ASSERT_TRUE(m.ok()) << m.error().describe();
  EXPECT_EQ(m->table().segmentCount(), 64U);
  EXPECT_EQ(m->table().totalLength(), 64U * kPage);
  // The device sees the bytes the CPU wrote.
  auto cpu = (*b)->mmap(0, 64 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(cpu.ok());
  cpu->data()[5 * kPage + 7] = std::byte{0x42};
  const SgSegment& seg = m->table().segments()[5];
  auto host = dev->iommu().translate(seg.dmaAddress + 7, 1, false);
  ASSERT_TRUE(host.ok());
  EXPECT_EQ((*host)[0], std::byte{0x42});
}

TEST(SystemHeapTest, Dma32DeviceIsRefused) {
  auto b = SystemHeap::instance()->allocate(kPage);
  ASSERT_TRUE(b.ok());
  auto dev = Device::create({.name = "dma32", .dmaMask = 0xffffffffULL});
  auto a = (*b)->attach(dev);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->mapUnlocked(DmaDirection::ToDevice).code(), EINVAL);
}

TEST(SystemHeapTest, VmapIsTheWholeBuffer) {
  auto b = SystemHeap::instance()->allocate(2 * kPage);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE((*b)->resv().lock().ok());
  auto v = (*b)->vmapLocked();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->size(), 2 * kPage);
  (*v)[kPage] = std::byte{9};
  (*b)->vunmapLocked();
  (*b)->resv().unlock();
  auto m = (*b)->mmap(1, kPage, PROT_READ, MAP_SHARED);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->data()[0], std::byte{9});
}

}  // namespace
}  // namespace zbuf
