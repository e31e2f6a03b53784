#include "zbuf/core/page_run.h"

#include <gtest/gtest.h>

#include <vector>

namespace zbuf {
namespace {

constexpr std::uint64_t kPage = 4096;

TEST(PageRunTest, ReservedRangesAreAlignedDisjointAndAbove4GiB) {
  const std::uint64_t a = reservePhysical(3 * kPage, kPage);
  const std::uint64_t b = reservePhysical(kPage, 2 * 1024 * 1024);
  EXPECT_GE(a, 1ULL << 32);
  EXPECT_EQ(a % kPage, 0U);
  EXPECT_EQ(b % (2 * 1024 * 1024), 0U);
  EXPECT_GE(b, a + 3 * kPage);          // never reused, never overlapping
  EXPECT_GT(reservePhysical(1, 0), b);  // align 0 is taken as 1
}

TEST(PageRunTest, ScatteredRunsTakeEveryOtherFrame) {
  std::vector<std::byte> mem(3 * kPage + 100);
  const std::uint64_t base = reservePhysical(2 * mem.size(), kPage);
  auto runs = scatteredPageRuns(mem, kPage, base);
  ASSERT_EQ(runs.size(), 4U);
  for (std::size_t i = 0; i < runs.size(); ++i) {
    EXPECT_EQ(runs[i].host, mem.data() + i * kPage);
    EXPECT_EQ(runs[i].physAddress, base + 2 * i * kPage);
  }
  EXPECT_EQ(runs[0].length, kPage);
  EXPECT_EQ(runs[3].length, 100U);  // the last page is short
}

}  // namespace
}  // namespace zbuf
