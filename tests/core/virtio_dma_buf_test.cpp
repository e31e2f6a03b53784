#include "zbuf/core/virtio_dma_buf.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <set>

#include "core/fake_exporter.h"
#include "zbuf/core/device.h"

namespace zbuf {
namespace {

using test::FakeCounters;
using test::fakeInfo;

constexpr Uuid kUuid{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef,
                     0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};

struct VirtioCounters {
  std::atomic<int> deviceAttach{0};
  std::atomic<int> getUuid{0};
  int deviceAttachError = 0;
};

// The fake exporter's operations, made virtio: attach is virtio_dma_buf_attach.
std::shared_ptr<VirtioExporterOps> virtioOps(const std::shared_ptr<VirtioCounters>& vc,
                                             bool withDeviceAttach = true) {
  auto ops = std::make_shared<VirtioExporterOps>();
  static_cast<ExporterOps&>(*ops) = test::fakeOps(false);
  ops->attach = &virtioDmaBufAttach;
  if (withDeviceAttach) {
    ops->deviceAttach = [vc](Buffer&, Attachment&) -> Result<void> {
      ++vc->deviceAttach;
      if (vc->deviceAttachError != 0) {
        return Error(vc->deviceAttachError, "test_device_attach");
      }
      return {};
    };
  }
  ops->getUuid = [vc](Buffer&) -> Result<Uuid> {
    ++vc->getUuid;
    return kUuid;
  };
  return ops;
}

ExportInfo virtioInfo(std::shared_ptr<VirtioExporterOps> ops) {
  ExportInfo info = fakeInfo(std::make_shared<FakeCounters>());
  info.exporterName = "virtio-test";
  info.ops = std::move(ops);
  return info;
}

std::shared_ptr<Device> device() {
  return Device::create({.name = "virtio-importer", .maxSegmentSize = 1 << 20});
}

TEST(VirtioDmaBuf, ExportsAndIsRecognisedByItsAttachOperation) {
  auto vc = std::make_shared<VirtioCounters>();
  auto b = virtioDmaBufExport(virtioInfo(virtioOps(vc)));
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_TRUE(isVirtioDmaBuf(**b));
  auto uuid = virtioDmaBufGetUuid(**b);
  ASSERT_TRUE(uuid.ok()) << uuid.error().describe();
  EXPECT_EQ(*uuid, kUuid);
  EXPECT_EQ(vc->getUuid.load(), 1);
}

TEST(VirtioDmaBuf, ExportWithoutOpsOrWithAnotherAttachOrWithoutGetUuidIsEinval) {
  auto vc = std::make_shared<VirtioCounters>();
  ExportInfo none = virtioInfo(virtioOps(vc));
  none.ops.reset();
  EXPECT_EQ(virtioDmaBufExport(std::move(none)).code(), EINVAL);

  auto wrapped = virtioOps(vc);  // an attach that calls virtio_dma_buf_attach is not it
  wrapped->attach = [](Buffer& b, Attachment& a) { return virtioDmaBufAttach(b, a); };
  EXPECT_EQ(virtioDmaBufExport(virtioInfo(wrapped)).code(), EINVAL);

  auto noAttach = virtioOps(vc);
  noAttach->attach = nullptr;
  EXPECT_EQ(virtioDmaBufExport(virtioInfo(noAttach)).code(), EINVAL);

  auto noUuid = virtioOps(vc);
  noUuid->getUuid = nullptr;
  auto r = virtioDmaBufExport(virtioInfo(noUuid));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), EINVAL);
  EXPECT_NE(r.error().describe().find("get_uuid"), std::string::npos) << r.error().describe();
}

TEST(VirtioDmaBuf, APlainBufferIsNotVirtioAndHasNoUuid) {
  BufferPtr plain = test::fakeBuffer(std::make_shared<FakeCounters>());
  ASSERT_NE(plain, nullptr);
  EXPECT_FALSE(isVirtioDmaBuf(*plain));
  EXPECT_EQ(virtioDmaBufGetUuid(*plain).code(), EINVAL);
}

TEST(VirtioDmaBuf, AttachRunsTheDeviceAttachHookAndFailsWithItsError) {
  auto vc = std::make_shared<VirtioCounters>();
  auto b = virtioDmaBufExport(virtioInfo(virtioOps(vc)));
  ASSERT_TRUE(b.ok());
  auto a = (*b)->attach(device());
  ASSERT_TRUE(a.ok()) << a.error().describe();
  EXPECT_EQ(vc->deviceAttach.load(), 1);
  EXPECT_EQ((*b)->attachments().size(), 1U);

  vc->deviceAttachError = EBUSY;
  auto refused = (*b)->attach(device());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), EBUSY);
  EXPECT_EQ(vc->deviceAttach.load(), 2);
  EXPECT_EQ((*b)->attachments().size(), 1U);  // the refused one was not added
}

TEST(VirtioDmaBuf, AttachWithoutTheOptionalHookSucceeds) {
  auto vc = std::make_shared<VirtioCounters>();
  auto b = virtioDmaBufExport(virtioInfo(virtioOps(vc, /*withDeviceAttach=*/false)));
  ASSERT_TRUE(b.ok());
  auto a = (*b)->attach(device());
  EXPECT_TRUE(a.ok()) << a.error().describe();
  EXPECT_EQ(vc->deviceAttach.load(), 0);
}

TEST(VirtioDmaBuf, GetUuidReturnsTheExportersError) {
  auto vc = std::make_shared<VirtioCounters>();
  auto ops = virtioOps(vc);
  ops->getUuid = [](Buffer&) -> Result<Uuid> {
    return Error(ENODEV, "test_get_uuid", "registration failed");
  };
  auto b = virtioDmaBufExport(virtioInfo(ops));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(virtioDmaBufGetUuid(**b).code(), ENODEV);
}

TEST(Uuid, PrintsAndParsesAsEightFourFourFourTwelve) {
  EXPECT_EQ(toString(kUuid), "12345678-9abc-4def-8001-020304050607");
  auto back = parseUuid("12345678-9ABC-4def-8001-020304050607");
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(*back, kUuid);
  for (const char* bad :
       {"", "12345678-9abc-4def-8001-02030405060", "12345678-9abc-4def-8001-0203040506070",
        "12345678x9abc-4def-8001-020304050607", "1234567g-9abc-4def-8001-020304050607",
        "12345678-9abc-4def-8001-02030405060-"}) {
    EXPECT_EQ(parseUuid(bad).code(), EINVAL) << bad;
  }
}

TEST(Uuid, RandomOnesAreVersion4AndDistinct) {
  std::set<Uuid> seen;
  for (int i = 0; i < 1000; ++i) {
    const Uuid u = randomUuid();
    EXPECT_EQ(u.at(6) >> 4, 4);
    EXPECT_EQ(u.at(8) & 0xc0, 0x80);
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 1000U);
}

}  // namespace
}  // namespace zbuf
