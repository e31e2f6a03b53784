// zbuf stream --coherency and --check-cpu-access: every path verifies clean with non-coherent
// devices (all, or per device), bad values are usage errors, the flags are in the help, and
// checked CPU access runs the application path clean.
#include <gtest/gtest.h>

#include <string>

#include "support/cli_run.h"

namespace {

zbuf::test::CliRun zbufRun(const std::string& args) {
  return zbuf::test::runZbuf(args, true);
}

TEST(StreamCoherencyCli, HelpListsTheFlags) {
  const auto r = zbufRun("stream --help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("--coherency"), std::string::npos);
  EXPECT_NE(r.out.find("--check-cpu-access"), std::string::npos);
}

TEST(StreamCoherencyCli, BadCoherencyIsAUsageError) {
  for (const char* v : {"incoherent", "gpu=coherent", "adc"}) {
    const auto r = zbufRun(std::string("stream --bytes 1M --coherency ") + v);
    EXPECT_EQ(r.status, 2) << v << ": " << r.out;
    EXPECT_NE(r.out.find("--coherency"), std::string::npos) << r.out;
  }
}

TEST(StreamCoherencyCli, NonCoherentDevicesVerifyCleanOnEveryPath) {
  for (const char* path : {"iio-to-usb", "iio-to-app", "usb-to-dac"}) {
    for (const char* coherency :
         {"non-coherent", "adc=non-coherent,usb=coherent", "dac=non-coherent,usb=non-coherent"}) {
      const auto r = zbufRun(std::string("stream --json --bytes 4M --block-size 256K --path ") +
                             path + " --coherency " + coherency);
      EXPECT_EQ(r.status, 0) << path << " " << coherency << ": " << r.out;
      EXPECT_NE(r.out.find("\"mismatches\": 0"), std::string::npos) << r.out;
    }
  }
}

TEST(StreamCoherencyCli, CheckedCpuAccessRunsTheApplicationPathClean) {
  const auto r = zbufRun(
      "stream --json --bytes 4M --block-size 256K --path iio-to-app --mode dmabuf "
      "--coherency non-coherent --check-cpu-access");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("checked CPU access"), std::string::npos) << r.out;
}

}  // namespace
