// IioBuffer (devices/iio/iio_buffer.h) through its C++ API: the length and watermark
// attributes (the minimum of 2, the watermark at half, EINVAL and EBUSY), enable and disable
// twice being no-ops, the fileio block size, the direction errors of read() and write(), the
// DMABUF interface's EPERM without support, and the busy bit of GET_FD.
#include "zbuf/devices/iio/iio_buffer.h"

#include <gtest/gtest.h>

#include <array>
#include <memory>

#include "zbuf/devices/iio/iio_device.h"
#include "zbuf/heaps/system_heap.h"

namespace zbuf::iio {
namespace {

// 4096 frames of 8 bytes: 4 fileio blocks of 8 KiB.
std::shared_ptr<IioDevice> makeDevice(IioDirection dir = IioDirection::Input, bool dmabuf = true) {
  IioDeviceConfig c;
  c.name = dir == IioDirection::Input ? "adc" : "dac";
  c.direction = dir;
  c.length = 4096;
  c.dmabuf = dmabuf;
  return IioDevice::create(c).value();
}

TEST(IioBuffer, DirectionsHaveNames) {
  EXPECT_STREQ(toString(IioDirection::Input), "input");
  EXPECT_STREQ(toString(IioDirection::Output), "output");
}

TEST(IioBuffer, LengthHasAMinimumOfTwoAndSetsTheWatermarkToHalf) {
  auto device = makeDevice();
  IioBuffer& b = *device->buffer(0).value();
  EXPECT_EQ(b.length(), 4096U);
  EXPECT_EQ(b.fileioBlockBytes(), 8U * 1024);
  ASSERT_TRUE(b.setLength(1).ok());
  EXPECT_EQ(b.length(), 2U);  // buffer-dma's minimum
  ASSERT_TRUE(b.setLength(8192).ok());
  EXPECT_EQ(b.length(), 8192U);
  EXPECT_EQ(b.watermark(), 4096U);
  EXPECT_EQ(b.fileioBlockBytes(), 16U * 1024);
}

TEST(IioBuffer, WatermarkIsEinvalForZeroOrMoreThanTheLength) {
  auto device = makeDevice();
  IioBuffer& b = *device->buffer(0).value();
  EXPECT_EQ(b.setWatermark(0).code(), EINVAL);
  EXPECT_EQ(b.setWatermark(4097).code(), EINVAL);
  ASSERT_TRUE(b.setWatermark(4096).ok());
  EXPECT_EQ(b.watermark(), 4096U);
  ASSERT_TRUE(b.setWatermark(1).ok());
  EXPECT_EQ(b.watermark(), 1U);
}

TEST(IioBuffer, AttributesAreEbusyWhileEnabledAndEnableTwiceIsANoOp) {
  auto device = makeDevice();
  IioBuffer& b = *device->buffer(0).value();
  EXPECT_FALSE(b.enabled());
  ASSERT_TRUE(b.enable().ok());
  ASSERT_TRUE(b.enable().ok());
  EXPECT_TRUE(b.enabled());
  EXPECT_EQ(b.setLength(1024).code(), EBUSY);
  EXPECT_EQ(b.setWatermark(16).code(), EBUSY);
  EXPECT_EQ(b.length(), 4096U);
  b.disable();
  b.disable();
  EXPECT_FALSE(b.enabled());
  EXPECT_TRUE(b.setLength(1024).ok());
}

TEST(IioBuffer, ReadAndWriteAreEpermInTheWrongDirection) {
  std::array<std::byte, 64> bytes{};
  auto adc = makeDevice(IioDirection::Input);
  IioBuffer& in = *adc->buffer(0).value();
  EXPECT_EQ(in.write(bytes, false).code(), EPERM);
  EXPECT_EQ(in.read(bytes, false).value(), 0U);  // disabled: end of file
  auto dac = makeDevice(IioDirection::Output);
  IioBuffer& out = *dac->buffer(0).value();
  EXPECT_FALSE(out.isInput());
  EXPECT_EQ(out.read(bytes, false).code(), EPERM);
}

TEST(IioBuffer, AttachWithoutDmabufSupportIsEperm) {
  auto device = makeDevice(IioDirection::Input, false);
  IioBuffer& b = *device->buffer(0).value();
  EXPECT_FALSE(b.dmabufSupported());
  BufferPtr buffer = SystemHeap::instance()->allocate(4096).value();
  EXPECT_EQ(b.attachDmabuf(buffer, false).code(), EPERM);
  EXPECT_EQ(b.stats().dmabufAttached, 0U);
}

TEST(IioBuffer, AttachTwiceIsEbusyAndDetachingWhatIsNotAttachedIsEperm) {
  auto device = makeDevice();
  IioBuffer& b = *device->buffer(0).value();
  BufferPtr buffer = SystemHeap::instance()->allocate(4096).value();
  EXPECT_EQ(b.detachDmabuf(*buffer).code(), EPERM);
  ASSERT_TRUE(b.attachDmabuf(buffer, false).ok());
  EXPECT_EQ(b.attachDmabuf(buffer, false).code(), EBUSY);
  EXPECT_EQ(b.stats().dmabufAttached, 1U);
  ASSERT_TRUE(b.detachDmabuf(*buffer).ok());
  EXPECT_EQ(b.stats().dmabufAttached, 0U);
  EXPECT_EQ(b.detachDmabuf(*buffer).code(), EPERM);
}

TEST(IioBuffer, EnqueueIsEinvalForUnknownFlagsAndCyclicOnInput) {
  auto device = makeDevice();
  IioBuffer& b = *device->buffer(0).value();
  BufferPtr buffer = SystemHeap::instance()->allocate(4096).value();
  ASSERT_TRUE(b.attachDmabuf(buffer, false).ok());
  EXPECT_EQ(b.enqueueDmabuf(*buffer, 0x80, 4096, false).code(), EINVAL);
  EXPECT_EQ(b.enqueueDmabuf(*buffer, kDmabufCyclic, 4096, false).code(), EINVAL);
  EXPECT_EQ(b.stats().dmabufEnqueued, 0U);
}

TEST(IioBuffer, TryOpenIsTheBusyBitOfGetFd) {
  auto device = makeDevice();
  IioBuffer& b = *device->buffer(0).value();
  EXPECT_TRUE(b.tryOpen());
  EXPECT_FALSE(b.tryOpen());
  b.close();
  EXPECT_TRUE(b.tryOpen());
  b.close();
}

}  // namespace
}  // namespace zbuf::iio
