// zbuf bench --output FILE|-: the suite's JSON document (bench.json's) on standard output with
// the report on standard error, or in FILE, whole (no temporary left beside it); a FILE that
// cannot be made fails before the suite runs. A smoke run: --quick --skip-micro, 1 MiB runs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "support/cli_run.h"

namespace {

namespace fs = std::filesystem;
using zbuf::test::CliRun;

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class BenchCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = (fs::temp_directory_path() / "zbuf-bench-XXXXXX").string();
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    dir_ = t;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  [[nodiscard]] std::string smoke() const {
    return "bench --quick --skip-micro --bytes 1M --out " + (dir_ / "out").string();
  }
  fs::path dir_;
};

TEST_F(BenchCli, DashPutsTheJsonOnStdoutAndTheReportOnStderr) {
  const CliRun r = zbuf::test::runZbuf(smoke() + " --output -", false);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << "standard output is the JSON only:\n" << r.out;
  EXPECT_FALSE(doc["sweeps"].empty());
  EXPECT_EQ(r.out, slurp(dir_ / "out" / "bench.json")) << "the document of bench.json";
  const CliRun both = zbuf::test::runShell(std::string("timeout -s KILL 120 ") + ZBUF_CLI_PATH +
                                           " " + smoke() + " --output - 2>&1 >/dev/null");
  EXPECT_NE(both.out.find("| path |"), std::string::npos) << "the report on stderr:\n" << both.out;
}

TEST_F(BenchCli, WritesTheJsonToAFileWhole) {
  const fs::path file = dir_ / "result.json";
  const CliRun r = zbuf::test::runZbuf(smoke() + " --output " + file.string(), true);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("wrote " + file.string()), std::string::npos) << r.out;
  const auto doc = nlohmann::json::parse(slurp(file), nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["repetitions"], 3);
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_TRUE(e.path() == file || e.path() == dir_ / "out") << "left behind: " << e.path();
  }
}

TEST_F(BenchCli, AFileThatCannotBeMadeFailsBeforeTheSuite) {
  const CliRun r = zbuf::test::runZbuf(
      smoke() + " --output " + (dir_ / "no" / "such" / "x.json").string(), true);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("cannot create a file in"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("memcpy"), std::string::npos) << "nothing ran:\n" << r.out;
  EXPECT_FALSE(fs::exists(dir_ / "out" / "bench.json"));
}

}  // namespace
