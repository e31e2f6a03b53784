// Runs the real `zbuf` binary for black-box command-line tests (tests/tools/).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace zbuf::test {

struct CliRun {
  int status = -1;  // exit status, or 128 + signal
  std::string out;
};

// Runs `zbuf <args>` through the shell; stdout is captured, stderr too when `withStderr`.
// `env` ("NAME=value ...") is put in front of the command. The run is bounded: a zbuf that
// does not end within `limitSeconds` is killed (status 128 + 9).
inline CliRun runZbuf(const std::string& args, bool withStderr = true, const std::string& env = "",
                      int limitSeconds = 120) {
  const std::string cmd = env + (env.empty() ? "" : " ") + "timeout -s KILL " +
                          std::to_string(limitSeconds) + " " + std::string(ZBUF_CLI_PATH) + " " +
                          args + (withStderr ? " 2>&1" : " 2>/dev/null");
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

}  // namespace zbuf::test
