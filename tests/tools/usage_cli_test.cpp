// Black-box tests of zbuf's command line as a whole: unknown commands, -V/--version, help,
// the logging flags and ZBUF_LOG, and the strict number parsing of zbuf stream (each a usage
// error, status 2, with a short message that says what is wrong).
#include <gtest/gtest.h>

#include <string>

#include "support/cli_run.h"

namespace {

using zbuf::test::CliRun;

CliRun zbuf(const std::string& args) {
  return zbuf::test::runZbuf(args, true);
}

void expectUsage(const std::string& args, const std::string& says) {
  const CliRun r = zbuf(args);
  EXPECT_EQ(r.status, 2) << args << "\n" << r.out;
  EXPECT_NE(r.out.find(says), std::string::npos) << args << ": expected '" << says << "' in\n"
                                                 << r.out;
  EXPECT_LT(r.out.size(), 400U) << args << ": a short message\n" << r.out;
}

TEST(UsageCli, UnknownCommandIsNamed) {
  expectUsage("foo", "'foo' is not a zbuf command");
  expectUsage("", "a command is required");
}

TEST(UsageCli, VersionComesFromTheProject) {
  for (const char* flag : {"-V", "--version"}) {
    const CliRun r = zbuf(flag);
    EXPECT_EQ(r.status, 0) << flag;
    EXPECT_EQ(r.out, std::string("zbuf ") + ZBUF_VERSION + "\n") << flag;
  }
}

TEST(UsageCli, HelpCommandShowsZbufOrOneCommand) {
  CliRun r = zbuf("help");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("stream"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ZBUF_LOG"), std::string::npos) << "logging categories documented";
  EXPECT_NE(r.out.find("IioDmabuf"), std::string::npos) << r.out;
  r = zbuf("help stream");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("--block-size"), std::string::npos) << r.out;
  expectUsage("help nope", "'nope' is not a zbuf command");
}

TEST(UsageCli, InvalidLogLevelsAreErrors) {
  expectUsage("--log-level loud info", "'loud' is not a level");
  expectUsage("info --log-level loud", "'loud' is not a level");
  expectUsage("-v -q info", "exclude each other");
  const CliRun bad = zbuf::test::runZbuf("info", true, "ZBUF_LOG=fence:loud");
  EXPECT_EQ(bad.status, 2) << bad.out;
  EXPECT_NE(bad.out.find("ZBUF_LOG"), std::string::npos) << bad.out;
  const CliRun good = zbuf::test::runZbuf("-q info", true, "ZBUF_LOG=fence:debug");
  EXPECT_EQ(good.status, 0) << good.out;
}

TEST(UsageCli, NotANumberAndOutOfRangeAreTold) {
  expectUsage("stream --blocks 4x", "'4x' is not a number");
  expectUsage("stream --blocks 65", "out of range (1..64)");
  expectUsage("stream --seconds abc", "'abc' is not a number");
  expectUsage("stream --seconds nan", "'nan' is not a number");
  expectUsage("stream --seconds 0x10", "'0x10' is not a number");
  expectUsage("stream --seconds 1e300", "out of range");
  expectUsage("stream --seconds 9.3e9", "out of range");  // would overflow the ns count
  expectUsage("stream --rate 99999999999999999999", "out of range");
  expectUsage("stream --rate 2305843009213693953", "overflows");  // x 8-byte frames
  expectUsage("stream --fail-transfer 18446744073709551616", "out of range");
  expectUsage("stream --block-size 1.3", "not a whole number of bytes");
  expectUsage("stream --channels 17", "out of range (1..16)");
}

TEST(UsageCli, FlagsThatDoNotApplyAreRefused) {
  expectUsage("stream --path iio-to-app --link usb2", "--link applies to the USB paths");
  expectUsage("stream --benchmark --pattern prbs", "--pattern does not apply");
  expectUsage("stream --fail-errno 5", "--fail-errno requires --fail-transfer");
  expectUsage("stream --block-size 64K --buffer-samples 1024", "excludes");
  expectUsage("stream --seconds 1 --samples 1024", "excludes");
}

TEST(UsageCli, WhatTheMachineCannotBackIsRefusedBeforeAllocating) {
  const CliRun r = zbuf("stream --block-size 1G --blocks 64");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("available"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("MemAvailable"), std::string::npos) << r.out;
}

}  // namespace
