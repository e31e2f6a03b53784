// Black-box tests of `zbuf info`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>

#include "support/cli_run.h"

namespace {

using zbuf::test::CliRun;

CliRun zbuf(const std::string& args, bool withStderr = true) {
  return zbuf::test::runZbuf(args, withStderr);
}

TEST(InfoCli, EmptyProcessListsNoBuffersWithTheKernelHeader) {
  CliRun r = zbuf("info", false);
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("Dma-buf Objects:"), std::string::npos);
  EXPECT_NE(r.out.find("Total 0 objects, 0 bytes"), std::string::npos);
}

TEST(InfoCli, ExampleShowsColumnsFencesAndDevices) {
  CliRun r = zbuf("info --example", false);
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("adc-block-0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("write fence:iio iio seq 1 unsignalled"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("iio:device0"), std::string::npos);
  EXPECT_NE(r.out.find("ffs.usb0"), std::string::npos);
  EXPECT_NE(r.out.find("Total 2 devices attached"), std::string::npos);
  EXPECT_NE(r.out.find("Total 2 objects, 1114112 bytes"), std::string::npos) << r.out;
}

TEST(InfoCli, JsonIsValidAndComplete) {
  CliRun r = zbuf("info --example --json", false);
  ASSERT_EQ(r.status, 0);
  auto doc = nlohmann::json::parse(r.out);
  ASSERT_EQ(doc["buffers"].size(), 2U);
  EXPECT_EQ(doc["total_bytes"], 1114112);
  const auto& b = doc["buffers"][0];
  EXPECT_EQ(b["size"], 1 << 20);
  EXPECT_EQ(b["exp_name"], "system");
  EXPECT_EQ(b["name"], "adc-block-0");
  EXPECT_EQ(b["attached_devices"].size(), 2U);
  EXPECT_TRUE(doc["buffers"][1]["name"].is_null());
  EXPECT_EQ(doc["backend"]["name"], "emulated");
  EXPECT_EQ(doc["backend"]["providers"]["/dev/dma_heap/system"], "emulated");
}

bool exists(const char* path) {
  return ::access(path, F_OK) == 0;
}

TEST(InfoCli, TheBackendSectionSaysWhereEachProviderComesFrom) {
  CliRun r = zbuf("info");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("Backend: emulated"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("The running kernel has: heaps"), std::string::npos) << r.out;
  // The kernel backend never falls back: a path the running kernel lacks is named missing,
  // with the option that makes it.
  CliRun k = zbuf("info --backend kernel --json", false);
  ASSERT_EQ(k.status, 0) << k.out;
  auto doc = nlohmann::json::parse(k.out);
  EXPECT_EQ(doc["backend"]["name"], "kernel");
  const std::string heap = doc["backend"]["providers"]["/dev/dma_heap/system"];
  const std::string udmabuf = doc["backend"]["providers"]["/dev/udmabuf"];
  if (exists("/dev/dma_heap/system")) {
    EXPECT_EQ(heap, "kernel");
  } else {
    EXPECT_NE(heap.find("missing"), std::string::npos) << heap;
    EXPECT_NE(heap.find("CONFIG_DMABUF_HEAPS_SYSTEM"), std::string::npos) << heap;
  }
  EXPECT_EQ(udmabuf == "kernel", exists("/dev/udmabuf")) << udmabuf;
  EXPECT_EQ(doc["backend"]["kernel"]["udmabuf"], exists("/dev/udmabuf"));
  // auto: the kernel where it has the node, else the emulation (the huge-page heap is zbuf's).
  CliRun a = zbuf("info --backend auto --json", false);
  ASSERT_EQ(a.status, 0);
  auto adoc = nlohmann::json::parse(a.out);
  EXPECT_EQ(adoc["backend"]["providers"]["/dev/dma_heap/system"],
            exists("/dev/dma_heap/system") ? "kernel" : "emulated");
  EXPECT_EQ(adoc["backend"]["providers"]["/dev/dma_heap/hugepage"], "emulated");
}

TEST(InfoCli, AnUnknownBackendIsAUsageError) {
  CliRun r = zbuf("info --backend real");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("'real' is not a backend (emulated, kernel or auto)"), std::string::npos)
      << r.out;
}

}  // namespace
