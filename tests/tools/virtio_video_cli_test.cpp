// Black-box tests of `zbuf virtio-video`: the run's checks and JSON, the set-up's lower bound
// (a blocking registration pays every round trip), usage errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "support/cli_run.h"

namespace {

using zbuf::test::CliRun;

CliRun zbuf(const std::string& args, bool withStderr = true) {
  return zbuf::test::runZbuf(args, withStderr);
}

TEST(VirtioVideoCli, BothRegistrationsShowEveryFrameAndTheJsonSaysSo) {
  CliRun r = zbuf(
      "virtio-video --frames 12 --buffers 3 --frame-size 64K --latency 5 --repeat 2 "
      "--json",
      false);
  ASSERT_EQ(r.status, 0) << r.out;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["ok"], true);
  EXPECT_EQ(doc["settings"]["registration_latency_ns"], 5000000);
  EXPECT_EQ(doc["settings"]["processes"], 1);
  ASSERT_EQ(doc["runs"].size(), 4U);  // blocking, async, blocking, async
  for (const auto& run : doc["runs"]) {
    EXPECT_EQ(run["frames"], 12);
    EXPECT_EQ(run["mismatches"], 0);
    EXPECT_EQ(run["verified_bytes"], 12 * 64 * 1024);
    // Every UUID waits for its registration: blocking pays three round trips in turn, async
    // at least one.
    const double floor = run["registration"] == "blocking" ? 3 * 0.005 : 0.005;
    EXPECT_GE(run["setup_seconds"].get<double>(), floor) << run.dump();
  }
  EXPECT_EQ(doc["runs"][0]["registration"], "blocking");
  EXPECT_EQ(doc["runs"][1]["registration"], "async");
  EXPECT_TRUE(doc["summary"].contains("setup_blocking_over_async"));
  EXPECT_EQ(doc["summary"]["async"]["setup_seconds"].size(), 3U);  // median, min, max
}

TEST(VirtioVideoCli, TheTableComparesTheTwoSetUps) {
  CliRun r = zbuf("virtio-video -n 4 --buffers 2 --frame-size 16K --latency 1 --repeat 1", false);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("4 frames of 16.0 KiB through 2 buffers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("set-up with blocking registration: median"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("asynchronous registration sets 2 buffers up"), std::string::npos) << r.out;
}

TEST(VirtioVideoCli, OneModeHasNoRatio) {
  CliRun r = zbuf(
      "virtio-video -n 2 --buffers 1 --frame-size 8K --registration async "
      "--repeat 1 -J",
      false);
  ASSERT_EQ(r.status, 0) << r.out;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["runs"].size(), 1U);
  EXPECT_FALSE(doc["summary"].contains("setup_blocking_over_async"));
}

TEST(VirtioVideoCli, BadUsageIsExitTwo) {
  for (const char* args :
       {"virtio-video --registration sometimes", "virtio-video --buffers 0",
        "virtio-video --buffers 65", "virtio-video --frame-size 1X", "virtio-video --frames 0",
        "virtio-video --latency -1", "virtio-video --daemon /nonexistent.sock --latency 3"}) {
    CliRun r = zbuf(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.out;
  }
  CliRun r = zbuf("virtio-video --daemon /nonexistent.sock --latency 3");
  EXPECT_NE(r.out.find("zbufd --virtio-latency"), std::string::npos) << r.out;
}

TEST(VirtioVideoCli, AMissingDaemonIsAFailure) {
  CliRun r = zbuf("virtio-video --daemon /nonexistent/zbufd.sock -n 1 --repeat 1");
  EXPECT_EQ(r.status, 1) << r.out;
}

}  // namespace
