// The bash completion (share/bash-completion/completions/zbuf), run as bash runs it: the
// completion function with COMP_WORDS and COMP_CWORD set, COMPREPLY read back. It completes
// the commands, the options of each command (every long option of `zbuf help COMMAND`) and
// the values of the options that take a word from a list.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "support/cli_run.h"
#include "zbuf/base/sys.h"

namespace {

const std::string kScript =
    std::string(ZBUF_SOURCE_DIR) + "/share/bash-completion/completions/zbuf";

// COMPREPLY for the command line `words` with the cursor at the end of the last word.
std::vector<std::string> complete(const std::vector<std::string>& words) {
  std::string cmd =
      "bash --norc --noprofile -c 'source \"$1\"; shift; COMP_WORDS=(\"$@\"); "
      "COMP_CWORD=$(($# - 1)); _zbuf; printf \"%s\\n\" \"${COMPREPLY[@]}\"' bash '" +
      kScript + "'";
  for (const std::string& w : words) {
    cmd += " '" + w + "'";
  }
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  std::size_t n = 0;
  while (p != nullptr && (n = std::fread(buf, 1, sizeof buf, p)) > 0) {
    out.append(buf, n);
  }
  if (p != nullptr) {
    ::pclose(p);
  }
  std::vector<std::string> reply;
  for (std::size_t pos = 0; pos < out.size();) {
    const std::size_t nl = out.find('\n', pos);
    if (nl > pos) {
      reply.push_back(out.substr(pos, nl - pos));
    }
    pos = nl == std::string::npos ? out.size() : nl + 1;
  }
  return reply;
}

using Words = std::vector<std::string>;

Words sorted(Words w) {
  std::sort(w.begin(), w.end());
  return w;
}

TEST(CompletionCli, CompletesTheCommands) {
  EXPECT_EQ(sorted(complete({"zbuf", ""})),
            (Words{"bench", "help", "info", "stream", "virtio-video"}));
  EXPECT_EQ(complete({"zbuf", "st"}), (Words{"stream"}));
  EXPECT_EQ(complete({"zbuf", "-v", "be"}), (Words{"bench"})) << "after a global flag";
  EXPECT_EQ(sorted(complete({"zbuf", "help", ""})),
            (Words{"bench", "info", "stream", "virtio-video"}));
  const Words global = complete({"zbuf", "--"});
  for (const char* flag : {"--help", "--version", "--verbose", "--quiet", "--log-level"}) {
    EXPECT_NE(std::find(global.begin(), global.end(), flag), global.end()) << flag;
  }
}

TEST(CompletionCli, CompletesTheOptionsOfEachCommand) {
  EXPECT_EQ(sorted(complete({"zbuf", "stream", "--pa"})), (Words{"--path", "--pattern"}));
  EXPECT_EQ(complete({"zbuf", "bench", "--sk"}), (Words{"--skip-micro"}));
  EXPECT_EQ(complete({"zbuf", "info", "--ex"}), (Words{"--example"}));
  EXPECT_EQ(complete({"zbuf", "virtio-video", "--reg"}), (Words{"--registration"}));
  // In step with the binary: every long option of the help is offered.
  for (const auto& [command, options] : zbuf::test::helpLongOptions()) {
    const Words offered =
        command.empty() ? complete({"zbuf", "--"}) : complete({"zbuf", command, "--"});
    for (const std::string& option : options) {
      EXPECT_NE(std::find(offered.begin(), offered.end(), option), offered.end())
          << "zbuf " << command << ": " << option << " is not completed";
    }
  }
}

TEST(CompletionCli, CompletesTheValuesOfAnOption) {
  EXPECT_EQ(sorted(complete({"zbuf", "stream", "--path", ""})),
            (Words{"iio-to-app", "iio-to-usb", "usb-to-dac"}));
  EXPECT_EQ(complete({"zbuf", "stream", "--mode", "dm"}), (Words{"dmabuf"}));
  EXPECT_EQ(complete({"zbuf", "stream", "--format", "c"}), (Words{"csv"}));
  EXPECT_EQ(complete({"zbuf", "stream", "--link", "usb3"}), (Words{"usb3"}));
  EXPECT_EQ(complete({"zbuf", "--log-level", "e"}), (Words{"error"}));
  EXPECT_TRUE(complete({"zbuf", "stream", "--blocks", ""}).empty()) << "a number: no words";
  const Words output = complete({"zbuf", "stream", "--output", "-"});
  EXPECT_NE(std::find(output.begin(), output.end(), "-"), output.end()) << "- is stdout";
  const Words cpus = complete({"zbuf", "stream", "--affinity", ""});
  EXPECT_FALSE(cpus.empty()) << "the CPUs this process may use";
  const auto mine = zbuf::sys::threadAffinity();
  ASSERT_TRUE(mine.ok());
  const std::string first = std::to_string(mine->front());
  EXPECT_NE(std::find(cpus.begin(), cpus.end(), first), cpus.end()) << "CPU " << first;
}

}  // namespace
