// zbuf stream --affinity APP[:HW]: CPU lists checked against what the process may use (status
// 2 with the CPUs it may use), the settings in the JSON, and, seen from /proc while a run
// goes on, the application thread on APP and the emulated hardware threads on HW.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>  // NOLINT(modernize-deprecated-headers): POSIX kill()
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/cli_run.h"
#include "support/wait_until.h"
#include "zbuf/base/sys.h"

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX, for posix_spawn

namespace {

using zbuf::test::CliRun;

CliRun zbuf(const std::string& args, bool withStderr = true) {
  return zbuf::test::runZbuf(args, withStderr);
}

void expectUsage(const std::string& args, const std::string& says) {
  const CliRun r = zbuf(args);
  EXPECT_EQ(r.status, 2) << args << "\n" << r.out;
  EXPECT_NE(r.out.find(says), std::string::npos) << args << ": expected '" << says << "' in\n"
                                                 << r.out;
}

std::vector<unsigned> myCpus() {
  auto cpus = zbuf::sys::threadAffinity();
  return cpus.ok() ? *cpus : std::vector<unsigned>{};
}

TEST(StreamAffinityCli, BadListsAndUnavailableCpusAreUsageErrors) {
  expectUsage("stream --affinity x", "'x' is not a CPU list");
  expectUsage("stream --affinity 0,", "'0,' is not a CPU list");
  expectUsage("stream --affinity 3-1", "runs backwards");
  expectUsage("stream --affinity :", "needs a CPU list");
  expectUsage("stream --affinity 1024", "out of range (0..1023)");
  // The CPU past the last one this process may use is not available to it.
  const std::vector<unsigned> mine = myCpus();
  ASSERT_FALSE(mine.empty());
  const std::string missing = std::to_string(mine.back() + 1);
  expectUsage("stream --affinity " + missing, "CPU " + missing + " is not available");
  expectUsage("stream --affinity 0:" + missing, "it may use");
}

TEST(StreamAffinityCli, TheJsonSaysWhereEachSideRan) {
  const std::vector<unsigned> mine = myCpus();
  ASSERT_FALSE(mine.empty());
  const std::string app = std::to_string(mine.front());
  const std::string hw = std::to_string(mine.back());
  CliRun r = zbuf("stream --path iio-to-app --bytes 4M --json --affinity " + app + ":" + hw, false);
  ASSERT_EQ(r.status, 0) << r.out;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["settings"]["affinity"]["app"], app);
  EXPECT_EQ(doc["settings"]["affinity"]["hw"], hw);
  r = zbuf("stream --path iio-to-app --bytes 4M --json --affinity :" + hw, false);
  ASSERT_EQ(r.status, 0) << r.out;
  doc = nlohmann::json::parse(r.out);
  EXPECT_TRUE(doc["settings"]["affinity"]["app"].is_null()) << "the application is not pinned";
  EXPECT_EQ(doc["settings"]["affinity"]["hw"], hw);
  r = zbuf("stream --path iio-to-app --bytes 4M --affinity " + app + ":" + hw, false);
  EXPECT_NE(r.out.find("application on CPU " + app + ", hardware threads on CPU " + hw),
            std::string::npos)
      << r.out;
}

std::string field(const std::string& statusFile, const std::string& name) {
  std::ifstream in(statusFile);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0) {
      const std::size_t v = line.find_first_not_of(" \t", name.size() + 1);
      return v == std::string::npos ? "" : line.substr(v);
    }
  }
  return "";
}

// The threads of a running zbuf stream, from /proc/PID/task: the main (application) thread's
// CPUs and the ADC's DMA engine's (iioin-dma0, a hardware thread).
TEST(StreamAffinityCli, TheThreadsRunWhereTheyWereTold) {
  const std::vector<unsigned> mine = myCpus();
  ASSERT_FALSE(mine.empty());
  const std::string app = std::to_string(mine.front());
  const std::string hw = std::to_string(mine.back());
  const std::string affinity = app + ":" + hw;
  std::vector<std::string> args{ZBUF_CLI_PATH, "stream", "--path",     "iio-to-app", "--mode",
                                "fileio",      "--rate", "65536",      "--seconds",  "3",
                                "--interval",  "0",      "--affinity", affinity};
  std::vector<char*> argv;
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);

  // Wait (bounded) until the DMA engine's thread exists; the run goes on for 3 s.
  const std::string proc = "/proc/" + std::to_string(pid);
  std::string mainCpus;
  std::string dmaCpus;
  int status = 0;
  bool reaped = false;
  zbuf::testing_support::waitUntil(
      [&] {
        std::error_code ec;
        for (const auto& task : std::filesystem::directory_iterator(proc + "/task", ec)) {
          std::ifstream comm(task.path() / "comm");
          std::string name;
          std::getline(comm, name);
          if (name == "iioin-dma0") {
            dmaCpus = field(task.path() / "status", "Cpus_allowed_list");
            mainCpus = field(proc + "/status", "Cpus_allowed_list");
          }
        }
        if (!dmaCpus.empty()) {
          return true;
        }
        // The run ended: the assertions below say whether it was seen.
        reaped = ::waitpid(pid, &status, WNOHANG) == pid;
        return reaped;
      },
      std::chrono::seconds(20));
  if (!reaped) {
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(mainCpus, app) << "the application thread";
  EXPECT_EQ(dmaCpus, hw) << "the ADC's DMA engine (a hardware thread)";
}

}  // namespace
