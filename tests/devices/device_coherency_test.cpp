// ctest-labels: concurrency
// Coherency at the device level: a non-coherent ADC, DAC, USB IN and USB OUT endpoint each
// move correct data because the IIO and FunctionFS emulations bracket every transfer with
// begin/end device access; each forgotten step gives stale data at the checking end unless a
// CPU bracket covers it; a dynamic exporter's buffer is refused (EINVAL) by a non-coherent
// device that keeps its mapping, and accepted by a coherent one.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include "core/fake_exporter.h"
#include "zbuf/devices/iio/iio_buffer_file.h"
#include "zbuf/devices/iio/iio_device.h"
#include "zbuf/devices/pattern.h"
#include "zbuf/devices/usb/functionfs.h"
#include "zbuf/devices/usb/host.h"
#include "zbuf/heaps/system_heap.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kBlock = 64 * 1024;

BufferPtr allocate() {
  return SystemHeap::instance()->allocate(kBlock).value();
}

sys::Mapping mapBuffer(const BufferPtr& b) {
  return std::move(b->mmap(0, b->size(), PROT_READ | PROT_WRITE, MAP_SHARED).value());
}

std::uint64_t mismatches(const BufferPtr& b, std::uint64_t streamOffset) {
  auto map = mapBuffer(b);
  return PatternChecker(SampleFormat{}, PatternKind::Ramp)
      .countMismatches(map.bytes(), streamOffset);
}

void fill(const BufferPtr& b, std::uint64_t streamOffset) {
  auto map = mapBuffer(b);
  PatternGenerator(SampleFormat{}, PatternKind::Ramp).fill(map.bytes(), streamOffset);
}

struct Iio {
  explicit Iio(iio::IioDirection dir, bool coherent) {
    iio::IioDeviceConfig config;
    config.direction = dir;
    config.length = 4096;
    config.dma.coherent = coherent;
    device = iio::IioDevice::create(config).value();
    file = std::move(device->openBuffer(0).value());
  }
  void forget(bool begin, bool end) const { device->dmaDevice()->forgetDeviceAccess(begin, end); }
  // Enables the buffer on first use (after the attaches: enabled first means fileio).
  FencePtr enqueue(const BufferPtr& b) {
    if (!enabled) {
      EXPECT_TRUE(file->buffer().enable().ok());
      enabled = true;
    }
    auto f = file->enqueue(*b, kBlock);
    EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().describe());
    EXPECT_TRUE((*f)->wait().ok());
    return *f;
  }
  std::shared_ptr<iio::IioDevice> device;
  std::unique_ptr<iio::IioBufferFile> file;
  bool enabled = false;
};

TEST(AdcCoherency, ANonCoherentAdcDeliversEveryBlockThroughItsEndAccess) {
  Iio adc(iio::IioDirection::Input, false);
  auto b = allocate();
  ASSERT_TRUE(adc.file->attach(b).ok());
  for (std::uint64_t round = 0; round < 3; ++round) {
    EXPECT_EQ(adc.enqueue(b)->status(), 1);
    EXPECT_EQ(mismatches(b, round * kBlock), 0U) << "round " << round;
  }
}

TEST(AdcCoherency, AForgottenEndAccessLeavesTheBlockInTheDevicesCache) {
  Iio adc(iio::IioDirection::Input, false);
  adc.forget(false, true);
  auto b = allocate();
  ASSERT_TRUE(adc.file->attach(b).ok());
  adc.enqueue(b);
  EXPECT_GT(mismatches(b, 0), 0U);  // the CPU sees the old memory
  // SYNC START syncs every mapping for the CPU: the CPU bracket covers the missing end.
  auto access = CpuAccess::begin(b, DmaDirection::FromDevice).value();
  EXPECT_EQ(mismatches(b, 0), 0U);
}

TEST(AdcCoherency, ACoherentAdcNeedsNoSync) {
  Iio adc(iio::IioDirection::Input, true);
  adc.forget(true, true);
  auto b = allocate();
  ASSERT_TRUE(adc.file->attach(b).ok());
  adc.enqueue(b);
  EXPECT_EQ(mismatches(b, 0), 0U);
}

TEST(DacCoherency, ANonCoherentDacReadsWhatTheCpuWroteThroughItsBeginAccess) {
  Iio dac(iio::IioDirection::Output, false);
  auto b = allocate();
  ASSERT_TRUE(dac.file->attach(b).ok());  // mapped (and its cache filled) before the CPU writes
  for (std::uint64_t round = 0; round < 2; ++round) {
    fill(b, round * kBlock);
    EXPECT_EQ(dac.enqueue(b)->status(), 1);
  }
  EXPECT_EQ(dac.file->buffer().stats().checkedBytes, 2 * kBlock);
  EXPECT_EQ(dac.file->buffer().stats().mismatches, 0U);
}

