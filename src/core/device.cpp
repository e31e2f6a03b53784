// Device: its configuration and its IOMMU (iommu.cpp).
#include "zbuf/core/device.h"

#include <fmt/format.h>

#include "zbuf/base/sys.h"

namespace zbuf {

struct Device::Private {};

std::shared_ptr<Device> Device::create(DeviceConfig config) {
  return std::make_shared<Device>(Private{}, std::move(config));
}

Device::Device(Private /*key*/, DeviceConfig config)
    : config_(std::move(config)), iommu_(std::make_unique<Iommu>()) {}

Device::~Device() = default;

}  // namespace zbuf
