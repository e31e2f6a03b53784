// Black-box tests of `zbuf stream`: flags, validation (exit status 2), JSON output, short
// data-mode runs of every path verifying every byte, and fault injection (non-zero status).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/cli_run.h"
#include "support/spawn.h"
#include "support/wait_until.h"

namespace {

using zbuf::test::CliRun;

CliRun zbuf(const std::string& args, bool withStderr = true) {
  return zbuf::test::runZbuf(args, withStderr);
}

TEST(StreamCli, HelpListsEveryFlag) {
  CliRun r = zbuf("stream --help");
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
    CliRun r = zbuf(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.out;
    EXPECT_FALSE(r.out.empty()) << args << ": the error is explained";
  }
}

TEST(StreamCli, TheBackendIsChosenAndTheKernelBackendNamesWhatIsMissing) {
  // auto: the real kernel's heap where it has one, else the emulation's; every byte checked.
  CliRun a =
      zbuf("stream --backend auto --mode dmabuf --seconds 0.2 --block-size 64K --json", false);
  ASSERT_EQ(a.status, 0) << a.out;
  const auto doc = nlohmann::json::parse(a.out);
  EXPECT_EQ(doc["settings"]["backend"], "auto");
  EXPECT_EQ(doc["runs"][0]["mismatches"], 0);
  EXPECT_GT(doc["runs"][0]["verified_bytes"].get<std::uint64_t>(), 0U);
  // kernel: no kernel here has the DMABUF devices; refused, naming the first one missing.
  if (::access("/dev/iio:device0", F_OK) != 0) {
    CliRun k = zbuf("stream --backend kernel --seconds 0.2");
    EXPECT_EQ(k.status, 2) << k.out;
    EXPECT_NE(k.out.find("/dev/iio:device0"), std::string::npos) << k.out;
  }
  CliRun bad = zbuf("stream --backend real --seconds 0.2");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.out.find("'real' is not a backend"), std::string::npos) << bad.out;
  // A daemon's kernel is the daemon's: no other backend with --daemon.
  CliRun d = zbuf("stream --daemon /nonexistent/zbufd.sock --backend auto --bytes 1M");
  EXPECT_NE(d.status, 0);
}

