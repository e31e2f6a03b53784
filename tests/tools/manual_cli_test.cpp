// The man page (man/zbuf.1) against the real binary: every long option of `zbuf --help` and
// `zbuf help COMMAND` is documented in it, every command has its entry, and groff reads it
// without a warning.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "support/cli_run.h"

namespace {

const std::string kPage = std::string(ZBUF_SOURCE_DIR) + "/man/zbuf.1";
const std::string kDaemonPage = std::string(ZBUF_SOURCE_DIR) + "/man/zbufd.1";

// The page's source with roff's escapes for the minus sign and fonts taken out.
std::string pageText(const std::string& path = kPage) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  for (const char* escape : {"\\fB", "\\fI", "\\fR", "\\fP", "\\&"}) {
    for (std::size_t p = s.find(escape); p != std::string::npos; p = s.find(escape, p)) {
      s.erase(p, std::string(escape).size());
    }
  }
  for (std::size_t p = s.find("\\-"); p != std::string::npos; p = s.find("\\-", p)) {
    s.erase(p, 1);
  }
  return s;
}

TEST(ManualCli, EveryLongOptionOfTheHelpIsInTheManPage) {
  const std::string page = pageText();
  ASSERT_FALSE(page.empty()) << kPage;
  std::size_t checked = 0;
  for (const auto& [command, options] : zbuf::test::helpLongOptions()) {
    EXPECT_FALSE(options.empty()) << "zbuf help " << command;
    for (const std::string& option : options) {
      ++checked;
      EXPECT_NE(page.find(option), std::string::npos)
          << "zbuf help " << command << " lists " << option << ", man/zbuf.1 does not";
    }
  }
  EXPECT_GT(checked, 30U);
  for (const char* command : {"stream", "info", "bench", "virtio-video", "help"}) {
    const bool entry = page.find(std::string("\n.B ") + command + "\n") != std::string::npos ||
                       page.find(std::string("\n.BR ") + command + " ") != std::string::npos;
    EXPECT_TRUE(entry) << "COMMANDS: " << command;
  }
  for (const char* section : {"STREAM OPTIONS", "INFO OPTIONS", "BENCH OPTIONS",
                              "VIRTIO-VIDEO OPTIONS", "EXIT STATUS", "ENVIRONMENT"}) {
    EXPECT_NE(page.find(std::string(".SH ") + section), std::string::npos) << section;
  }
}

// groff (Debian's groff-base, in scripts/deps.sh) in its strictest warning mode.
zbuf::test::CliRun groff(const std::string& page) {
  zbuf::test::CliRun run;
  const std::string cmd = "groff -man -ww -z '" + page + "' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  std::size_t n = 0;
  while (p != nullptr && (n = std::fread(buf, 1, sizeof buf, p)) > 0) {
    run.out.append(buf, n);
  }
  const int st = p != nullptr ? ::pclose(p) : -1;
  run.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return run;
}

TEST(ManualCli, GroffReadsThePageWithoutWarnings) {
  for (const std::string& page : {kPage, kDaemonPage}) {
    const zbuf::test::CliRun r = groff(page);
    EXPECT_EQ(r.status, 0) << page << "\n" << r.out;
    EXPECT_EQ(r.out, "") << page << ": groff warnings";
  }
}

#ifdef ZBUFD_PATH
// zbufd's page against `zbufd --help`: every long option is in it.
TEST(ManualCli, EveryLongOptionOfZbufdIsInItsPage) {
  const std::string page = pageText(kDaemonPage);
  ASSERT_FALSE(page.empty()) << kDaemonPage;
  FILE* p = ::popen((std::string(ZBUFD_PATH) + " --help 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string help;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
    help.append(buf, n);
  }
  ASSERT_EQ(::pclose(p), 0);
  const std::set<std::string> options = zbuf::test::longOptionsIn(help);
  EXPECT_GT(options.size(), 12U) << help;
  for (const std::string& option : options) {
    EXPECT_NE(page.find(option), std::string::npos)
        << "zbufd --help lists " << option << ", man/zbufd.1 does not";
  }
}
#endif

}  // namespace
