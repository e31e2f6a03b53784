#include "zbuf/base/sys.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>  // NOLINT(modernize-deprecated-headers): POSIX sigpending/sigset_t
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace zbuf::sys {
namespace {

// Runs `call` until it does not fail with EINTR.
template <typename F>
auto retryEintr(F call) {
  for (;;) {
    auto r = call();
    if (r != -1 || errno != EINTR) {
      return r;
    }
  }
}

Error lastError(const char* op) {
  return Error(errno, op);
}

}  // namespace

Result<UniqueFd> dup(int fd) {
  const int r = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (r < 0) {
    return lastError("dup");
  }
  return UniqueFd::adopt(r);
}

Result<UniqueFd> memfdCreate(const char* name, unsigned flags) {
  const int r = ::memfd_create(name, flags);
  if (r < 0) {
    return lastError("memfd_create");
  }
  return UniqueFd::adopt(r);
}

Result<void> ftruncate(int fd, off_t size) {
  if (retryEintr([&] { return ::ftruncate(fd, size); }) < 0) {
    return lastError("ftruncate");
  }
  return {};
}

Result<void> addSeals(int fd, int seals) {
  if (::fcntl(fd, F_ADD_SEALS, seals) < 0) {
    return lastError("fcntl(F_ADD_SEALS)");
  }
  return {};
}

Result<int> getSeals(int fd) {
  const int r = ::fcntl(fd, F_GET_SEALS);
  if (r < 0) {
    return lastError("fcntl(F_GET_SEALS)");
  }
  return r;
}

Result<int> getFdFlags(int fd) {
  const int r = ::fcntl(fd, F_GETFD);
  if (r < 0) {
    return lastError("fcntl(F_GETFD)");
  }
  return r;
}

Result<int> getFileFlags(int fd) {
  const int r = ::fcntl(fd, F_GETFL);
  if (r < 0) {
    return lastError("fcntl(F_GETFL)");
  }
  return r;
}

Result<void> setFileFlags(int fd, int flags) {
  if (::fcntl(fd, F_SETFL, flags) < 0) {
    return lastError("fcntl(F_SETFL)");
  }
  return {};
}

Result<FileStat> fstat(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) < 0) {
    return lastError("fstat");
  }
  return FileStat{static_cast<std::uint64_t>(st.st_size), st.st_ino, st.st_dev, st.st_mode,
                  static_cast<std::uint64_t>(st.st_blksize)};
}

Result<UniqueFd> reopen(int fd, int flags) {
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  const int r = retryEintr([&] { return ::open(path.c_str(), flags); });
  if (r < 0) {
    return lastError("open(/proc/self/fd)");
  }
  return UniqueFd::adopt(r);
}

Result<void> setFdFlags(int fd, int flags) {
  if (::fcntl(fd, F_SETFD, flags) < 0) {
    return lastError("fcntl(F_SETFD)");
  }
  return {};
}

Result<std::vector<int>> openFds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    return lastError("opendir(/proc/self/fd)");
  }
  const int own = ::dirfd(dir);
  std::vector<int> fds;
  while (const struct dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    const long n = std::strtol(entry->d_name, &end, 10);
    if (end != entry->d_name && *end == '\0' && n != own) {
      fds.push_back(static_cast<int>(n));
    }
  }
  ::closedir(dir);
  return fds;
}

Result<std::size_t> read(int fd, std::span<std::byte> out) {
  const ssize_t r = retryEintr([&] { return ::read(fd, out.data(), out.size()); });
  if (r < 0) {
    return lastError("read");
  }
  return static_cast<std::size_t>(r);
}

Result<std::size_t> write(int fd, std::span<const std::byte> in) {
  const ssize_t r = retryEintr([&] { return ::write(fd, in.data(), in.size()); });
  if (r < 0) {
    return lastError("write");
  }
  return static_cast<std::size_t>(r);
}

