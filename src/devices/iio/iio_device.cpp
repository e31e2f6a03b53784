// IioDevice and IioBufferFile.
#include "zbuf/devices/iio/iio_device.h"

#include <fmt/format.h>

#include "zbuf/devices/iio/iio_buffer_file.h"

namespace zbuf::iio {

struct IioDevice::Private {};
struct IioBufferFile::Private {};

Result<std::shared_ptr<IioDevice>> IioDevice::create(IioDeviceConfig config) {
  ZBUF_TRY(config.format.validate());
  if (config.buffers == 0) {
    return Error(EINVAL, "iio_device_create", fmt::format("{}: no buffers", config.name));
  }
  auto device = std::make_shared<IioDevice>(Private{}, std::move(config));
  const IioDeviceConfig& c = device->config_;
  for (unsigned i = 0; i < c.buffers; ++i) {
    IioBufferParams params;
    params.direction = c.direction;
    params.format = c.format;
    params.pattern = c.pattern;
    params.sampleRate = c.sampleRate;
    params.mode = c.mode;
    params.length = c.length;
    params.fileioBlocks = c.fileioBlocks;
    params.dmaIdleSpin = c.dmaIdleSpin;
    params.dmabuf = c.dmabuf;
    params.enqueueTimeout = c.enqueueTimeout;
    params.engineName =
        fmt::format("iio{}-dma{}", c.direction == IioDirection::Input ? "in" : "out", i);
    ZBUF_ASSIGN_OR_RETURN(auto buffer, IioBuffer::create(device->device_, i, params));
    device->buffers_.push_back(std::move(buffer));
  }
  return device;
}

IioDevice::IioDevice(Private /*key*/, IioDeviceConfig config) : config_(std::move(config)) {
  DeviceConfig dma = config_.dma;
  if (dma.name.empty()) {
    dma.name = config_.name;
  }
  device_ = Device::create(std::move(dma));
}

IioDevice::~IioDevice() {
  // Buffers first: each stops its engine before its queues release their mappings.
  buffers_.clear();
}

Result<IioBuffer*> IioDevice::buffer(unsigned index) const {
  if (index >= buffers_.size()) {
    return Error(
        ENODEV, "iio_device_buffer",
        fmt::format("{} has {} buffer(s), no index {}", config_.name, buffers_.size(), index));
  }
  return buffers_[index].get();
}

Result<std::unique_ptr<IioBufferFile>> IioDevice::openBuffer(unsigned index) {
  ZBUF_ASSIGN_OR_RETURN(auto b, buffer(index));
  if (!b->tryOpen()) {
    return Error(EBUSY, "iio_device_buffer_getfd",
                 fmt::format("{} buffer {} is already open", config_.name, index));
  }
  return std::make_unique<IioBufferFile>(IioBufferFile::Private{}, shared_from_this(), *b);
}

IioBufferFile::IioBufferFile(Private /*key*/, std::shared_ptr<IioDevice> device, IioBuffer& buffer)
    : device_(std::move(device)), buffer_(buffer) {}

IioBufferFile::~IioBufferFile() {
  buffer_.detachAllDmabufs();
  buffer_.close();
}

Result<std::size_t> IioBufferFile::read(std::span<std::byte> out) {
  return buffer_.read(out, nonBlocking());
}

Result<std::size_t> IioBufferFile::write(std::span<const std::byte> in) {
  return buffer_.write(in, nonBlocking());
}

Result<void> IioBufferFile::attach(const BufferPtr& buffer) {
  return buffer_.attachDmabuf(buffer, nonBlocking());
}

Result<void> IioBufferFile::detach(const Buffer& buffer) {
  return buffer_.detachDmabuf(buffer);
}

Result<FencePtr> IioBufferFile::enqueue(const Buffer& buffer, std::uint64_t bytesUsed,
                                        std::uint32_t flags) {
  return buffer_.enqueueDmabuf(buffer, flags, bytesUsed, nonBlocking());
}

}  // namespace zbuf::iio
