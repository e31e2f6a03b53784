// DeviceCache and the DMA API's syncs: the line walks (dirty lines kept by fill, only dirty
// lines written back), a non-coherent mapping's IOVAs reaching the cache and not the memory,
// map implying a sync for the device and unmap one for the CPU, coherent tables without a
// cache, and Attachment::begin/endDeviceAccess: exporter without the ops (EINVAL for a
// non-coherent device, nothing for a coherent one), dynamic exporters refused, forgotten steps.
#include "zbuf/core/device_cache.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/fake_exporter.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/device.h"

namespace zbuf {
namespace {

std::vector<std::byte> bytes(std::size_t n, unsigned char v) {
  return std::vector<std::byte>(n, std::byte{v});
}

TEST(DeviceCache, FillTakesChangedMemoryIntoCleanLinesAndKeepsDirtyOnes) {
  constexpr std::size_t n = 3 * 4096;
  auto memory = bytes(n, 1);
  auto lines = bytes(n, 1);
  auto clean = bytes(n, 1);
  lines[0] = std::byte{9};  // dirty line 0: the device wrote it
  memory[0] = std::byte{7};
  memory[64] = std::byte{7};    // line 1 changed in memory, clean in the cache
  memory[8192] = std::byte{5};  // third block
  EXPECT_EQ(DeviceCache::fill(lines, clean, memory), 2U);
  EXPECT_EQ(lines[0], std::byte{9});  // kept
  EXPECT_EQ(lines[64], std::byte{7});
  EXPECT_EQ(clean[64], std::byte{7});
  EXPECT_EQ(lines[8192], std::byte{5});
  EXPECT_EQ(DeviceCache::fill(lines, clean, memory), 0U);  // nothing changed since
}

TEST(DeviceCache, WriteBackCopiesOnlyDirtyLines) {
  constexpr std::size_t n = 2 * 4096 + 100;  // a partial last line
  auto memory = bytes(n, 1);
  auto lines = bytes(n, 1);
  auto clean = bytes(n, 1);
  lines[130] = std::byte{3};    // line 2 dirty
  lines[n - 1] = std::byte{4};  // the partial line dirty
  memory[0] = std::byte{8};     // another writer's byte in a clean line: not clobbered
  EXPECT_EQ(DeviceCache::writeBack(lines, clean, memory), 2U);
  EXPECT_EQ(memory[130], std::byte{3});
  EXPECT_EQ(memory[n - 1], std::byte{4});
  EXPECT_EQ(memory[0], std::byte{8});
  EXPECT_EQ(DeviceCache::writeBack(lines, clean, memory), 0U);  // clean now
}

// A buffer of the fake exporter (no device-access ops) and a device.
struct Mapped {
  explicit Mapped(bool coherent, DmaDirection dir = DmaDirection::Bidirectional,
                  bool dynamic = false)
      : buffer(test::fakeBuffer(std::make_shared<test::FakeCounters>(), 16384, dynamic)),
        device(Device::create({.name = coherent ? "coh" : "noncoh", .coherent = coherent})) {
    attachment = buffer->attach(device).value();
    table = attachment->mapUnlocked(dir).value();
  }
  ~Mapped() {
    if (!table.empty()) {
      attachment->unmapUnlocked(table, table.direction());
    }
  }
  Mapped(const Mapped&) = delete;
  Mapped& operator=(const Mapped&) = delete;
  std::vector<std::byte>& memory() const {
    return static_cast<test::FakePriv*>(buffer->priv())->memory;
  }
  // The device's view of byte `offset` (through its IOMMU, like its DMA).
  std::byte* device0(std::uint64_t offset, bool write) const {
    const SgSegment& s = table.segments()[offset / 4096];
    return device->iommu().translate(s.dmaAddress + offset % 4096, 1, write).value().data();
  }
  BufferPtr buffer;
  std::shared_ptr<Device> device;
  AttachmentPtr attachment;
  SgTable table;
};

TEST(DeviceCache, ANonCoherentDeviceWorksOnItsCacheUntilSynced) {
  Mapped m(false);
  ASSERT_TRUE(m.table.cache());
  EXPECT_EQ(m.table.cache()->size(), 16384U);
  // Device writes stay in the cache.
  *m.device0(5000, true) = std::byte{0x5a};
  EXPECT_EQ(m.memory()[5000], std::byte{0});
  syncSgTableForCpu(*m.device, m.table, DmaDirection::FromDevice);
  EXPECT_EQ(m.memory()[5000], std::byte{0x5a});
  // CPU writes reach the device after a sync for the device.
  m.memory()[100] = std::byte{0x11};
  EXPECT_EQ(*m.device0(100, false), std::byte{0});
  syncSgTableForDevice(*m.device, m.table, DmaDirection::ToDevice);
  EXPECT_EQ(*m.device0(100, false), std::byte{0x11});
  // A sync for the CPU of a to-device access does nothing (as in the kernel).
  *m.device0(200, true) = std::byte{0x22};
  syncSgTableForCpu(*m.device, m.table, DmaDirection::ToDevice);
  EXPECT_EQ(m.memory()[200], std::byte{0});
  const DeviceCache::Stats st = m.table.cache()->stats();
  EXPECT_EQ(st.fills, 1U);
  EXPECT_EQ(st.writeBacks, 1U);
  EXPECT_EQ(st.linesFilled, 1U);
  EXPECT_EQ(st.linesWrittenBack, 1U);
}

TEST(DeviceCache, MapImpliesASyncForTheDeviceAndUnmapOneForTheCpu) {
  auto counters = std::make_shared<test::FakeCounters>();
  auto buffer = test::fakeBuffer(counters);
  auto& memory = static_cast<test::FakePriv*>(buffer->priv())->memory;
  memory[42] = std::byte{0x42};
  auto device = Device::create({.name = "noncoh", .coherent = false});
  auto a = buffer->attach(device).value();
  SgTable t = a->mapUnlocked(DmaDirection::FromDevice).value();
  // The cache was filled at map: a partial device write keeps the rest of the line.
  std::byte* dev = device->iommu().translate(t.segments()[0].dmaAddress, 64, true).value().data();
  EXPECT_EQ(dev[42], std::byte{0x42});
  dev[43] = std::byte{0x43};
  EXPECT_EQ(memory[43], std::byte{0});
  a->unmapUnlocked(t, DmaDirection::FromDevice);
  EXPECT_EQ(memory[43], std::byte{0x43});
  EXPECT_EQ(memory[42], std::byte{0x42});
  EXPECT_EQ(device->iommu().mappedRanges(), 0U);
}

TEST(DeviceCache, ACoherentDeviceReachesTheMemoryAndItsSyncsDoNothing) {
  Mapped m(true);
  EXPECT_FALSE(m.table.cache());
  *m.device0(7, true) = std::byte{7};
  EXPECT_EQ(m.memory()[7], std::byte{7});
  m.memory()[8] = std::byte{8};
  EXPECT_EQ(*m.device0(8, false), std::byte{8});
  syncSgTableForCpu(*m.device, m.table, DmaDirection::Bidirectional);
  syncSgTableForDevice(*m.device, m.table, DmaDirection::Bidirectional);
}

TEST(DeviceCache, ToDeviceMappingsAreNeverWrittenBack) {
  Mapped m(false, DmaDirection::ToDevice);
  m.memory()[9] = std::byte{9};
  syncSgTableForCpu(*m.device, m.table, DmaDirection::Bidirectional);
  EXPECT_EQ(m.memory()[9], std::byte{9});
  EXPECT_EQ(m.table.cache()->stats().writeBacks, 0U);
}

TEST(DeviceAccess, AnExporterWithoutTheOpsRefusesANonCoherentDevice) {
  Mapped noncoh(false);
  auto r = noncoh.attachment->beginDeviceAccess(noncoh.table, DmaDirection::ToDevice);
  EXPECT_EQ(r.code(), EINVAL);
  EXPECT_NE(r.error().message().find("cannot bracket device access"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(noncoh.attachment->endDeviceAccess(noncoh.table, DmaDirection::ToDevice).code(),
            EINVAL);
  EXPECT_EQ(noncoh.attachment->checkDeviceAccessBracketing().code(), EINVAL);

  Mapped coh(true);
  EXPECT_TRUE(coh.attachment->beginDeviceAccess(coh.table, DmaDirection::ToDevice).ok());
  EXPECT_TRUE(coh.attachment->endDeviceAccess(coh.table, DmaDirection::ToDevice).ok());
  EXPECT_TRUE(coh.attachment->checkDeviceAccessBracketing().ok());
}

TEST(DeviceAccess, ADynamicExporterRefusesANonCoherentImporterThatKeepsItsMapping) {
  auto buffer = test::fakeBuffer(std::make_shared<test::FakeCounters>(), 16384, /*dynamic=*/true);
  ASSERT_TRUE(buffer);
  auto device = Device::create({.name = "noncoh", .coherent = false});
  auto a = buffer->attach(device).value();
  auto r = a->checkDeviceAccessBracketing();
  EXPECT_EQ(r.code(), EINVAL);
  EXPECT_NE(r.error().message().find("dynamic exporter"), std::string::npos) << r.error().message();
  auto coherent = buffer->attach(Device::create({.name = "coh"})).value();
  EXPECT_TRUE(coherent->checkDeviceAccessBracketing().ok());
}

TEST(DeviceAccess, ExporterOpsRunWithTheImportersTable) {
  auto counters = std::make_shared<test::FakeCounters>();
  auto info = test::fakeInfo(counters);
  ExporterOps ops = *info.ops;
  auto seen = std::make_shared<std::vector<std::size_t>>();
  ops.beginDeviceAccess = [seen](Attachment&, const SgTable& t, DmaDirection) -> Result<void> {
    seen->push_back(t.segmentCount());
    return {};
  };
  ops.endDeviceAccess = [seen](Attachment&, const SgTable&, DmaDirection) -> Result<void> {
    return Error(EIO, "fake_end_access");
  };
  info.ops = std::make_shared<const ExporterOps>(std::move(ops));
  auto buffer = Buffer::exportBuffer(std::move(info)).value();
  auto device = Device::create({.name = "noncoh", .coherent = false});
  auto a = buffer->attach(device).value();
  EXPECT_TRUE(a->checkDeviceAccessBracketing().ok());
  SgTable t = a->mapUnlocked(DmaDirection::ToDevice).value();
  EXPECT_TRUE(a->beginDeviceAccess(t, DmaDirection::ToDevice).ok());
  EXPECT_EQ(a->endDeviceAccess(t, DmaDirection::ToDevice).code(), EIO);
  ASSERT_EQ(seen->size(), 1U);
  EXPECT_EQ((*seen)[0], t.segmentCount());
  // Fault injection: the importer forgets; the ops are not called.
  device->forgetDeviceAccess(true, true);
  EXPECT_TRUE(a->beginDeviceAccess(t, DmaDirection::ToDevice).ok());
  EXPECT_TRUE(a->endDeviceAccess(t, DmaDirection::ToDevice).ok());
  EXPECT_EQ(seen->size(), 1U);
  a->unmapUnlocked(t, DmaDirection::ToDevice);
}

}  // namespace
}  // namespace zbuf
