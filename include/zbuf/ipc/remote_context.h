// RemoteContext: the fd-level calls (uapi/fd_calls.h) of a client process, made by zbufd.
//
//   auto k = zbuf::ipc::RemoteContext::connect().value();   // ipc::defaultSocketPath()
//   UniqueFd heap = k->open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC).value();
//   k->ioctl(heap.get(), DMA_HEAP_IOCTL_ALLOC, &data);      // data.fd: a dma-buf fd here
//
// The fds a client holds are real fds of its own, each one the daemon's open file description
// passed by SCM_RIGHTS: mmap(2), poll(2) on a sync file, dup(2), fork(2) and passing them on
// work as for any fd. Each call sends the fd it is made on (and any fd in its argument) to the
// daemon, which makes the call on the same description; fds the call makes come back the same
// way. close() closes the client's fd and has the daemon read the close at once. FIONBIO,
// FIOASYNC, FIOCLEX and FIONCLEX are made here (FD_CLOEXEC belongs to the fd, not to the
// description). read and write move at most 60 KiB a call (a short count, as read(2) may
// return). What differs from the embedded context is in docs/daemon.md.
//
// Calls from several threads run concurrently: each takes a connection of its own from a pool
// (a blocking poll or read does not hold up other threads' calls).
//
// Errors: the daemon's errno for the call; ECONNREFUSED / ENOENT at connect when no daemon
// listens; EPIPE or ECONNRESET when the daemon has gone.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "zbuf/base/mutex.h"
#include "zbuf/ipc/message.h"
#include "zbuf/uapi/fd_calls.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::ipc {

class RemoteContext final : public uapi::FdCalls {
 public:
  // Connects (one connection now, more on demand) and checks the daemon's protocol version
  // (EPROTO if it differs). An empty path: defaultSocketPath().
  [[nodiscard]] static Result<std::shared_ptr<RemoteContext>> connect(std::string path = {});

  [[nodiscard]] Result<UniqueFd> open(std::string_view path, int flags) override;
  [[nodiscard]] Result<long> ioctl(int fd, unsigned long request, void* arg) override;
  [[nodiscard]] Result<std::size_t> read(int fd, std::span<std::byte> out) override;
  [[nodiscard]] Result<std::size_t> write(int fd, std::span<const std::byte> in) override;
  [[nodiscard]] Result<int> poll(std::span<struct pollfd> fds, int timeoutMs) override;
  [[nodiscard]] Result<sys::Mapping> mmap(int fd, std::size_t length, int prot, int flags,
                                          std::uint64_t offset) override;
  [[nodiscard]] Result<std::int64_t> lseek(int fd, std::int64_t offset, int whence) override;
  [[nodiscard]] Result<uapi::FileStat> fstat(int fd) override;
  [[nodiscard]] Result<std::string> fdinfo(int fd) override;
  [[nodiscard]] Result<std::string> fdPath(int fd) override;
  Result<void> close(int fd) override;
  using FdCalls::close;

  [[nodiscard]] const std::string& socketPath() const noexcept { return path_; }

  struct Private;
  RemoteContext(Private key, std::string path);

 private:
  struct Answer {
    ReplyBody body;
    std::vector<std::byte> payload;
    std::vector<UniqueFd> fds;
  };
  // One round trip on a pooled connection. The Result's error is a transport failure; the
  // call's own errno is in Answer::body.error.
  [[nodiscard]] Result<Answer> call(Opcode opcode, std::span<const std::byte> body,
                                    std::span<const int> fds);
  // A call made on `fd` alone: EBADF here if it is not open, the daemon's errno (with its
  // description) as the Result's error, except the foreign-fd answer, returned as is.
  [[nodiscard]] Result<Answer> callOn(const char* op, int fd, Opcode opcode,
                                      std::span<const std::byte> body);
  [[nodiscard]] Result<UniqueFd> connectOne() const;
  // The daemon's answer that the fd is not a zbuf file (protocol.h, kReplyForeignFd): the
  // caller makes the real call on its own fd.
  [[nodiscard]] static bool foreign(const Answer& a) noexcept;

  std::string path_;
  Mutex mutex_;
  std::vector<UniqueFd> idle_ ZBUF_GUARDED_BY(mutex_);
  std::uint64_t sequence_ ZBUF_GUARDED_BY(mutex_) = 0;
};

}  // namespace zbuf::ipc
#pragma GCC visibility pop