TEST(StreamCli, DaemonModeRefusesBoardSettingsAndNamesAMissingDaemon) {
  // What configures a board built for the run is zbufd's with --daemon: a usage error, named.
  for (const char* flag :
       {"--rate 1000", "--channels 2", "--link usb2", "--pattern prbs", "--benchmark",
        "--coherency non-coherent", "--check-cpu-access", "--fail-transfer 2"}) {
    CliRun r = zbuf(std::string("stream --daemon /nonexistent/zbufd.sock --bytes 1M ") + flag);
    EXPECT_EQ(r.status, 2) << flag << "\n" << r.out;
    const std::string name = std::string(flag).substr(0, std::string(flag).find(' '));
    EXPECT_NE(r.out.find(name + " configures the board"), std::string::npos) << r.out;
  }
  // No daemon at the socket: a failure that says where it looked.
  CliRun r = zbuf("stream --daemon /nonexistent/zbufd.sock --bytes 1M");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("--daemon"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ENOENT"), std::string::npos) << r.out;
}

TEST(StreamCli, JsonHasEveryFieldAndBothModes) {
  CliRun r = zbuf("stream --path iio-to-app --bytes 8M --block-size 256K --json", false);
  ASSERT_EQ(r.status, 0) << r.out;
  auto doc = nlohmann::json::parse(r.out);
  ASSERT_EQ(doc["runs"].size(), 2U);
  for (const auto& run : doc["runs"]) {
    for (const char* field : {"mode", "path", "block_bytes", "blocks_in_flight", "blocks_moved",
                              "bytes", "seconds", "mib_per_s", "app_cpu_s_per_gib",
                              "hw_cpu_s_per_gib", "verified_bytes", "mismatches", "errors"}) {
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
    CliRun r =
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

TEST(StreamCli, ARunThatMovesNoBlockFailsWithTheReason) {
  for (const char* mode : {"fileio", "dmabuf"}) {
    CliRun r = zbuf(std::string("stream --seconds 1e-9 --mode ") + mode);
    EXPECT_EQ(r.status, 1) << mode << "\n" << r.out;
    EXPECT_NE(r.out.find("no block moved"), std::string::npos) << r.out;
  }
}

TEST(StreamCli, JsonDescribesTheRun) {
  CliRun r = zbuf("stream --path iio-to-app --seconds 1.2 --block-size 256K --json", false);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["zbuf_version"], ZBUF_VERSION);
  EXPECT_TRUE(doc["timestamp"].is_string());
  EXPECT_GE(doc["host"]["cores"].get<int>(), 1);
  EXPECT_TRUE(doc["host"]["kernel"].is_string());
  const auto& s = doc["settings"];
  EXPECT_EQ(s["path"], "iio-to-app");
  EXPECT_EQ(s["block_bytes"], 256 * 1024);
  EXPECT_EQ(s["blocks_in_flight"], 4);
  EXPECT_EQ(s["seconds"], 1.2);
  EXPECT_TRUE(s["bytes"].is_null());
  EXPECT_TRUE(s["link"].is_null()) << "no link on iio-to-app";
  EXPECT_EQ(s["interval_s"], 1.0) << "intervals of 1 s by default in the JSON";
  for (const auto& run : doc["runs"]) {
    EXPECT_EQ(run["blocks_in_flight"], 4);
    EXPECT_EQ(run["blocks_moved"].get<std::uint64_t>() * 256 * 1024, run["bytes"]);
    ASSERT_EQ(run["intervals"].size(), 2U) << run["intervals"].dump();
    EXPECT_EQ(run["intervals"][0]["start_s"], 0.0);
    EXPECT_GE(run["intervals"][0]["end_s"].get<double>(), 1.0);
    EXPECT_EQ(run["intervals"][1]["end_s"], run["seconds"]);
    EXPECT_EQ(run["intervals"][0]["bytes"].get<std::uint64_t>() +
                  run["intervals"][1]["bytes"].get<std::uint64_t>(),
              run["bytes"]);
  }
}

TEST(StreamCli, IntervalLinesFollowTheHeaderWhenStdoutIsNotATerminal) {
  CliRun r = zbuf("stream --path iio-to-app --mode fileio --seconds 2.2", false);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto header = r.out.find("zbuf stream: iio-to-app");
  const auto first = r.out.find("0.00-");
  ASSERT_NE(header, std::string::npos) << r.out;
  ASSERT_NE(first, std::string::npos) << "an interval line: " << r.out;
  EXPECT_LT(header, first) << "the header comes before the run";
  // A second interval (it starts where the first ended, about 1 s in: ticks come 4 times a
  // second, later on a loaded machine).
  EXPECT_LT(r.out.find("\n  fileio ", first), r.out.find("throughput")) << r.out;
  EXPECT_LT(first, r.out.find("throughput")) << "and the results after it";
  r = zbuf("stream --path iio-to-app --mode fileio --seconds 1.5 --interval 0", false);
  EXPECT_EQ(r.out.find("0.00-"), std::string::npos) << "--interval 0: none\n" << r.out;
}

TEST(StreamCli, CsvHasOneRowPerRun) {
  CliRun r = zbuf("stream --path iio-to-app --bytes 4M --format csv --repeat 2", false);
  ASSERT_EQ(r.status, 0) << r.out;
  std::vector<std::string> lines;
  for (std::size_t pos = 0; pos < r.out.size();) {
    const auto nl = r.out.find('\n', pos);
    lines.push_back(r.out.substr(pos, nl - pos));
    pos = nl == std::string::npos ? r.out.size() : nl + 1;
  }
  ASSERT_EQ(lines.size(), 5U) << r.out;
  EXPECT_EQ(lines[0].rfind("mode,repetition,path,block_bytes,blocks_in_flight,blocks_moved", 0),
            0U);
  EXPECT_EQ(lines[1].rfind("fileio,1,iio-to-app,", 0), 0U) << lines[1];
  EXPECT_EQ(lines[2].rfind("dmabuf,1,", 0), 0U) << lines[2];
  EXPECT_EQ(lines[3].rfind("fileio,2,", 0), 0U) << lines[3];
}

TEST(StreamCli, RepeatAlternatesAndReportsMediansAndSpread) {
  CliRun r = zbuf("stream --path iio-to-app --bytes 4M --repeat 3 --json", false);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto doc = nlohmann::json::parse(r.out);
  ASSERT_EQ(doc["runs"].size(), 6U);
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(doc["runs"][i]["mode"], i % 2 == 0 ? "fileio" : "dmabuf") << i;
    EXPECT_EQ(doc["runs"][i]["repetition"], i / 2 + 1) << i;
  }
  for (const char* mode : {"fileio", "dmabuf"}) {
    const auto& m = doc["summary"][mode]["mib_per_s"];
    EXPECT_EQ(doc["summary"][mode]["runs"], 3);
    EXPECT_LE(m["min"].get<double>(), m["median"].get<double>());
    EXPECT_LE(m["median"].get<double>(), m["max"].get<double>());
  }
  r = zbuf("stream --path iio-to-app --bytes 4M --repeat 2", false);
  EXPECT_NE(r.out.find("spread (min-max)"), std::string::npos) << r.out;
}

TEST(StreamCli, TheCoverLetterLineOnlyComparesLikeWithLike) {
  CliRun r = zbuf("stream --path iio-to-usb --bytes 8M", false);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("cover letters"), std::string::npos) << r.out;
  for (const char* other : {"--path iio-to-app", "--path usb-to-dac", "--benchmark"}) {
    r = zbuf(std::string("stream --bytes 8M ") + other, false);
    ASSERT_EQ(r.status, 0) << other << "\n" << r.out;
    EXPECT_EQ(r.out.find("cover letters"), std::string::npos) << other << "\n" << r.out;
  }
}

// On a 40-column terminal (a pty from script(1); COLUMNS since the pty has no size) the
// progress line is cut to 39 columns, so it never wraps and leaves no stale lines.
TEST(StreamCli, TheProgressLineFitsTheTerminal) {
  if (std::system("command -v script >/dev/null 2>&1") != 0) {  // NOLINT(cert-env33-c)
    GTEST_SKIP() << "script(1) is not installed";
  }
  const std::string cmd = std::string("timeout -s KILL 30 script -qec 'COLUMNS=40 ") +
                          ZBUF_CLI_PATH +
                          " stream --seconds 1 --mode fileio --path iio-to-app' /dev/null "
                          "</dev/null";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
    out.append(buf, n);
  }
  ::pclose(p);
  std::size_t progressLines = 0;
  for (std::size_t pos = 0; pos < out.size();) {
    auto cr = out.find('\r', pos);
    std::string seg = out.substr(pos, cr == std::string::npos ? std::string::npos : cr - pos);
    pos = cr == std::string::npos ? out.size() : cr + 1;
    if (const auto esc = seg.find("\033[2K"); esc != std::string::npos) {
      seg.erase(esc, 4);
    }
    if (seg.find("MiB/s") != std::string::npos && seg.find('\n') == std::string::npos) {
      ++progressLines;
      EXPECT_LT(seg.size(), 40U) << "'" << seg << "'";
    }
  }
  EXPECT_GE(progressLines, 1U) << out;
}

