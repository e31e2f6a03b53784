// DmaDescriptor (devices/dma/dma_descriptor.h): the vec list and its total, the per-submission
// length and cyclic flag, the vecs of a mapping, and the results before any submission. The
// engine's use of it is tested with the engine (dma_engine_test.cpp).
#include "zbuf/devices/dma/dma_descriptor.h"

#include <gtest/gtest.h>

#include <vector>

#include "zbuf/core/sg_table.h"

namespace zbuf::dma {
namespace {

TEST(DmaDescriptor, TheVecsAddUpAndLengthZeroMeansAllOfThem) {
  DmaDescriptor d;
  EXPECT_EQ(d.totalLength(), 0U);
  EXPECT_TRUE(d.vecs().empty());
  d.setVecs({{0x1000, 4096}, {0x8000, 512}, {0x20000, 100}});
  ASSERT_EQ(d.vecs().size(), 3U);
  EXPECT_EQ(d.vecs()[1].addr, 0x8000U);
  EXPECT_EQ(d.totalLength(), 4096U + 512 + 100);
  EXPECT_EQ(d.length(), d.totalLength());  // bytes_used 0: the whole list
  d.setLength(1000);
  EXPECT_EQ(d.length(), 1000U);
  d.setLength(0);
  EXPECT_EQ(d.length(), d.totalLength());
  // A new list replaces the old one and its total.
  d.setVecs({{0x4000, 64}});
  EXPECT_EQ(d.totalLength(), 64U);
  EXPECT_EQ(d.vecs().size(), 1U);
}

TEST(DmaDescriptor, CyclicIsPerSubmission) {
  DmaDescriptor d;
  EXPECT_FALSE(d.cyclic());
  d.setCyclic(true);
  EXPECT_TRUE(d.cyclic());
  d.setCyclic(false);
  EXPECT_FALSE(d.cyclic());
}

TEST(DmaDescriptor, AMappingGivesOneVecPerSegmentInBufferOrder) {
  const SgTable table({{0x10000, 8192}, {0x30000, 4096}, {0x18000, 4096}},
                      DmaDirection::FromDevice);
  const std::vector<DmaVec> vecs = DmaDescriptor::vecsFrom(table);
  ASSERT_EQ(vecs.size(), 3U);
  EXPECT_EQ(vecs[0].addr, 0x10000U);
  EXPECT_EQ(vecs[0].len, 8192U);
  EXPECT_EQ(vecs[1].addr, 0x30000U);
  EXPECT_EQ(vecs[2].addr, 0x18000U);
  EXPECT_EQ(vecs[2].len, 4096U);
  EXPECT_TRUE(DmaDescriptor::vecsFrom(SgTable{}).empty());
}

TEST(DmaDescriptor, NothingHasRunBeforeTheFirstSubmission) {
  DmaDescriptor d;
  d.setVecs({{0x1000, 4096}});
  EXPECT_EQ(d.passes(), 0U);
  EXPECT_EQ(d.bytesTransferred(), 0U);
  EXPECT_EQ(d.streamOffset(), 0U);
  EXPECT_EQ(d.user, nullptr);
}

}  // namespace
}  // namespace zbuf::dma
