// /init of the kernel lane's initramfs (scripts/qemu-lane.sh): mounts what the tests read
// (proc, sysfs, devtmpfs, debugfs, tmpfs on /tmp), loads the modules listed in /lane/modules
// (one path per line, compressed .ko.xz files: the kernel decompresses them), mounts configfs
// (a module), runs /lane/run with the arguments in /lane/args (one per line) and the environment in
// /lane/env (NAME=value lines), prints "ZBUF-LANE-EXIT <status>" and powers the machine off.
// Statically linked: the initramfs has no C library of its own for it.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

constexpr unsigned kModuleInitCompressedFile = 4;  // MODULE_INIT_COMPRESSED_FILE

void mountOrSay(const char* source, const char* target, const char* type) {
  ::mkdir(target, 0755);
  if (::mount(source, target, type, 0, nullptr) != 0 && errno != EBUSY) {
    std::printf("lane init: mount %s on %s: %s\n", type, target, std::strerror(errno));
  }
}

std::vector<std::string> lines(const char* path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) {
      out.push_back(line);
    }
  }
  return out;
}

void loadModules() {
  for (const auto& path : lines("/lane/modules")) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::printf("lane init: %s: %s\n", path.c_str(), std::strerror(errno));
      continue;
    }
    if (::syscall(SYS_finit_module, fd, "", kModuleInitCompressedFile) != 0 && errno != EEXIST) {
      std::printf("lane init: finit_module %s: %s\n", path.c_str(), std::strerror(errno));
    }
    ::close(fd);
  }
}

int runTests() {
  std::vector<std::string> args = lines("/lane/args");
  args.insert(args.begin(), "/lane/run");
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  for (const auto& e : lines("/lane/env")) {
    ::putenv(::strdup(e.c_str()));
  }
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::chdir("/tmp");
    ::execv(argv[0], argv.data());
    std::printf("lane init: exec /lane/run: %s\n", std::strerror(errno));
    std::_Exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace

int main() {
  mountOrSay("proc", "/proc", "proc");
  mountOrSay("sysfs", "/sys", "sysfs");
  mountOrSay("devtmpfs", "/dev", "devtmpfs");
  mountOrSay("debugfs", "/sys/kernel/debug", "debugfs");
  mountOrSay("tmpfs", "/tmp", "tmpfs");
  mountOrSay("tmpfs", "/dev/shm", "tmpfs");
  loadModules();
  mountOrSay("configfs", "/sys/kernel/config", "configfs");  // a module in Debian's kernel
  const int code = runTests();
  std::printf("ZBUF-LANE-EXIT %d\n", code);
  std::fflush(stdout);
  ::sync();
  ::reboot(RB_POWER_OFF);
  return 0;
}
