// Black-box tests of `zbuf info`.
#include <gtest/gtest.h>

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
}

}  // namespace
