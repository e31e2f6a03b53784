#include "zbuf/core/device.h"

#include <gtest/gtest.h>

#include <vector>

namespace zbuf {
namespace {

TEST(DeviceTest, CreateKeepsConfig) {
  auto dev = Device::create({.name = "adc0",
                             .coherent = false,
                             .dmaMask = 0xffffffffULL,
                             .maxSegmentSize = 1 << 20,
                             .scatterGather = false});
  EXPECT_EQ(dev->name(), "adc0");
  EXPECT_FALSE(dev->coherent());
  EXPECT_EQ(dev->dmaMask(), 0xffffffffULL);
  EXPECT_EQ(dev->maxSegmentSize(), 1U << 20);
  EXPECT_FALSE(dev->scatterGather());
  EXPECT_EQ(dev->iommu().mappedRanges(), 0U);
}

TEST(DeviceTest, DefaultsMatchTheKernel) {
  auto dev = Device::create({.name = "d"});
  EXPECT_TRUE(dev->coherent());
  EXPECT_EQ(dev->dmaMask(), ~std::uint64_t{0});
  EXPECT_EQ(dev->maxSegmentSize(), 64U * 1024);
}

}  // namespace
}  // namespace zbuf
