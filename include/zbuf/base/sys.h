// One wrapper per syscall zbuf makes. Each returns a Result carrying the errno and the name of
// the syscall; callers never read errno. EINTR is retried where the call is restartable and
// the caller cannot observe the difference (close is never retried, per Linux semantics).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::sys {

// --- files -----------------------------------------------------------------------------------
[[nodiscard]] Result<UniqueFd> dup(int fd);
[[nodiscard]] Result<UniqueFd> memfdCreate(const char* name, unsigned flags);
[[nodiscard]] Result<void> ftruncate(int fd, off_t size);
[[nodiscard]] Result<void> addSeals(int fd, int seals);
[[nodiscard]] Result<int> getSeals(int fd);
[[nodiscard]] Result<int> getFdFlags(int fd);                // F_GETFD
[[nodiscard]] Result<int> getFileFlags(int fd);              // F_GETFL
[[nodiscard]] Result<void> setFileFlags(int fd, int flags);  // F_SETFL
struct FileStat {
  std::uint64_t size;
  std::uint64_t inode;
  std::uint64_t device;
  unsigned mode;
  std::uint64_t blockSize;
};
[[nodiscard]] Result<FileStat> fstat(int fd);
// A new open file description of the file `fd` refers to, opened through /proc/self/fd with
// `flags` (e.g. O_RDONLY | O_CLOEXEC for a read-only fd of a memfd).
[[nodiscard]] Result<UniqueFd> reopen(int fd, int flags);
// Sets the fd flags (F_SETFD: FD_CLOEXEC).
[[nodiscard]] Result<void> setFdFlags(int fd, int flags);
// The fd numbers open in this process (a listing of /proc/self/fd, without the one it uses).
[[nodiscard]] Result<std::vector<int>> openFds();
[[nodiscard]] Result<std::size_t> read(int fd, std::span<std::byte> out);
[[nodiscard]] Result<std::size_t> write(int fd, std::span<const std::byte> in);
// write() that reports EPIPE without raising SIGPIPE (for pipes whose reader may be gone):
// SIGPIPE is blocked in the calling thread around the write and a SIGPIPE it raised is
// consumed. No allocation; safe in fence callbacks.
[[nodiscard]] Result<std::size_t> writeNoSigpipe(int fd, std::span<const std::byte> in) noexcept;
[[nodiscard]] Result<void> fallocate(int fd, int mode, off_t offset, off_t length);
[[nodiscard]] Result<long> ioctl(int fd, unsigned long request, void* arg);
// open(2), close-on-exec always added.
[[nodiscard]] Result<UniqueFd> open(const char* path, int flags, unsigned mode = 0);
// flock(2) (LOCK_EX, LOCK_SH, LOCK_UN, optionally | LOCK_NB); EINTR is retried.
[[nodiscard]] Result<void> flock(int fd, int operation);
[[nodiscard]] Result<std::pair<UniqueFd, UniqueFd>> pipe();
[[nodiscard]] Result<std::pair<UniqueFd, UniqueFd>> socketpair(int type);

// --- memory mappings ---------------------------------------------------------------------------
// Told before a Mapping's memory is unmapped (core's checked CPU access forgets the range).
class MappingHook {
 public:
  MappingHook() = default;
  MappingHook(const MappingHook&) = delete;
  MappingHook& operator=(const MappingHook&) = delete;
  virtual ~MappingHook() = default;
  virtual void beforeUnmap(std::byte* addr, std::size_t size) noexcept = 0;
};

// A mapping that is unmapped on destruction. Move-only. An optional hook moves with it and is
// told just before the unmap.
class Mapping {
 public:
  Mapping() noexcept = default;
  ~Mapping();
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  [[nodiscard]] std::byte* data() const noexcept { return static_cast<std::byte*>(addr_); }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::span<std::byte> bytes() const noexcept { return {data(), size_}; }
  [[nodiscard]] bool isValid() const noexcept { return addr_ != nullptr; }
  // Keeps `owner` alive until the mapping is unmapped (as a kernel mapping holds its file).
  void keepAlive(std::shared_ptr<const void> owner) noexcept { owner_ = std::move(owner); }
  void setHook(std::shared_ptr<MappingHook> hook) noexcept { hook_ = std::move(hook); }

