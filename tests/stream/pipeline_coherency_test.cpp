// ctest-labels: concurrency
// Pipeline coherency: every path in both modes with each device coherent or not verifies
// clean (the IIO and FunctionFS emulations bracket every transfer); leaving out one sync that
// is the only one on the data's way gives mismatches at the checking end (the USB host, the
// DAC, the application); the coherency option parses both ways.
#include <gtest/gtest.h>

#include <algorithm>

#include "zbuf/stream/pipeline.h"

namespace zbuf {
namespace {

StreamConfig shortRun(StreamPath path, StreamCoherency coherency) {
  StreamConfig c;
  c.path = path;
  c.blockBytes = 256 * 1024;
  c.blocks = 4;
  c.bytes = 4 << 20;
  c.coherency = coherency;
  return c;
}

StreamResult runOk(const StreamConfig& c, StreamMode mode) {
  auto p = Pipeline::create(c);
  EXPECT_TRUE(p.ok());
  auto r = p->run(mode);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
  return r.ok() ? *r : StreamResult{};
}

TEST(PipelineCoherency, ParsesBothWays) {
  EXPECT_EQ(parseStreamCoherency("coherent").value(), (StreamCoherency{true, true, true}));
  EXPECT_EQ(parseStreamCoherency("non-coherent").value(), (StreamCoherency{false, false, false}));
  EXPECT_EQ(parseStreamCoherency("adc=non-coherent,usb=coherent").value(),
            (StreamCoherency{false, true, true}));
  EXPECT_EQ(parseStreamCoherency("dac=non-coherent,usb=non-coherent").value(),
            (StreamCoherency{true, false, false}));
  EXPECT_EQ(parseStreamCoherency("incoherent").code(), EINVAL);
  EXPECT_EQ(parseStreamCoherency("gpu=coherent").code(), EINVAL);
  EXPECT_EQ(parseStreamCoherency("adc").code(), EINVAL);
  EXPECT_EQ(parseStreamCoherency("adc=coherent,usb").code(), EINVAL);
  for (const StreamCoherency c :
       {StreamCoherency{}, StreamCoherency{false, false, false}, StreamCoherency{false, true, true},
        StreamCoherency{true, false, false}}) {
    EXPECT_EQ(parseStreamCoherency(toString(c)).value(), c) << toString(c);
  }
  EXPECT_EQ(toString(StreamCoherency{false, true, false}), "adc=non-coherent,usb=non-coherent");
}

// (path, mode, IIO device coherent, USB controller coherent)
class CoherencyPaths
    : public ::testing::TestWithParam<std::tuple<StreamPath, StreamMode, bool, bool>> {};

TEST_P(CoherencyPaths, EveryByteVerifiesClean) {
  const auto [path, mode, iioCoherent, usbCoherent] = GetParam();
  const StreamConfig c = shortRun(path, StreamCoherency{iioCoherent, iioCoherent, usbCoherent});
  const StreamResult r = runOk(c, mode);
  EXPECT_EQ(r.bytes, c.bytes);
  EXPECT_EQ(r.verifiedBytes, c.bytes);
  EXPECT_EQ(r.mismatches, 0U);
  EXPECT_EQ(r.errors, 0U) << (r.errorMessages.empty() ? "" : r.errorMessages.front());
}

INSTANTIATE_TEST_SUITE_P(
    AllPaths, CoherencyPaths,
    ::testing::Combine(::testing::Values(StreamPath::IioToUsb, StreamPath::IioToApp,
                                         StreamPath::UsbToDac),
                       ::testing::Values(StreamMode::Fileio, StreamMode::Dmabuf), ::testing::Bool(),
                       ::testing::Bool()),
    [](const auto& info) {
      std::string name = std::string(toString(std::get<0>(info.param))) + "_" +
                         toString(std::get<1>(info.param)) +
                         (std::get<2>(info.param) ? "_iio" : "_iioNC") +
                         (std::get<3>(info.param) ? "_usb" : "_usbNC");
      std::replace(name.begin(), name.end(), '-', '_');
      return name;
    });

struct Skip {
  StreamPath path;
  Flags<SkippedSync> skip;
  bool mismatches;  // whether the far end must see stale data
  const char* name;
};

class SkippedSyncs : public ::testing::TestWithParam<Skip> {};

TEST_P(SkippedSyncs, TheCheckerSeesStaleDataOnlyWhenNoOtherSyncCovers) {
  const Skip& s = GetParam();
  StreamConfig c = shortRun(s.path, StreamCoherency{false, false, false});
  c.skipSync = s.skip;
  const StreamResult r = runOk(c, StreamMode::Dmabuf);
  EXPECT_EQ(r.verifiedBytes, c.bytes);
  EXPECT_EQ(r.errors, 0U);
  if (s.mismatches) {
    EXPECT_GT(r.mismatches, 0U) << "stale data went unnoticed";
  } else {
    EXPECT_EQ(r.mismatches, 0U);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Dmabuf, SkippedSyncs,
    ::testing::Values(
        // The ADC's writes stay in its cache; the USB endpoint reads the memory.
        Skip{StreamPath::IioToUsb, SkippedSync::AdcEnd, true, "IioToUsbAdcEnd"},
        // The endpoint's cache keeps the previous block: the host gets stale data. These two
        // USB cases also prove that the board gives the controller its coherency and its
        // skipped syncs (it once dropped both, and the usbNC paths above ran coherent).
        Skip{StreamPath::IioToUsb, SkippedSync::UsbBegin, true, "IioToUsbUsbBegin"},
        // What the host sent stays in the endpoint's cache; the DAC reads the memory.
        Skip{StreamPath::UsbToDac, SkippedSync::UsbEnd, true, "UsbToDacUsbEnd"},
        // The DAC's cache keeps the previous block.
        Skip{StreamPath::UsbToDac, SkippedSync::DacBegin, true, "UsbToDacDacBegin"},
        // iio-to-app has two syncs for the CPU on the data's way: the ADC's end access and the
        // application's SYNC START (the heap syncs every mapping); either one is enough, as
        // both are dma_sync_sg_for_cpu in the kernel.
        Skip{StreamPath::IioToApp, SkippedSync::AdcEnd, false, "IioToAppAdcEndOnly"},
        Skip{StreamPath::IioToApp, SkippedSync::AppStart, false, "IioToAppAppStartOnly"},
        Skip{StreamPath::IioToApp, SkippedSync::AdcEnd | SkippedSync::AppStart, true,
             "IioToAppBoth"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(PipelineCoherency, ACoherentDeviceNeedsNoSync) {
  // Skipping every device sync is harmless when every device is coherent.
  StreamConfig c = shortRun(StreamPath::IioToUsb, StreamCoherency{});
  c.skipSync = SkippedSync::AdcEnd | SkippedSync::UsbBegin;
  EXPECT_EQ(runOk(c, StreamMode::Dmabuf).mismatches, 0U);
  c = shortRun(StreamPath::UsbToDac, StreamCoherency{});
  c.skipSync = SkippedSync::UsbEnd | SkippedSync::DacBegin;
  EXPECT_EQ(runOk(c, StreamMode::Dmabuf).mismatches, 0U);
}

TEST(PipelineCoherency, CheckedCpuAccessRunsTheApplicationClean) {
  StreamConfig c = shortRun(StreamPath::IioToApp, StreamCoherency{false, false, false});
  c.checkCpuAccess = true;  // a violation would abort the test
  const StreamResult r = runOk(c, StreamMode::Dmabuf);
  EXPECT_EQ(r.verifiedBytes, c.bytes);
  EXPECT_EQ(r.mismatches, 0U);
}

TEST(PipelineCoherency, CheckedCpuAccessCatchesAReadWithoutSyncStart) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  StreamConfig c = shortRun(StreamPath::IioToApp, StreamCoherency{});
  c.checkCpuAccess = true;
  c.skipSync = SkippedSync::AppStart;
  EXPECT_DEATH((void)runOk(c, StreamMode::Dmabuf),
               "read at offset 0 .* of buffer 'stream-0' \\(exporter system, 262144 bytes");
}

}  // namespace
}  // namespace zbuf