Result<std::size_t> writeNoSigpipe(int fd, std::span<const std::byte> in) noexcept {
  sigset_t pipeSet;
  sigemptyset(&pipeSet);
  sigaddset(&pipeSet, SIGPIPE);
  sigset_t old;
  ::pthread_sigmask(SIG_BLOCK, &pipeSet, &old);
  sigset_t pending;
  sigemptyset(&pending);
  ::sigpending(&pending);
  const bool wasPending = sigismember(&pending, SIGPIPE) == 1;
  const ssize_t r = retryEintr([&] { return ::write(fd, in.data(), in.size()); });
  const int savedErrno = errno;
  // The kernel raises SIGPIPE also when a write that already moved some bytes finds the
  // reader gone (pipe_write returns the short count then): consume what this write raised.
  sigemptyset(&pending);
  ::sigpending(&pending);
  if (!wasPending && sigismember(&pending, SIGPIPE) == 1) {
    const struct timespec zero {};
    (void)retryEintr([&] { return ::sigtimedwait(&pipeSet, nullptr, &zero); });
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (r < 0) {
    return Error(savedErrno, "write");
  }
  return static_cast<std::size_t>(r);
}

Result<void> fallocate(int fd, int mode, off_t offset, off_t length) {
  if (retryEintr([&] { return ::fallocate(fd, mode, offset, length); }) < 0) {
    return lastError("fallocate");
  }
  return {};
}

Result<long> ioctl(int fd, unsigned long request, void* arg) {
  const int r = ::ioctl(fd, request, arg);
  if (r < 0) {
    return lastError("ioctl");
  }
  return static_cast<long>(r);
}

Result<UniqueFd> open(const char* path, int flags, unsigned mode) {
  const int r = retryEintr([&] { return ::open(path, flags | O_CLOEXEC, mode); });
  if (r < 0) {
    return lastError("open");
  }
  return UniqueFd::adopt(r);
}

Result<void> flock(int fd, int operation) {
  if (retryEintr([&] { return ::flock(fd, operation); }) < 0) {
    return lastError("flock");
  }
  return {};
}

Result<std::pair<UniqueFd, UniqueFd>> pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) {
    return lastError("pipe2");
  }
  return std::pair{UniqueFd::adopt(fds[0]), UniqueFd::adopt(fds[1])};
}

Result<std::pair<UniqueFd, UniqueFd>> socketpair(int type) {
  int fds[2];
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) < 0) {
    return lastError("socketpair");
  }
  return std::pair{UniqueFd::adopt(fds[0]), UniqueFd::adopt(fds[1])};
}

// --- mappings --------------------------------------------------------------------------------

void Mapping::unmap() noexcept {
  if (addr_ != nullptr) {
    if (hook_) {
      hook_->beforeUnmap(static_cast<std::byte*>(addr_), size_);
      hook_.reset();
    }
    ::munmap(addr_, size_);
    addr_ = nullptr;
    size_ = 0;
  }
  owner_.reset();  // after the munmap
}

Mapping::~Mapping() {
  unmap();
}

Mapping::Mapping(Mapping&& other) noexcept
    : addr_(std::exchange(other.addr_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      owner_(std::move(other.owner_)),
      hook_(std::move(other.hook_)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    unmap();
    addr_ = std::exchange(other.addr_, nullptr);
    size_ = std::exchange(other.size_, 0);
    owner_ = std::move(other.owner_);
    hook_ = std::move(other.hook_);
  }
  return *this;
}

Result<Mapping> mmap(std::size_t length, int prot, int flags, int fd, off_t offset) {
  void* addr = ::mmap(nullptr, length, prot, flags, fd, offset);
  if (addr == MAP_FAILED) {
    return lastError("mmap");
  }
  return Mapping(addr, length);
}

Result<void> mmapFixed(std::byte* addr, std::size_t length, int prot, int flags, int fd,
                       off_t offset) {
  void* r = ::mmap(addr, length, prot, flags | MAP_FIXED, fd, offset);
  if (r == MAP_FAILED) {
    return lastError("mmap");
  }
  return {};
}

Result<void> madvise(void* addr, std::size_t length, int advice) {
  if (::madvise(addr, length, advice) < 0) {
    return lastError("madvise");
  }
  return {};
}

std::size_t pageSize() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

// --- waiting ---------------------------------------------------------------------------------

Result<UniqueFd> eventfd(unsigned initval, int flags) {
  const int r = ::eventfd(initval, flags | EFD_CLOEXEC);
  if (r < 0) {
    return lastError("eventfd");
  }
  return UniqueFd::adopt(r);
}

Result<void> eventfdWrite(int fd, std::uint64_t value) {
  if (retryEintr([&] { return ::write(fd, &value, sizeof value); }) < 0) {
    return lastError("eventfd write");
  }
  return {};
}

Result<std::uint64_t> eventfdRead(int fd) {
  std::uint64_t value = 0;
  if (retryEintr([&] { return ::read(fd, &value, sizeof value); }) < 0) {
    return lastError("eventfd read");
  }
  return value;
}

Result<short> pollOne(int fd, short events, std::chrono::milliseconds timeout) {
  struct pollfd p {};
  p.fd = fd;
  p.events = events;
  const int r = ::poll(&p, 1, static_cast<int>(timeout.count() < 0 ? -1 : timeout.count()));
  if (r < 0) {
    return lastError("poll");
  }
  return r == 0 ? static_cast<short>(0) : p.revents;
}

Result<void> futexWait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       std::optional<std::chrono::nanoseconds> timeout) {
  struct timespec ts {};
  struct timespec* tsp = nullptr;
  if (timeout) {
    const auto ns = timeout->count() < 0 ? 0 : timeout->count();
    ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    tsp = &ts;
  }
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  const long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE,
                           expected, tsp, nullptr, 0);
  if (r < 0) {
    return lastError("futex(FUTEX_WAIT)");
  }
  return {};
}

