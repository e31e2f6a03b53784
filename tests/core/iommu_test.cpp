#include "zbuf/core/iommu.h"

#include <gtest/gtest.h>

#include <vector>

namespace zbuf {
namespace {

TEST(IommuTest, MapTranslateUnmap) {
  std::vector<std::byte> mem(3 * 4096);
  Iommu iommu;
  auto iova = iommu.map(mem, DmaDirection::Bidirectional);
  ASSERT_TRUE(iova.ok()) << iova.error().describe();
  EXPECT_GE(*iova, Iommu::kIovaBase);
  EXPECT_EQ(iommu.mappedRanges(), 1U);
  auto host = iommu.translate(*iova + 100, 200, true);
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->data(), mem.data() + 100);
  EXPECT_EQ(host->size(), 200U);
  ASSERT_TRUE(iommu.unmap(*iova).ok());
  EXPECT_EQ(iommu.mappedRanges(), 0U);
  EXPECT_EQ(iommu.translate(*iova, 1, false).code(), EFAULT);
}

TEST(IommuTest, EmptyRangeIsEinval) {
  Iommu iommu;
  EXPECT_EQ(iommu.map({}, DmaDirection::ToDevice).code(), EINVAL);
}

TEST(IommuTest, UnknownIovaUnmapIsEinval) {
  Iommu iommu;
  EXPECT_EQ(iommu.unmap(12345).code(), EINVAL);
}

TEST(IommuTest, KeepsOffsetWithinPage) {
  std::vector<std::byte> mem(8192);
  Iommu iommu;
  auto iova = iommu.map({mem.data() + 1, 10}, DmaDirection::ToDevice);
  ASSERT_TRUE(iova.ok());
  EXPECT_EQ(*iova & 4095, reinterpret_cast<std::uintptr_t>(mem.data() + 1) & 4095);
}

TEST(IommuTest, FaultsOutsideAnyMapping) {
  std::vector<std::byte> mem(4096);
  Iommu iommu;
  auto iova = iommu.map(mem, DmaDirection::Bidirectional);
  ASSERT_TRUE(iova.ok());
  EXPECT_EQ(iommu.translate(Iommu::kIovaBase - 1, 1, false).code(), EFAULT);  // below all
  EXPECT_EQ(iommu.translate(*iova + 4000, 200, false).code(), EFAULT);        // runs past end
  EXPECT_EQ(iommu.translate(*iova + 4096, 1, false).code(), EFAULT);          // guard page
  EXPECT_EQ(iommu.faults(), 3U);
}

TEST(IommuTest, RangesDoNotTouch) {
  std::vector<std::byte> a(4096);
  std::vector<std::byte> b(4096);
  Iommu iommu;
  auto ia = iommu.map(a, DmaDirection::Bidirectional);
  auto ib = iommu.map(b, DmaDirection::Bidirectional);
  ASSERT_TRUE(ia.ok() && ib.ok());
  EXPECT_GT(*ib, *ia + 4096);
  // An access spanning the end of a into the guard page faults rather than reaching b.
  EXPECT_EQ(iommu.translate(*ia, 8192, false).code(), EFAULT);
}

TEST(IommuTest, DirectionViolationsAreEperm) {
  std::vector<std::byte> mem(4096);
  Iommu iommu;
  auto toDev = iommu.map(mem, DmaDirection::ToDevice);
  auto fromDev = iommu.map(mem, DmaDirection::FromDevice);
  ASSERT_TRUE(toDev.ok() && fromDev.ok());
  EXPECT_TRUE(iommu.translate(*toDev, 16, false).ok());
  EXPECT_EQ(iommu.translate(*toDev, 16, true).code(), EPERM);
  EXPECT_TRUE(iommu.translate(*fromDev, 16, true).ok());
  EXPECT_EQ(iommu.translate(*fromDev, 16, false).code(), EPERM);
}

}  // namespace
}  // namespace zbuf