TEST(StreamCli, BenchmarkModeVerifiesNothing) {
  CliRun r = zbuf("stream --json --benchmark --bytes 8M --path iio-to-app", false);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto doc = nlohmann::json::parse(r.out);  // the loop must not range over a temporary
  for (const auto& run : doc["runs"]) {
    EXPECT_EQ(run["verified_bytes"], 0);
  }
}

TEST(StreamCli, InjectedFaultMakesTheExitStatusNonZero) {
  for (const char* mode : {"fileio", "dmabuf"}) {
    CliRun r =
        zbuf(std::string("stream --bytes 8M --block-size 1M --fail-transfer 3 --mode ") + mode);
    EXPECT_EQ(r.status, 1) << mode << "\n" << r.out;
    EXPECT_NE(r.out.find("failed"), std::string::npos) << r.out;
  }
}

TEST(StreamCli, TableShowsBothModesAndTheSpeedup) {
  CliRun r = zbuf("stream --bytes 8M --block-size 512K", false);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("fileio"), std::string::npos);
  EXPECT_NE(r.out.find("dmabuf"), std::string::npos);
  EXPECT_NE(r.out.find("speed-up"), std::string::npos);
  EXPECT_EQ(r.out.find('\r'), std::string::npos) << "no progress line when stdout is not a tty";
}

}  // namespace

