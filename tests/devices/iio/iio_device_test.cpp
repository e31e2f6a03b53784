// IioDevice (devices/iio/iio_device.h) through its C++ API: creating one (EINVAL for a bad
// config), its buffers (ENODEV out of range), openBuffer() as IIO_BUFFER_GET_FD_IOCTL (ENODEV,
// EBUSY, free again once the file is gone), and files keeping the device alive.
#include "zbuf/devices/iio/iio_device.h"

#include <gtest/gtest.h>

#include <memory>

#include "zbuf/devices/iio/iio_buffer_file.h"

namespace zbuf::iio {
namespace {

IioDeviceConfig twoBuffers() {
  IioDeviceConfig c;
  c.name = "adc";
  c.length = 4096;
  c.buffers = 2;
  return c;
}

// Creating a device is the board's work, not an application's: there is no file for it.
TEST(IioDevice, CreateRejectsBadConfigs) {
  IioDeviceConfig config;
  config.buffers = 0;
  EXPECT_EQ(IioDevice::create(config).code(), EINVAL);
  config.buffers = 1;
  config.format.channels = 0;
  EXPECT_EQ(IioDevice::create(config).code(), EINVAL);
}

TEST(IioDevice, ItHasOneBufferPerConfiguredBufferAndEnodevBeyond) {
  auto device = IioDevice::create(twoBuffers()).value();
  EXPECT_EQ(device->name(), "adc");
  EXPECT_EQ(device->direction(), IioDirection::Input);
  ASSERT_EQ(device->bufferCount(), 2U);
  for (unsigned i = 0; i < 2; ++i) {
    auto b = device->buffer(i);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ((*b)->index(), i);
    EXPECT_TRUE((*b)->isInput());
    EXPECT_EQ((*b)->frameBytes(), device->format().frameBytes());
  }
  EXPECT_EQ(device->buffer(2).code(), ENODEV);
  ASSERT_NE(device->dmaDevice(), nullptr);
  EXPECT_EQ(device->dmaDevice()->name(), "adc");  // an empty DMA device name becomes the name
}

TEST(IioDevice, OpenBufferIsEnodevOutOfRangeAndEbusyWhileOpen) {
  auto device = IioDevice::create(twoBuffers()).value();
  EXPECT_EQ(device->openBuffer(2).code(), ENODEV);
  auto first = device->openBuffer(0);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(&(*first)->buffer(), device->buffer(0).value());
  EXPECT_EQ(device->openBuffer(0).code(), EBUSY);
  auto second = device->openBuffer(1);  // each buffer has its own busy bit
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(&(*second)->buffer(), device->buffer(1).value());
  first->reset();  // closing the file frees the buffer
  EXPECT_TRUE(device->openBuffer(0).ok());
}

TEST(IioDevice, AnOpenFileKeepsTheDeviceAlive) {
  auto device = IioDevice::create(twoBuffers()).value();
  std::weak_ptr<IioDevice> weak = device;
  auto file = std::move(device->openBuffer(0).value());
  device.reset();
  ASSERT_FALSE(weak.expired());
  EXPECT_EQ(file->device(), weak.lock());
  EXPECT_EQ(file->device()->name(), "adc");
  file.reset();
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace zbuf::iio
