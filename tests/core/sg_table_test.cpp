#include "zbuf/core/sg_table.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "zbuf/core/device.h"

namespace zbuf {
namespace {

constexpr std::uint64_t kPage = 4096;

// `pages` 4 KiB pages of `mem`, physically adjacent when `contiguous`, else every other frame.
std::vector<PageRun> pagesOf(std::vector<std::byte>& mem, bool contiguous,
                             std::uint64_t physBase = 1ULL << 32) {
  std::vector<PageRun> runs;
  for (std::uint64_t i = 0; i < mem.size() / kPage; ++i) {
    runs.push_back({mem.data() + i * kPage, kPage, physBase + (contiguous ? i : 2 * i) * kPage});
  }
  return runs;
}

TEST(SgTableTest, TotalLengthAndDirection) {
  SgTable t({{0x1000, 10}, {0x3000, 20}}, DmaDirection::FromDevice);
  EXPECT_EQ(t.segmentCount(), 2U);
  EXPECT_EQ(t.totalLength(), 30U);
  EXPECT_EQ(t.direction(), DmaDirection::FromDevice);
  EXPECT_STREQ(toString(DmaDirection::ToDevice), "to-device");
}

TEST(SgTableTest, ContiguousPagesMergeUpToMaxSegmentSize) {
  std::vector<std::byte> mem(64 * kPage);  // 256 KiB
  auto runs = pagesOf(mem, true);
  EXPECT_EQ(countSegments(runs, 64 * 1024), 4U);
  EXPECT_EQ(countSegments(runs, 1ULL << 30), 1U);
  auto dev = Device::create({.name = "d", .maxSegmentSize = 64 * 1024});
  auto t = mapPageRuns(*dev, runs, DmaDirection::Bidirectional);
  ASSERT_TRUE(t.ok()) << t.error().describe();
  EXPECT_EQ(t->segmentCount(), 4U);
  EXPECT_EQ(t->totalLength(), mem.size());
  for (const SgSegment& s : t->segments()) {
    EXPECT_EQ(s.length, 64U * 1024);
  }
  EXPECT_EQ(dev->iommu().mappedRanges(), 4U);
  unmapSgTable(*dev, *t);
  EXPECT_EQ(dev->iommu().mappedRanges(), 0U);
  EXPECT_TRUE(t->empty());
}

TEST(SgTableTest, ScatteredPagesGiveOneSegmentEach) {
  std::vector<std::byte> mem(16 * kPage);
  auto runs = pagesOf(mem, false);
  EXPECT_EQ(countSegments(runs, 1ULL << 30), 16U);
}

TEST(SgTableTest, HostAdjacencyAloneDoesNotMerge) {
  std::vector<std::byte> mem(2 * kPage);
  std::vector<PageRun> runs = {{mem.data(), kPage, 0x100000}, {mem.data() + kPage, kPage, 0x80000}};
  EXPECT_EQ(countSegments(runs, 1ULL << 30), 2U);
}

TEST(SgTableTest, LargeRunSplitsAtMaxSegmentSize) {
  std::vector<std::byte> mem(2 * 1024 * 1024);
  std::vector<PageRun> runs = {{mem.data(), mem.size(), 1ULL << 33}};
  EXPECT_EQ(countSegments(runs, 64 * 1024), 32U);
  EXPECT_EQ(countSegments(runs, 4ULL << 20), 1U);
}

TEST(SgTableTest, SegmentsTranslateBackToThePages) {
  std::vector<std::byte> mem(8 * kPage);
  for (std::size_t i = 0; i < mem.size(); ++i) {
    mem[i] = static_cast<std::byte>(i * 7);
  }
  auto runs = pagesOf(mem, false);
  auto dev = Device::create({.name = "d"});
  auto t = mapPageRuns(*dev, runs, DmaDirection::ToDevice);
  ASSERT_TRUE(t.ok());
  std::uint64_t offset = 0;
  for (const SgSegment& s : t->segments()) {
    auto host = dev->iommu().translate(s.dmaAddress, s.length, false);
    ASSERT_TRUE(host.ok());
    EXPECT_EQ(std::memcmp(host->data(), mem.data() + offset, s.length), 0);
    offset += s.length;
  }
  EXPECT_EQ(offset, mem.size());
  unmapSgTable(*dev, *t);
}

TEST(SgTableTest, BeyondDmaMaskIsEinval) {
  std::vector<std::byte> mem(4 * kPage);
  auto runs = pagesOf(mem, true, 1ULL << 32);  // above 4 GiB
  auto dev32 = Device::create({.name = "dma32", .dmaMask = 0xffffffffULL});
  auto t = mapPageRuns(*dev32, runs, DmaDirection::Bidirectional);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.code(), EINVAL);
  EXPECT_NE(t.error().message().find("DMA mask"), std::string::npos);
  EXPECT_EQ(dev32->iommu().mappedRanges(), 0U);
  auto low = pagesOf(mem, true, 1ULL << 20);
  auto ok = mapPageRuns(*dev32, low, DmaDirection::Bidirectional);
  ASSERT_TRUE(ok.ok());
  unmapSgTable(*dev32, *ok);
}

TEST(SgTableTest, NoScatterGatherNeedsOneSegment) {
  std::vector<std::byte> mem(4 * kPage);
  auto dev = Device::create({.name = "nosg", .maxSegmentSize = 1 << 20, .scatterGather = false});
  auto scattered = mapPageRuns(*dev, pagesOf(mem, false), DmaDirection::Bidirectional);
  EXPECT_EQ(scattered.code(), EINVAL);
  auto contiguous = mapPageRuns(*dev, pagesOf(mem, true), DmaDirection::Bidirectional);
  ASSERT_TRUE(contiguous.ok());
  EXPECT_EQ(contiguous->segmentCount(), 1U);
  unmapSgTable(*dev, *contiguous);
}

TEST(SgTableTest, EmptyRunListIsEinval) {
  auto dev = Device::create({.name = "d"});
  EXPECT_EQ(mapPageRuns(*dev, {}, DmaDirection::Bidirectional).code(), EINVAL);
}

}  // namespace
}  // namespace zbuf
