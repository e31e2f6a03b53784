// The huge-page heap. Tests that need huge pages reserve a few when running as root (and give
// them back afterwards); otherwise they are skipped with the reason. The error path (more
// pages than are free) runs everywhere.
#include "zbuf/heaps/huge_page_heap.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "heaps/huge_pages.h"
#include "zbuf/heaps/heap.h"

namespace zbuf {
namespace {

constexpr std::uint64_t kHuge = HugePageHeap::kPageSize;
constexpr std::uint64_t kWanted = 4;  // huge pages these tests need

class HugePageHeapTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { reservation_ = new test::HugePageReservation(kWanted); }
  static void TearDownTestSuite() {
    delete reservation_;
    reservation_ = nullptr;
  }
  void requireHugePages() {
    if (HugePageHeap::freeHugePages() < kWanted) {
      GTEST_SKIP() << "needs " << kWanted
                   << " free 2 MiB huge pages: none reserved and not root to reserve them "
                      "(echo N > /proc/sys/vm/nr_hugepages)";
    }
  }
  static inline test::HugePageReservation* reservation_ = nullptr;
};

TEST_F(HugePageHeapTest, ListedAsAHeap) {
  auto h = findHeap("hugepage");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->get(), HugePageHeap::instance().get());
}

TEST_F(HugePageHeapTest, TooManyPagesIsEnomemWithHowToReserve) {
  const std::uint64_t pages = HugePageHeap::freeHugePages() + 1;
  auto r = HugePageHeap::instance()->allocate(pages * kHuge);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ENOMEM);
  EXPECT_NE(r.error().message().find("echo N > /proc/sys/vm/nr_hugepages"), std::string::npos)
      << r.error().message();
}

TEST_F(HugePageHeapTest, AllocationErrorsAreEinval) {
  auto heap = HugePageHeap::instance();
  EXPECT_EQ(heap->allocate(0).code(), EINVAL);
  EXPECT_EQ(heap->allocate(kHuge, O_RDWR, 2).code(), EINVAL);
  EXPECT_EQ(heap->allocate(kHuge, O_RDWR | O_APPEND).code(), EINVAL);
}

TEST_F(HugePageHeapTest, AllocatesRoundedTo2MiB) {
  requireHugePages();
  auto b = HugePageHeap::instance()->allocate(1);
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ((*b)->size(), kHuge);
  EXPECT_EQ((*b)->exporterName(), "hugepage");
  auto m = (*b)->mmap(0, kHuge, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(m.ok()) << m.error().describe();
  EXPECT_EQ(m->data()[kHuge - 1], std::byte{0});
  m->data()[0] = std::byte{7};
  auto seals = sys::getSeals((*b)->fd().get());
  ASSERT_TRUE(seals.ok());
  EXPECT_NE(*seals & F_SEAL_SHRINK, 0);
}

TEST_F(HugePageHeapTest, OneSegmentPerHugePageCappedByMaxSegmentSize) {
  requireHugePages();
  auto b = HugePageHeap::instance()->allocate(2 * kHuge);
  ASSERT_TRUE(b.ok()) << b.error().describe();
  auto big = Device::create({.name = "big", .maxSegmentSize = 1ULL << 30});
  auto small = Device::create({.name = "small"});  // 64 KiB segments
  auto a1 = (*b)->attach(big);
  auto a2 = (*b)->attach(small);
  ASSERT_TRUE(a1.ok() && a2.ok());
  auto m1 = MappedAttachment::create(*a1, DmaDirection::Bidirectional);
  auto m2 = MappedAttachment::create(*a2, DmaDirection::Bidirectional);
  ASSERT_TRUE(m1.ok() && m2.ok());
  EXPECT_EQ(m1->table().segmentCount(), 2U);
  EXPECT_EQ(m2->table().segmentCount(), 2 * kHuge / (64 * 1024));
}

TEST_F(HugePageHeapTest, ModelledPagesGiveOneSegmentPer2MiB) {
  auto b = HugePageHeap::instance()->allocateModelled(3 * kHuge - 1);
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ((*b)->size(), 3 * kHuge);
  EXPECT_EQ((*b)->exporterName(), "hugepage-modelled");
  auto dev = Device::create({.name = "big", .maxSegmentSize = 1ULL << 30});
  auto a = (*b)->attach(dev);
  ASSERT_TRUE(a.ok());
  auto m = MappedAttachment::create(*a, DmaDirection::Bidirectional);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->table().segmentCount(), 3U);
  EXPECT_EQ(HugePageHeap::instance()->allocateModelled(0).code(), EINVAL);
}

}  // namespace
}  // namespace zbuf
