// spawn: starts a program (often this test binary again, /proc/self/exe, with a variable that
// makes it a child client) with variables added, its stdout to a pipe when asked, and an fd as
// its fd 3 when asked (a socket as systemd passes one). The caller waits for it (waitpid) and
// stops it by its pid only; a child that must not outlive the test sets PR_SET_PDEATHSIG itself.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

extern char** environ;  // NOLINT(readability-redundant-declaration): POSIX, for posix_spawn

namespace zbuf::testing_support {

// The child's pid, or -1. `out`: the read end of the child's stdout (close it), if not null.
inline pid_t spawn(std::vector<std::string> argv, const std::vector<std::string>& env, int* out,
                   int fd3 = -1) {
  std::vector<char*> args;
  for (auto& a : argv) {
    args.push_back(a.data());
  }
  args.push_back(nullptr);
  std::vector<std::string> envStrings;
  for (char** e = environ; *e != nullptr; ++e) {
    envStrings.emplace_back(*e);
  }
  envStrings.insert(envStrings.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : envStrings) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  int pipeFds[2] = {-1, -1};
  if (out != nullptr) {
    if (::pipe2(pipeFds, O_CLOEXEC) != 0) {
      posix_spawn_file_actions_destroy(&actions);
      return -1;
    }
    posix_spawn_file_actions_adddup2(&actions, pipeFds[1], STDOUT_FILENO);
  }
  if (fd3 >= 0) {
    posix_spawn_file_actions_adddup2(&actions, fd3, 3);  // dup2 clears FD_CLOEXEC
  }
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (out != nullptr) {
    ::close(pipeFds[1]);
    *out = pipeFds[0];
  }
  return rc == 0 ? pid : -1;
}

// The number of fds process `pid` has open.
inline std::size_t fdCount(pid_t pid) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

}  // namespace zbuf::testing_support