namespace {

struct Signalled {
  int status = -1;
  std::string out;
};

// Runs `zbuf stream <args> --json` and sends it `signal` after one second (timeout(1)); the
// run is killed if it does not end within 20 seconds more.
Signalled streamWithSignal(const char* signal, const std::string& args) {
  const std::string cmd = std::string("timeout --preserve-status -k 20 -s ") + signal + " 1 " +
                          ZBUF_CLI_PATH + " stream --json " + args + " 2>/dev/null";
  Signalled r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    return r;
  }
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
    r.out.append(buf, n);
  }
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

TEST(StreamCli, CtrlCStopsCleanlyAndStillPrintsTheResults) {
  // SIGINT after one second of a 60-second run: the run so far is reported, status 130.
  const Signalled s = streamWithSignal("INT", "--seconds 60");
  EXPECT_EQ(s.status, 130);
  auto doc = nlohmann::json::parse(s.out);
  EXPECT_TRUE(doc["interrupted"].get<bool>());
  ASSERT_GE(doc["runs"].size(), 1U);
  EXPECT_TRUE(doc["runs"][0]["stopped"].get<bool>());
  EXPECT_GT(doc["runs"][0]["bytes"].get<std::uint64_t>(), 0U);
  EXPECT_LT(doc["runs"][0]["seconds"].get<double>(), 30.0);
  EXPECT_EQ(doc["runs"][0]["mismatches"], 0);
}

TEST(StreamCli, SigtermAndSighupPrintTheResultsLikeSigint) {
  for (const auto& [signal, status] : {std::pair{"TERM", 143}, std::pair{"HUP", 129}}) {
    const Signalled s = streamWithSignal(signal, "--seconds 60 --mode fileio");
    EXPECT_EQ(s.status, status) << signal;
    const auto doc = nlohmann::json::parse(s.out, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << signal << ": " << s.out;
    EXPECT_TRUE(doc["interrupted"].get<bool>()) << signal;
    ASSERT_EQ(doc["runs"].size(), 1U) << signal;
    EXPECT_TRUE(doc["runs"][0]["stopped"].get<bool>()) << signal;
  }
}

// Blocks that fill slowly (1 MiB at 8000 B/s takes 131 s): Ctrl-C cancels the blocks in
// flight and the run ends at once, having moved nothing.
TEST(StreamCli, CtrlCIsHonouredWhileBlocksFillSlowly) {
  for (const char* mode : {"fileio", "dmabuf"}) {
    const Signalled s =
        streamWithSignal("INT", std::string("--rate 1000 --seconds 60 --mode ") + mode);
    EXPECT_EQ(s.status, 130) << mode;
    const auto doc = nlohmann::json::parse(s.out, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << mode << ": " << s.out;
    ASSERT_EQ(doc["runs"].size(), 1U);
    EXPECT_LT(doc["runs"][0]["seconds"].get<double>(), 2.0) << mode;
    EXPECT_EQ(doc["runs"][0]["bytes"], 0) << mode;
    EXPECT_EQ(doc["runs"][0]["errors"], 0) << mode << ": a cancelled block is no failure";
  }
}

// --seconds is honoured while blocks fill slowly, on every path, in both modes: the run
// ends on time and, having moved no block, fails with the reason.
TEST(StreamCli, SecondsAreHonouredWhileBlocksFillSlowly) {
  for (const char* path : {"iio-to-usb", "iio-to-app", "usb-to-dac"}) {
    for (const char* mode : {"fileio", "dmabuf"}) {
      const std::string args =
          std::string("stream --rate 1 --seconds 0.2 --path ") + path + " --mode " + mode;
      const CliRun r = zbuf::test::runZbuf(args, true, "", 20);
      EXPECT_EQ(r.status, 1) << args << "\n" << r.out;
      EXPECT_NE(r.out.find("no block moved"), std::string::npos) << args << "\n" << r.out;
      EXPECT_NE(r.out.find("takes"), std::string::npos) << "the reason: " << r.out;
    }
  }
  const CliRun r =
      zbuf::test::runZbuf("stream --rate 26214 --seconds 1 --mode dmabuf --json", false, "", 20);
  EXPECT_EQ(r.status, 1) << r.out;
  const auto doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.out;
  EXPECT_LT(doc["runs"][0]["seconds"].get<double>(), 1.5);
}

}  // namespace

namespace {

TEST(StreamCli, FlagsThatDoNotApplyAreRefusedWithTheReason) {
  for (const auto& [args, why] :
       {std::pair{"--batch 2 --mode fileio", "--batch sets the zero-copy loop"},
        std::pair{"--check-cpu-access --path iio-to-usb", "--check-cpu-access checks"},
        std::pair{"--check-cpu-access --path usb-to-dac --mode dmabuf", "--check-cpu-access"},
        std::pair{"--check-cpu-access --path iio-to-app --mode fileio", "--check-cpu-access"},
        std::pair{"--check-cpu-access --path iio-to-app --benchmark", "--check-cpu-access"}}) {
    CliRun r = zbuf(std::string("stream --bytes 1M ") + args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(why), std::string::npos) << args << "\n" << r.out;
  }
  // Where they apply, they run.
  EXPECT_EQ(zbuf("stream --bytes 1M --block-size 64K --batch 2 --mode dmabuf").status, 0);
  EXPECT_EQ(
      zbuf("stream --bytes 1M --block-size 64K --path iio-to-app --mode both --check-cpu-access")
          .status,
      0);
}

TEST(StreamCli, AFractionalSizeThatIsWholeBytesIsTaken) {
  CliRun r =
      zbuf("stream --path iio-to-app --mode dmabuf --block-size 1.5M --bytes 3M --json", false);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["settings"]["block_bytes"], 1572864);
  EXPECT_EQ(doc["runs"][0]["bytes"], 3 * 1024 * 1024);
}

}  // namespace

