// zbuf stream --output FILE|-: the samples the application receives (iio-to-app), raw as
// iio_readdev writes them, the file whole or absent (never half written), the report on
// standard error when the samples take standard output, write errors (a closed pipe) that stop
// the run with status 1, and the flags it does not apply with (status 2).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/cli_run.h"
#include "zbuf/devices/pattern.h"

namespace {

namespace fs = std::filesystem;
using zbuf::test::CliRun;

CliRun zbuf(const std::string& args, bool withStderr = true) {
  return zbuf::test::runZbuf(args, withStderr);
}

// A fresh directory for one test, removed with what is in it.
class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "zbuf-output-XXXXXX").string();
    path_ = ::mkdtemp(t.data()) != nullptr ? t : "";
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string file(const char* name) const { return path_ + "/" + name; }
  [[nodiscard]] std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) {
      names.push_back(e.path().filename().string());
    }
    return names;
  }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::uint64_t rampMismatches(const std::string& data, unsigned channels) {
  const zbuf::PatternChecker checker(zbuf::SampleFormat{.channels = channels},
                                     zbuf::PatternKind::Ramp);
  return checker.countMismatches(std::as_bytes(std::span(data.data(), data.size())), 0);
}

// 64 blocks of 1024 frames of 2 channels: 256 KiB, the same in both modes.
constexpr const char* kRun =
    "stream --path iio-to-app --channels 2 -b 1024 --samples 65536 --json --output ";
constexpr std::uint64_t kRunBytes = 65536ULL * 4;

TEST(StreamOutputCli, WritesTheReceivedSamplesInBothModes) {
  const TempDir dir;
  std::string first;
  for (const char* mode : {"fileio", "dmabuf"}) {
    const std::string file = dir.file(mode);
    const CliRun r = zbuf(std::string(kRun) + file + " --mode " + mode, false);
    ASSERT_EQ(r.status, 0) << mode << "\n" << r.out;
    const auto doc = nlohmann::json::parse(r.out);
    EXPECT_EQ(doc["settings"]["output"], file);
    EXPECT_EQ(doc["runs"][0]["bytes"], kRunBytes) << mode;
    const std::string data = slurp(file);
    EXPECT_EQ(data.size(), kRunBytes) << mode;
    EXPECT_EQ(rampMismatches(data, 2), 0U) << mode << ": the ADC's ramp, from its first sample";
    if (first.empty()) {
      first = data;
    } else {
      EXPECT_EQ(data, first) << "fileio and dmabuf receive the same stream";
    }
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    const mode_t mask = ::umask(0);
    ::umask(mask);
    EXPECT_EQ(st.st_mode & 0777, 0666 & ~mask) << "as a plain creat(2) makes it";
  }
  EXPECT_EQ(dir.entries().size(), 2U) << "no temporary file is left";
}

TEST(StreamOutputCli, DashPutsTheSamplesOnStdoutAndTheReportOnStderr) {
  const TempDir dir;
  const std::string err = dir.file("stderr");
  const CliRun r =
      zbuf::test::runShell(std::string("timeout -s KILL 120 ") + ZBUF_CLI_PATH +
                           " stream --path iio-to-app --mode dmabuf --channels 2 -b 1024 --samples "
                           "65536 --output - 2>" +
                           err);
  ASSERT_EQ(r.status, 0) << slurp(err);
  EXPECT_EQ(r.out.size(), kRunBytes) << "standard output is the samples only";
  EXPECT_EQ(rampMismatches(r.out, 2), 0U);
  const std::string report = slurp(err);
  EXPECT_NE(report.find("zbuf stream: iio-to-app"), std::string::npos) << report;
  EXPECT_NE(report.find("samples to standard output"), std::string::npos) << report;
  EXPECT_NE(report.find("throughput"), std::string::npos) << report;
}

TEST(StreamOutputCli, AFailedRunLeavesNoFileAndKeepsTheOldOne) {
  const TempDir dir;
  const std::string file = dir.file("samples.bin");
  std::ofstream(file) << "old";
  const CliRun r = zbuf(
      "stream --path iio-to-app --mode fileio -b 1024 --samples 65536 "
      "--fail-transfer 3 --output " +
      file);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("not written: the run failed"), std::string::npos) << r.out;
  EXPECT_EQ(slurp(file), "old") << "an existing file stays as it was";
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"samples.bin"}) << "no temporary left";
}

TEST(StreamOutputCli, AnInterruptedRunKeepsWhatItReceived) {
  const TempDir dir;
  const std::string file = dir.file("samples.bin");
  // 1 MiB/s for 60 s, SIGINT after one second.
  const CliRun r = zbuf::test::runZbuf(
      "stream --path iio-to-app --mode fileio --rate 131072 --block-size 64K --seconds 60 --json "
      "--output " +
          file,
      false, "timeout --preserve-status -s INT 1");
  ASSERT_EQ(r.status, 130) << r.out;
  const auto doc = nlohmann::json::parse(r.out);
  const std::uint64_t bytes = doc["runs"][0]["bytes"];
  EXPECT_GT(bytes, 0U);
  EXPECT_EQ(slurp(file).size(), bytes) << "the samples of the run so far";
}

TEST(StreamOutputCli, AReaderThatGoesAwayStopsTheRunWithStatus1) {
  const TempDir dir;
  const std::string status = dir.file("status");
  const std::string err = dir.file("stderr");
  // 60 s of samples into head(1), which leaves after 1000 bytes.
  const std::string cmd = std::string("{ timeout -s KILL 30 ") + ZBUF_CLI_PATH +
                          " stream --path iio-to-app --mode fileio --seconds 60 --output - 2>" +
                          err + "; echo $? >" + status + "; } | head -c 1000 >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);  // NOLINT(cert-env33-c): the test's own command
  EXPECT_EQ(slurp(status), "1\n") << slurp(err);
  EXPECT_NE(slurp(err).find("the reader closed the pipe"), std::string::npos) << slurp(err);
}

TEST(StreamOutputCli, WhatCannotBeWrittenFailsBeforeTheRun) {
  const TempDir dir;
  CliRun r = zbuf("stream --path iio-to-app --mode fileio --output " + dir.path() +
                  "/no/such/folder/x.bin");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("cannot create a file in"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("throughput"), std::string::npos) << "nothing ran\n" << r.out;
  r = zbuf("stream --path iio-to-app --mode fileio --output " + dir.path());
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("is a directory"), std::string::npos) << r.out;
}

TEST(StreamOutputCli, FlagsItDoesNotApplyWithAreRefused) {
  for (const auto& [args, says] :
       {std::pair{"--path iio-to-usb --mode fileio", "--path iio-to-app only"},
        std::pair{"--path usb-to-dac --mode dmabuf", "--path iio-to-app only"},
        std::pair{"--path iio-to-app --mode fileio --benchmark", "does not apply with --benchmark"},
        std::pair{"--path iio-to-app", "give --mode fileio or --mode dmabuf"},
        std::pair{"--path iio-to-app --mode fileio --repeat 2", "without --repeat"}}) {
    const CliRun r = zbuf(std::string("stream --output x.bin ") + args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(says), std::string::npos) << args << "\n" << r.out;
  }
}

}  // namespace
