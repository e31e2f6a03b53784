// Black-box tests of `zbuf info`.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace {

struct Run {
  int status = -1;
  std::string out;
};

Run zbuf(const std::string& args) {
  const std::string cmd = std::string(ZBUF_CLI_PATH) + " " + args + " 2>/dev/null";
  Run r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    return r;
  }
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) {
    r.out.append(buf.data(), n);
  }
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(InfoCli, EmptyProcessListsNoBuffersWithTheKernelHeader) {
  Run r = zbuf("info");
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("Dma-buf Objects:"), std::string::npos);
  EXPECT_NE(r.out.find("Total 0 objects, 0 bytes"), std::string::npos);
}

TEST(InfoCli, ExampleShowsColumnsFencesAndDevices) {
  Run r = zbuf("info --example");
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("adc-block-0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("write fence:iio iio seq 1 unsignalled"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("iio:device0"), std::string::npos);
  EXPECT_NE(r.out.find("ffs.usb0"), std::string::npos);
  EXPECT_NE(r.out.find("Total 2 devices attached"), std::string::npos);
  EXPECT_NE(r.out.find("Total 2 objects, 1114112 bytes"), std::string::npos) << r.out;
}

TEST(InfoCli, JsonIsValidAndComplete) {
  Run r = zbuf("info --example --json");
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
