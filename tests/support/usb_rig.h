// UsbRig: a FunctionFS function with one IN and one OUT endpoint, bound to a USB link whose
// host has configured it, and the endpoint files open, for the link and host tests.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "zbuf/devices/pattern.h"
#include "zbuf/devices/usb/functionfs.h"
#include "zbuf/devices/usb/host.h"
#include "zbuf/devices/usb/link.h"

namespace zbuf::testing_support {

inline constexpr unsigned kUsbIn = 1;
inline constexpr unsigned kUsbOut = 2;

struct UsbRig {
  explicit UsbRig(usb::LinkConfig lc = {}, usb::HostConfig hc = {})
      : link(usb::UsbLink::create(lc)), host(link, hc), function(usb::FunctionFs::create()) {
    EXPECT_TRUE(function->bind(link).ok());
    EXPECT_TRUE(host.configure().ok());
    in = std::move(function->open(kUsbIn).value());
    out = std::move(function->open(kUsbOut).value());
  }
  // The ramp pattern's `n` bytes at stream offset `offset`.
  [[nodiscard]] std::vector<std::byte> pattern(std::uint64_t offset, std::size_t n) const {
    std::vector<std::byte> v(n);
    PatternGenerator(SampleFormat{}, PatternKind::Ramp).fill(v, offset);
    return v;
  }
  std::shared_ptr<usb::UsbLink> link;
  usb::UsbHost host;
  std::shared_ptr<usb::FunctionFs> function;
  std::unique_ptr<usb::EndpointFile> in;
  std::unique_ptr<usb::EndpointFile> out;
};

}  // namespace zbuf::testing_support