TEST(DacCoherency, AForgottenBeginAccessShowsTheDacStaleData) {
  Iio dac(iio::IioDirection::Output, false);
  dac.forget(true, false);
  auto b = allocate();
  ASSERT_TRUE(dac.file->attach(b).ok());
  fill(b, 0);
  dac.enqueue(b);
  EXPECT_GT(dac.file->buffer().stats().mismatches, 0U);
}

TEST(DacCoherency, ACpuWriteBracketCoversAForgottenBeginAccess) {
  Iio dac(iio::IioDirection::Output, false);
  dac.forget(true, false);
  auto b = allocate();
  ASSERT_TRUE(dac.file->attach(b).ok());
  {
    auto access = CpuAccess::begin(b, DmaDirection::ToDevice).value();
    fill(b, 0);
  }  // SYNC END syncs every mapping for the devices
  dac.enqueue(b);
  EXPECT_EQ(dac.file->buffer().stats().mismatches, 0U);
}

constexpr unsigned kIn = 1;
constexpr unsigned kOut = 2;

struct Usb {
  explicit Usb(bool coherent)
      : link(usb::UsbLink::create(usb::LinkConfig{.coherent = coherent})),
        host(link, {}),
        function(usb::FunctionFs::create()) {
    EXPECT_TRUE(function->bind(link).ok());
    EXPECT_TRUE(host.configure().ok());
    in = std::move(function->open(kIn).value());
    out = std::move(function->open(kOut).value());
  }
  void forget(bool begin, bool end) const { link->controller()->forgetDeviceAccess(begin, end); }
  std::shared_ptr<usb::UsbLink> link;
  usb::UsbHost host;
  std::shared_ptr<usb::FunctionFs> function;
  std::unique_ptr<usb::EndpointFile> in;
  std::unique_ptr<usb::EndpointFile> out;
};

TEST(UsbCoherency, ANonCoherentInEndpointSendsWhatTheCpuWrote) {
  for (const bool forgetBegin : {false, true}) {
    Usb usb(false);
    usb.forget(forgetBegin, false);
    auto b = allocate();
    ASSERT_TRUE(usb.in->attach(b).ok());
    fill(b, 0);
    auto f = usb.in->transfer(b, kBlock).value();
    ASSERT_TRUE(f->wait().ok());
    const usb::EndpointStats s = usb.host.stats(kIn);
    EXPECT_EQ(s.verifiedBytes, kBlock);
    if (forgetBegin) {
      EXPECT_GT(s.mismatches, 0U) << "the endpoint sent its stale cache";
    } else {
      EXPECT_EQ(s.mismatches, 0U);
    }
  }
}

TEST(UsbCoherency, ANonCoherentOutEndpointsWritesReachTheCpuThroughItsEndAccess) {
  for (const bool forgetEnd : {false, true}) {
    Usb usb(false);
    usb.forget(false, forgetEnd);
    auto b = allocate();
    ASSERT_TRUE(usb.out->attach(b).ok());
    auto f = usb.out->transfer(b, kBlock).value();
    usb.host.startSending(kOut, kBlock);
    ASSERT_TRUE(f->wait().ok());
    EXPECT_EQ(f->status(), 1);
    if (forgetEnd) {
      EXPECT_GT(mismatches(b, 0), 0U);
    } else {
      EXPECT_EQ(mismatches(b, 0), 0U);
    }
  }
}

TEST(DynamicExporter, IsRefusedByNonCoherentDevicesThatKeepTheirMapping) {
  auto dynamic = [] {
    return test::fakeBuffer(std::make_shared<test::FakeCounters>(), kBlock, /*dynamic=*/true);
  };
  Iio adcNc(iio::IioDirection::Input, false);
  auto r = adcNc.file->attach(dynamic());
  EXPECT_EQ(r.code(), EINVAL);
  EXPECT_NE(r.error().message().find("dynamic exporter"), std::string::npos);
  EXPECT_EQ(adcNc.file->buffer().stats().dmabufAttached, 0U);
  Iio adc(iio::IioDirection::Input, true);
  EXPECT_TRUE(adc.file->attach(dynamic()).ok());

  Usb usbNc(false);
  auto b = dynamic();
  EXPECT_EQ(usbNc.in->attach(b).code(), EINVAL);
  EXPECT_EQ(usbNc.in->attachedCount(), 0U);
  EXPECT_TRUE(b->attachments().empty());
  Usb usb(true);
  EXPECT_TRUE(usb.in->attach(b).ok());
}

}  // namespace
}  // namespace zbuf
