// zbuf bench --output FILE|-: the suite's JSON document (bench.json's) on standard output with
// the report on standard error, or in FILE, whole (no temporary left beside it); a FILE that
// cannot be made fails before the suite runs. A smoke run: --quick --skip-micro, 1 MiB runs.
#include <gtest/gtest.h>
#include <sys/wait.h>
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

namespace {

#ifdef ZBUF_WITH_BENCH  // the micro-benchmark programs are built beside zbuf (release only)
// The micro-benchmarks, cut to two rows of the coherency syncs: the report's sync-cost table
// pairs 4 KiB and 2 MiB pages per size with their spread and ratio, in bench.md and bench.json.
TEST_F(BenchCli, TheSyncCostTablePairsThePageSizes) {
  const CliRun r = zbuf::test::runZbuf(
      "bench --quick --bytes 1M --micro-filter 'BM_SyncUnchanged/pages(4k|2m)/65536$' --out " +
          (dir_ / "out").string(),
      true);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto doc = nlohmann::json::parse(slurp(dir_ / "out" / "bench.json"));
  ASSERT_EQ(doc["micro"]["bench_sg_bench"].size(), 8U);     // 2 runs x mean, median, stddev, cv
  EXPECT_EQ(doc["micro"]["bench_fence_bench"].size(), 0U);  // nothing matched there
  ASSERT_EQ(doc["sync_cost"].size(), 1U);
  const auto& row = doc["sync_cost"][0];
  EXPECT_EQ(row["benchmark"], "BM_SyncUnchanged");
  EXPECT_EQ(row["bytes"], 65536);
  EXPECT_GT(row["pages4k_us"]["median"].get<double>(), 0);
  EXPECT_GT(row["pages2m_us"]["median"].get<double>(), 0);
  EXPECT_GE(row["pages4k_us"]["stddev"].get<double>(), 0);
  EXPECT_DOUBLE_EQ(
      row["ratio_4k_over_2m"].get<double>(),
      row["pages4k_us"]["median"].get<double>() / row["pages2m_us"]["median"].get<double>());
  const std::string md = slurp(dir_ / "out" / "bench.md");
  EXPECT_NE(md.find("## Sync cost against buffer size"), std::string::npos) << md;
  EXPECT_NE(md.find("| BM_SyncUnchanged | 64.0 KiB |"), std::string::npos) << md;
  EXPECT_NE(md.find("| benchmark | median | stddev |"), std::string::npos) << md;
}
#endif

TEST_F(BenchCli, MicroFilterExcludesSkipMicroAndQuotes) {
  EXPECT_EQ(zbuf::test::runZbuf(smoke() + " --micro-filter Sync", true).status, 2);
  EXPECT_EQ(zbuf::test::runZbuf(
                "bench --quick --micro-filter \"a'b\" --out " + (dir_ / "out").string(), true)
                .status,
            2);
}

// Micro-benchmark programs of our own making beside a copy of zbuf (zbuf bench runs the
// bench_*_bench programs in the bench/ directory beside its binary): one that writes NaN,
// as Google Benchmark does for the cv of one repetition, is read (NaN becomes null); one whose
// output is not JSON fails the suite, named in the document.
class BenchCliFakeMicro : public BenchCli {
 protected:
  void SetUp() override {
    BenchCli::SetUp();
    fs::create_directories(dir_ / "bin" / "bench");
    fs::copy_file(ZBUF_CLI_PATH, dir_ / "bin" / "zbuf");
    fs::permissions(dir_ / "bin" / "zbuf", fs::perms::owner_all);
  }
  void addProgram(const std::string& name, const std::string& output) {
    const fs::path path = dir_ / "bin" / "bench" / name;
    std::ofstream(path) << "#!/bin/sh\ncat <<'JSON'\n" << output << "\nJSON\n";
    fs::permissions(path, fs::perms::owner_all);
  }
  CliRun run() {
    CliRun r;
    const std::string cmd = (dir_ / "bin" / "zbuf").string() +
                            " bench --quick --bytes 1M --repetitions 1 --out " +
                            (dir_ / "out").string() + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    std::size_t n = 0;
    while (p != nullptr && (n = std::fread(buf, 1, sizeof buf, p)) > 0) {
      r.out.append(buf, n);
    }
    const int st = p != nullptr ? ::pclose(p) : -1;
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
  }
};

TEST_F(BenchCliFakeMicro, NanInAMicroBenchmarkIsReadAsNull) {
  addProgram("bench_nan_bench",
             R"({"benchmarks": [{"name": "BM_X_cv", "run_name": "BM_X", "aggregate_name": "cv",)"
             R"( "real_time": nan, "time_unit": "ns"}, {"name": "BM_X_median", "run_name": "BM_X",)"
             R"( "aggregate_name": "median", "real_time": 12.5, "time_unit": "ns"}]})");
  const CliRun r = run();
  ASSERT_EQ(r.status, 0) << r.out;
  const auto doc = nlohmann::json::parse(slurp(dir_ / "out" / "bench.json"));
  ASSERT_EQ(doc["micro"]["bench_nan_bench"].size(), 2U) << doc["micro"].dump();
  EXPECT_TRUE(doc["micro"]["bench_nan_bench"][0]["real_time"].is_null());
  EXPECT_EQ(doc["micro"]["bench_nan_bench"][1]["real_time"], 12.5);
  EXPECT_NE(slurp(dir_ / "out" / "bench.md").find("| BM_X | 12.5 ns |"), std::string::npos);
}

TEST_F(BenchCliFakeMicro, AMicroBenchmarkThatCannotBeReadFailsTheSuite) {
  addProgram("bench_broken_bench", "Segmentation fault, or anything but JSON");
  const CliRun r = run();
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("bench_broken_bench: its JSON output cannot be parsed"), std::string::npos)
      << r.out;
  const auto doc = nlohmann::json::parse(slurp(dir_ / "out" / "bench.json"));
  EXPECT_TRUE(doc["micro"]["bench_broken_bench"].contains("error"));
}

}  // namespace