namespace {

// The samples go to standard output, a pipe this test never reads: once it is full the
// application is stuck in write(2) (retried after EINTR), so the first SIGINT cannot end the
// run; a second one, 0.2 s or more after it, exits at once with 130.
TEST(StreamCli, ASecondCtrlCExitsAtOnceWhenTheFirstCannotStopTheRun) {
  int out = -1;
  const pid_t pid =
      zbuf::testing_support::spawn({ZBUF_CLI_PATH, "stream", "--path", "iio-to-app", "--mode",
                                    "dmabuf", "--seconds", "60", "--output", "-"},
                                   {}, &out);
  ASSERT_GT(pid, 0);
  const int capacity = ::fcntl(out, F_GETPIPE_SZ);
  ASSERT_GT(capacity, 0);
  EXPECT_TRUE(zbuf::testing_support::waitUntil([&] {
    int queued = 0;
    return ::ioctl(out, FIONREAD, &queued) == 0 && queued >= capacity;
  })) << "the pipe never filled";
  ASSERT_EQ(::kill(pid, SIGINT), 0);  // our own child, by pid
  // A request delivered twice within 0.2 s counts once (timeout(1), a terminal's group kill);
  // the wait is that rule's, not a guess at how long anything takes.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, WNOHANG), 0) << "the first SIGINT ended a stuck run";
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  EXPECT_TRUE(zbuf::testing_support::waitUntil([&] {
    return ::waitpid(pid, &status, WNOHANG) == pid;
  })) << "the second SIGINT did not end the run";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 130) << status;
  ::close(out);
}

}  // namespace

namespace {

// iio_rwdev's and iperf3's short flags are the long ones: -t seconds, -J JSON, -i interval,
// -B benchmark, -b buffer samples, -s samples (of the channel set: 4 channels x 16 bits here).
TEST(StreamCli, ShortFlagsAreTheLongOnes) {
  CliRun r = zbuf("stream -t 0.3 -J -i 0 -B --path iio-to-app --mode dmabuf -b 8192", false);
  ASSERT_EQ(r.status, 0) << r.out;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["settings"]["seconds"], 0.3);
  EXPECT_EQ(doc["settings"]["interval_s"], 0.0);
  EXPECT_EQ(doc["settings"]["benchmark"], true);
  EXPECT_EQ(doc["settings"]["block_samples"], 8192);
  EXPECT_EQ(doc["settings"]["block_bytes"], 8192 * 8);
  r = zbuf("stream -s 65536 -J --path iio-to-app --mode dmabuf -b 8192", false);
  ASSERT_EQ(r.status, 0) << r.out;
  doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["settings"]["bytes"], 65536 * 8);
  EXPECT_EQ(doc["runs"][0]["bytes"], 65536 * 8);
}

}  // namespace
