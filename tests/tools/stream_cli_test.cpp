// Black-box tests of `zbuf stream`: flags, validation (exit status 2), JSON output, short
// data-mode runs of every path verifying every byte, and fault injection (non-zero status).
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

// Runs `zbuf <args>`; stdout is captured, stderr too when `withStderr`.
Run zbuf(const std::string& args, bool withStderr = true) {
  const std::string cmd =
      std::string(ZBUF_CLI_PATH) + " " + args + (withStderr ? " 2>&1" : " 2>/dev/null");
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
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

TEST(StreamCli, HelpListsEveryFlag) {
  Run r = zbuf("stream --help");
  EXPECT_EQ(r.status, 0);
  for (const char* flag :
       {"--path", "--mode", "--block-size", "--blocks", "--seconds", "--bytes", "--benchmark",
        "--rate", "--channels", "--link", "--pattern", "--json"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  }
}

TEST(StreamCli, BadValuesAreUsageErrorsWithStatus2) {
  for (const char* args :
       {"stream --block-size 0", "stream --block-size 12Q", "stream --block-size -1",
        "stream --blocks 0", "stream --mode copy", "stream --path iio-to-nowhere",
        "stream --link usb9", "stream --pattern sine", "stream --channels 0", "stream --seconds -1",
        "stream --bytes 0", "stream --seconds 1 --bytes 1M", "stream --no-such-flag",
        "stream --block-size 1001", "nosuchcommand", ""}) {
    Run r = zbuf(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.out;
    EXPECT_FALSE(r.out.empty()) << args << ": the error is explained";
  }
}

TEST(StreamCli, JsonHasEveryFieldAndBothModes) {
  Run r = zbuf("stream --path iio-to-app --bytes 8M --block-size 256K --json", false);
  ASSERT_EQ(r.status, 0) << r.out;
  auto doc = nlohmann::json::parse(r.out);
  ASSERT_EQ(doc["runs"].size(), 2U);
  for (const auto& run : doc["runs"]) {
    for (const char* field :
         {"mode", "path", "block_bytes", "blocks", "bytes", "seconds", "mib_per_s",
          "app_cpu_s_per_gib", "hw_cpu_s_per_gib", "verified_bytes", "mismatches", "errors"}) {
      EXPECT_TRUE(run.contains(field)) << field;
    }
    EXPECT_EQ(run["path"], "iio-to-app");
    EXPECT_EQ(run["block_bytes"], 256 * 1024);
    EXPECT_GE(run["bytes"].get<std::uint64_t>(), 8U << 20);
  }
  EXPECT_EQ(doc["runs"][0]["mode"], "fileio");
  EXPECT_EQ(doc["runs"][1]["mode"], "dmabuf");
  EXPECT_TRUE(doc["speedup"].is_number());
}

TEST(StreamCli, ShortDataModeRunOfEachPathVerifiesEveryByte) {
  for (const char* path : {"iio-to-usb", "iio-to-app", "usb-to-dac"}) {
    Run r =
        zbuf(std::string("stream --json --bytes 16M --block-size 1M --pattern prbs --path ") + path,
             false);
    ASSERT_EQ(r.status, 0) << path << "\n" << r.out;
    auto doc = nlohmann::json::parse(r.out);
    for (const auto& run : doc["runs"]) {
      EXPECT_EQ(run["mismatches"], 0) << path;
      EXPECT_EQ(run["errors"], 0) << path;
      EXPECT_EQ(run["verified_bytes"], run["bytes"]) << path << " " << run["mode"];
      EXPECT_GE(run["verified_bytes"].get<std::uint64_t>(), 16U << 20) << path;
    }
  }
}

TEST(StreamCli, BenchmarkModeVerifiesNothing) {
  Run r = zbuf("stream --json --benchmark --bytes 8M --path iio-to-app", false);
  ASSERT_EQ(r.status, 0) << r.out;
  for (const auto& run : nlohmann::json::parse(r.out)["runs"]) {
    EXPECT_EQ(run["verified_bytes"], 0);
  }
}

TEST(StreamCli, InjectedFaultMakesTheExitStatusNonZero) {
  for (const char* mode : {"fileio", "dmabuf"}) {
    Run r = zbuf(std::string("stream --bytes 8M --block-size 1M --fail-transfer 3 --mode ") + mode);
    EXPECT_EQ(r.status, 1) << mode << "\n" << r.out;
    EXPECT_NE(r.out.find("failed"), std::string::npos) << r.out;
  }
}

TEST(StreamCli, TableShowsBothModesAndTheSpeedup) {
  Run r = zbuf("stream --bytes 8M --block-size 512K", false);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("fileio"), std::string::npos);
  EXPECT_NE(r.out.find("dmabuf"), std::string::npos);
  EXPECT_NE(r.out.find("speed-up"), std::string::npos);
  EXPECT_EQ(r.out.find("\r"), std::string::npos) << "no progress line when stdout is not a tty";
}

}  // namespace