 private:
  friend Result<Mapping> mmap(std::size_t, int, int, int, off_t);
  Mapping(void* addr, std::size_t size) noexcept : addr_(addr), size_(size) {}
  void unmap() noexcept;
  void* addr_ = nullptr;
  std::size_t size_ = 0;
  std::shared_ptr<const void> owner_;  // released after the munmap
  std::shared_ptr<MappingHook> hook_;
};
[[nodiscard]] Result<Mapping> mmap(std::size_t length, int prot, int flags, int fd, off_t offset);
[[nodiscard]] Result<void> madvise(void* addr, std::size_t length, int advice);
[[nodiscard]] std::size_t pageSize() noexcept;
// mmap with MAP_FIXED over part of an existing mapping the caller owns (a reservation made
// with mmap(PROT_NONE)): the new pages belong to that mapping and go with its munmap.
[[nodiscard]] Result<void> mmapFixed(std::byte* addr, std::size_t length, int prot, int flags,
                                     int fd, off_t offset);

// --- waiting -------------------------------------------------------------------------------
[[nodiscard]] Result<UniqueFd> eventfd(unsigned initval, int flags);
[[nodiscard]] Result<void> eventfdWrite(int fd, std::uint64_t value);
[[nodiscard]] Result<std::uint64_t> eventfdRead(int fd);
// poll() on one fd: returns revents (0 on timeout). timeout < 0 waits forever.
[[nodiscard]] Result<short> pollOne(int fd, short events, std::chrono::milliseconds timeout);
// Waits while *word == expected, up to `timeout` (nullopt: forever). Spurious wake-ups are
// possible; the caller re-checks its condition. ETIMEDOUT on timeout, EAGAIN if the word
// already differed, EINTR on a signal.
[[nodiscard]] Result<void> futexWait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                                     std::optional<std::chrono::nanoseconds> timeout);
// Wakes up to `count` waiters; returns how many were woken.
int futexWake(std::atomic<std::uint32_t>& word, int count) noexcept;

// --- fd passing --------------------------------------------------------------------------
// Sends `data` and the fds in one message (SCM_RIGHTS). At most 253 fds.
[[nodiscard]] Result<std::size_t> sendWithFds(int socket, std::span<const std::byte> data,
                                              std::span<const int> fds);
struct Received {
  std::size_t bytes = 0;
  std::vector<UniqueFd> fds;
};
// Receives one message; fds beyond `maxFds` are closed by the kernel (MSG_CTRUNC -> EMSGSIZE).
[[nodiscard]] Result<Received> recvWithFds(int socket, std::span<std::byte> data,
                                           std::size_t maxFds);

// --- time and threads ------------------------------------------------------------------------
[[nodiscard]] std::uint64_t monotonicNs() noexcept;
// CPU time consumed by the calling thread.
[[nodiscard]] std::chrono::nanoseconds threadCpuTime() noexcept;
// CPU time consumed by the whole process.
[[nodiscard]] std::chrono::nanoseconds processCpuTime() noexcept;
// Names the calling thread (at most 15 characters are kept, as the kernel does).
void setThreadName(std::string_view name) noexcept;
// The CPUs the calling thread may run on (sched_getaffinity), in increasing order.
[[nodiscard]] Result<std::vector<unsigned>> threadAffinity();
// Pins the calling thread to `cpus` (sched_setaffinity). EINVAL for an empty set, a CPU past
// CPU_SETSIZE, or a set with no CPU the process may use (the kernel's answer).
[[nodiscard]] Result<void> setThreadAffinity(std::span<const unsigned> cpus);

}  // namespace zbuf::sys
#pragma GCC visibility pop
