#include "zbuf/ipc/socket_path.h"

#include <gtest/gtest.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <optional>
#include <string>

namespace zbuf::ipc {
namespace {

constexpr const char* kSystemPath = "/run/zbuf/zbufd.sock";

// Sets an environment variable (or unsets it, for nullptr) while alive, and restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    // NOLINTBEGIN(concurrency-mt-unsafe): the test runs on one thread
    if (const char* old = std::getenv(name)) {
      old_ = old;
    }
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
    // NOLINTEND(concurrency-mt-unsafe)
  }
  ~ScopedEnv() {
    // NOLINTBEGIN(concurrency-mt-unsafe): the test runs on one thread
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
    // NOLINTEND(concurrency-mt-unsafe)
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(SocketPath, ZbufSocketOverridesEverything) {
  const ScopedEnv socket("ZBUF_SOCKET", "/tmp/elsewhere/my.sock");
  const ScopedEnv runtime("XDG_RUNTIME_DIR", "/run/user/4242");
  EXPECT_EQ(defaultSocketPath(), "/tmp/elsewhere/my.sock");
  const ScopedEnv noRuntime("XDG_RUNTIME_DIR", nullptr);
  EXPECT_EQ(defaultSocketPath(), "/tmp/elsewhere/my.sock");
}

TEST(SocketPath, AnEmptyZbufSocketIsNoOverride) {
  const ScopedEnv socket("ZBUF_SOCKET", "");
  const ScopedEnv runtime("XDG_RUNTIME_DIR", nullptr);
  EXPECT_EQ(defaultSocketPath(), kSystemPath);
}

TEST(SocketPath, WithoutXdgRuntimeDirItIsTheSystemPath) {
  const ScopedEnv socket("ZBUF_SOCKET", nullptr);
  const ScopedEnv runtime("XDG_RUNTIME_DIR", nullptr);
  EXPECT_EQ(defaultSocketPath(), kSystemPath);
  const ScopedEnv empty("XDG_RUNTIME_DIR", "");
  EXPECT_EQ(defaultSocketPath(), kSystemPath);
}

// The default path as a process with effective uid `euid` finds it (this one, or a child that
// takes that uid); nullopt if a child cannot take it.
std::optional<std::string> pathAs(uid_t euid) {
  if (::geteuid() == euid) {
    return defaultSocketPath();
  }
  int p[2];
  if (::pipe(p) != 0) {
    return std::nullopt;
  }
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(p[0]);
    if (::seteuid(euid) != 0) {
      ::_exit(2);
    }
    const std::string path = defaultSocketPath();
    const bool wrote = ::write(p[1], path.data(), path.size()) == static_cast<ssize_t>(path.size());
    ::_exit(wrote ? 0 : 3);
  }
  ::close(p[1]);
  std::string path;
  char buf[256];
  ssize_t n = 0;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) {
    path.append(buf, static_cast<std::size_t>(n));
  }
  ::close(p[0]);
  int status = 0;
  if (child < 0 || ::waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    return std::nullopt;
  }
  return path;
}

constexpr uid_t kNobody = 65534;

TEST(SocketPath, AUserGetsTheRuntimeDir) {
  const ScopedEnv socket("ZBUF_SOCKET", nullptr);
  const ScopedEnv runtime("XDG_RUNTIME_DIR", "/run/user/4242");
  const uid_t user = ::geteuid() == 0 ? kNobody : ::geteuid();
  const auto path = pathAs(user);
  ASSERT_TRUE(path.has_value()) << "no process with euid " << user;
  EXPECT_EQ(*path, "/run/user/4242/zbuf/zbufd.sock");
}

TEST(SocketPath, RootGetsTheSystemPathEvenWithARuntimeDir) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root";
  }
  const ScopedEnv socket("ZBUF_SOCKET", nullptr);
  const ScopedEnv runtime("XDG_RUNTIME_DIR", "/run/user/4242");
  EXPECT_EQ(defaultSocketPath(), kSystemPath);
}

TEST(SocketPath, ZbufSocketOverridesRootsPathToo) {
  const ScopedEnv socket("ZBUF_SOCKET", "/tmp/root.sock");
  const auto path = pathAs(0);
  if (!path) {
    GTEST_SKIP() << "needs root";
  }
  EXPECT_EQ(*path, "/tmp/root.sock");
}

}  // namespace
}  // namespace zbuf::ipc
