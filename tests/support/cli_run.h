// Runs the real `zbuf` binary for black-box command-line tests (tests/tools/).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <set>
#include <string>

namespace zbuf::test {

struct CliRun {
  int status = -1;  // exit status, or 128 + signal
  std::string out;
};

// Runs a shell command line (sh -c); its stdout and exit status (or 128 + signal).
inline CliRun runShell(const std::string& cmd) {
  CliRun r;
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

// Runs `zbuf <args>` through the shell; stdout is captured, stderr too when `withStderr`.
// `env` ("NAME=value ...") is put in front of the command. The run is bounded: a zbuf that
// does not end within `limitSeconds` is killed (status 128 + 9).
inline CliRun runZbuf(const std::string& args, bool withStderr = true, const std::string& env = "",
                      int limitSeconds = 120) {
  return runShell(env + (env.empty() ? "" : " ") + "timeout -s KILL " +
                  std::to_string(limitSeconds) + " " + std::string(ZBUF_CLI_PATH) + " " + args +
                  (withStderr ? " 2>&1" : " 2>/dev/null"));
}

// The long options ("--block-size") a text names: every "--" followed by a lower-case letter,
// up to the first character that is not a letter, digit or '-'.
inline std::set<std::string> longOptionsIn(const std::string& text) {
  std::set<std::string> out;
  for (std::size_t pos = text.find("--"); pos != std::string::npos; pos = text.find("--", pos)) {
    std::size_t end = pos + 2;
    if (end < text.size() && std::islower(static_cast<unsigned char>(text[end])) != 0 &&
        (pos == 0 || text[pos - 1] != '-')) {
      while (end < text.size() &&
             (std::isalnum(static_cast<unsigned char>(text[end])) != 0 || text[end] == '-')) {
        ++end;
      }
      out.insert(text.substr(pos, end - pos));
    }
    pos = end;
  }
  return out;
}

// Every long option of zbuf's help, per command ("" for zbuf's own), from the real binary.
inline std::array<std::pair<std::string, std::set<std::string>>, 5> helpLongOptions() {
  std::array<std::pair<std::string, std::set<std::string>>, 5> all{
      {{"", {}}, {"stream", {}}, {"info", {}}, {"bench", {}}, {"virtio-video", {}}}};
  for (auto& [command, options] : all) {
    options = longOptionsIn(runZbuf(command.empty() ? "--help" : "help " + command, false).out);
  }
  return all;
}

}  // namespace zbuf::test
