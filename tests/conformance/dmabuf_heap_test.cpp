// Mirrors tools/testing/selftests/dmabuf-heaps/dmabuf-heap.c on zbuf's heaps, through the
// driver API: the DMA_BUF_IOCTL_SYNC brackets are CpuAccess scopes, the vgem importer is an
// emulated device that attaches and maps. The "invalid heap fd" and the older/newer ioctl
// struct-size cases belong to the uAPI layer and are mirrored there.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>

#include "heaps/huge_pages.h"
#include "zbuf/heaps/heap.h"
#include "zbuf/heaps/huge_page_heap.h"

namespace zbuf {
namespace {

constexpr std::uint64_t kOneMeg = 1024 * 1024;

class DmabufHeapTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() { reservation_ = new test::HugePageReservation(4); }
  static void TearDownTestSuite() {
    delete reservation_;
    reservation_ = nullptr;
  }
  void SetUp() override {
    auto h = findHeap(GetParam());
    ASSERT_TRUE(h.ok());
    heap_ = *h;
    if (GetParam() == HugePageHeap::kName && HugePageHeap::freeHugePages() < 2) {
      GTEST_SKIP() << "no free 2 MiB huge pages and not root to reserve them (echo N > "
                      "/proc/sys/vm/nr_hugepages); the system heap runs the same scenarios";
    }
  }
  HeapPtr heap_;
  static inline test::HugePageReservation* reservation_ = nullptr;
};

// test_alloc_and_import
TEST_P(DmabufHeapTest, AllocAndImport) {
  auto b = heap_->allocate(kOneMeg, O_RDWR | O_CLOEXEC, 0);
  ASSERT_TRUE(b.ok()) << b.error().describe();
  auto p = (*b)->mmap(0, kOneMeg, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(p.ok()) << p.error().describe();
  {
    auto sync = CpuAccess::begin(*b, DmaDirection::Bidirectional);
    ASSERT_TRUE(sync.ok());
    std::memset(p->data(), 1, kOneMeg / 2);
    std::memset(p->data() + kOneMeg / 2, 0, kOneMeg / 2);
    ASSERT_TRUE(sync->end().ok());
  }
  // The importer (vgem in the selftest): an emulated device attaches and maps.
  auto dev = Device::create({.name = "vgem", .maxSegmentSize = 1ULL << 30});
  auto a = (*b)->attach(dev);
  ASSERT_TRUE(a.ok());
  auto m = MappedAttachment::create(*a, DmaDirection::Bidirectional);
  ASSERT_TRUE(m.ok()) << m.error().describe();
  auto seen = dev->iommu().translate(m->table().segments()[0].dmaAddress, 1, false);
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ((*seen)[0], std::byte{1});
  {
    auto sync = CpuAccess::begin(*b, DmaDirection::Bidirectional);
    ASSERT_TRUE(sync.ok());
    std::memset(p->data(), 0xff, kOneMeg);
    ASSERT_TRUE(sync->end().ok());
  }
  EXPECT_EQ((*seen)[0], std::byte{0xff});
}

// test_alloc_zeroed
TEST_P(DmabufHeapTest, AllocZeroed) {
  const std::uint64_t size = GetParam() == HugePageHeap::kName ? HugePageHeap::kPageSize : 4096;
  const int count = GetParam() == HugePageHeap::kName ? 2 : 32;
  for (int round = 0; round < 2; ++round) {
    std::vector<BufferPtr> bufs;
    for (int i = 0; i < count; ++i) {
      auto b = heap_->allocate(size);
      ASSERT_TRUE(b.ok()) << b.error().describe();
      auto p = (*b)->mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED);
      ASSERT_TRUE(p.ok());
      auto sync = CpuAccess::begin(*b, DmaDirection::Bidirectional);
      ASSERT_TRUE(sync.ok());
      for (std::uint64_t j = 0; j < size; ++j) {
        ASSERT_EQ(p->data()[j], std::byte{0}) << "round " << round << " buffer " << i;
      }
      std::memset(p->data(), 0xff, size);
      bufs.push_back(std::move(*b));
    }
  }
}

// test_alloc_errors (heap flags, fd flags) and the observed len rules.
TEST_P(DmabufHeapTest, AllocErrors) {
  EXPECT_EQ(heap_->allocate(kOneMeg, O_RDWR | O_CLOEXEC, 0x111111).code(), EINVAL);
  EXPECT_EQ(heap_->allocate(kOneMeg, ~(O_RDWR | O_CLOEXEC), 0).code(), EINVAL);
  EXPECT_EQ(heap_->allocate(0, O_RDWR | O_CLOEXEC, 0).code(), EINVAL);
}

TEST_P(DmabufHeapTest, LenOneGivesOnePage) {
  auto b = heap_->allocate(1);
  ASSERT_TRUE(b.ok()) << b.error().describe();
  const std::uint64_t page = GetParam() == HugePageHeap::kName ? HugePageHeap::kPageSize : 4096;
  EXPECT_EQ((*b)->size(), page);
}

INSTANTIATE_TEST_SUITE_P(Heaps, DmabufHeapTest, ::testing::Values("system", "hugepage"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace zbuf