int futexWake(std::atomic<std::uint32_t>& word, int count) noexcept {
  const long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE,
                           count, nullptr, nullptr, 0);
  return r < 0 ? 0 : static_cast<int>(r);
}

// --- fd passing ------------------------------------------------------------------------------

Result<std::size_t> sendWithFds(int socket, std::span<const std::byte> data,
                                std::span<const int> fds) {
  constexpr std::size_t kMaxFds = 253;
  if (fds.size() > kMaxFds) {
    return Error(EINVAL, "sendmsg", "more than 253 fds in one message");
  }
  struct iovec iov {};
  iov.iov_base = const_cast<std::byte*>(data.data());  // NOLINT: sendmsg does not write
  iov.iov_len = data.size();
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(fds.size() * sizeof(int)));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), fds.data(), fds.size() * sizeof(int));
  }
  const ssize_t r = retryEintr([&] { return ::sendmsg(socket, &msg, MSG_NOSIGNAL); });
  if (r < 0) {
    return lastError("sendmsg");
  }
  return static_cast<std::size_t>(r);
}

Result<Received> recvWithFds(int socket, std::span<std::byte> data, std::size_t maxFds) {
  struct iovec iov {};
  iov.iov_base = data.data();
  iov.iov_len = data.size();
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(std::max<std::size_t>(maxFds, 1) * sizeof(int)));
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  const ssize_t r = retryEintr([&] { return ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC); });
  if (r < 0) {
    return lastError("recvmsg");
  }
  Received received;
  received.bytes = static_cast<std::size_t>(r);
  for (struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr;
       cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
      continue;
    }
    const std::size_t n = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < n; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof fd);
      received.fds.push_back(UniqueFd::adopt(fd));
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0) {
    return Error(EMSGSIZE, "recvmsg", "more fds arrived than the caller accepts");
  }
  return received;
}

// --- time and threads ------------------------------------------------------------------------

namespace {
std::uint64_t clockNs(clockid_t clock) noexcept {
  struct timespec ts {};
  ::clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}
}  // namespace

std::uint64_t monotonicNs() noexcept {
  return clockNs(CLOCK_MONOTONIC);
}

std::chrono::nanoseconds threadCpuTime() noexcept {
  return std::chrono::nanoseconds(clockNs(CLOCK_THREAD_CPUTIME_ID));
}

std::chrono::nanoseconds processCpuTime() noexcept {
  return std::chrono::nanoseconds(clockNs(CLOCK_PROCESS_CPUTIME_ID));
}

void setThreadName(std::string_view name) noexcept {
  char buf[16] = {};
  std::memcpy(buf, name.data(), std::min<std::size_t>(name.size(), sizeof buf - 1));
  ::pthread_setname_np(::pthread_self(), buf);
}

Result<std::vector<unsigned>> threadAffinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) {
    return lastError("sched_getaffinity");
  }
  std::vector<unsigned> cpus;
  for (unsigned cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) {
      cpus.push_back(cpu);
    }
  }
  return cpus;
}

Result<void> setThreadAffinity(std::span<const unsigned> cpus) {
  if (cpus.empty()) {
    return Error(EINVAL, "sched_setaffinity", "an empty CPU set");
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  for (unsigned cpu : cpus) {
    if (cpu >= CPU_SETSIZE) {
      return Error(EINVAL, "sched_setaffinity", "a CPU past CPU_SETSIZE");
    }
    CPU_SET(cpu, &set);
  }
  if (::sched_setaffinity(0, sizeof set, &set) != 0) {
    return lastError("sched_setaffinity");
  }
  return {};
}

}  // namespace zbuf::sys
