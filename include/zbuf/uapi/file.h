// File and FileOperations: the kernel's struct file and struct file_operations, for every zbuf
// file (dma-buf, sync file, heap and udmabuf devices, IIO device and buffer files, FunctionFS
// ep0 and endpoints, sysfs-style attributes).
//
// A File is one open file: what an fd refers to, shared by dup(2), fork(2) and SCM_RIGHTS
// copies of it. Its behaviour comes from its operations (one static FileOperations object per
// kind, like a driver's `static const struct file_operations`), and a file is recognised by the
// identity of its operations, as the kernel's is_dma_buf_file() compares f_op:
//
//   if (file->is(dmaBufFileOperations())) { auto& buffer = file->data<Buffer>(); ... }
//
// Each File is backed by a real kernel fd that zbuf created for it (a memfd, or the read end of
// a pipe for a sync file): that fd gives the file its identity (st_dev, st_ino), its open file
// flags (O_NONBLOCK, the access mode, read live with F_GETFL as the kernel reads f_flags) and
// its lifetime (the FileTable notices when the last description of it is closed anywhere,
// file_table.h). The private data is the object the file stands for (a Buffer, a SyncFile, an
// IIO buffer, an endpoint), shared between files that stand for the same object.
//
// The default operations are the VFS's answers for a file_operations that leaves the slot
// empty: ioctl ENOTTY, read/write EINVAL, poll "always ready" (DEFAULT_POLLMASK), mmap ENODEV,
// llseek ESPIPE (no_llseek). The fd-level calls (context.h) handle the requests every file has
// (FIONBIO, FIOCLEX, FIONCLEX, FIOASYNC) before a file's ioctl sees them, as do_vfs_ioctl does.
//
// Thread-safety: File is immutable after construction apart from the position (an atomic) and
// what its private data guards itself; operations may be called from any thread concurrently,
// as the kernel calls file_operations.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "zbuf/base/result.h"
#include "zbuf/base/sys.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/core/fence.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

class Context;
class File;
class PollTable;
class WaitQueue;

// What fstat(2) shows for a zbuf file (the fields zbuf's files define).
struct FileStat {
  unsigned mode = 0;         // S_IF* type and permission bits
  std::uint64_t size = 0;    // st_size (a dma-buf's size, 4096 for a sysfs attribute, else 0)
  std::uint64_t inode = 0;   // the backing file's inode
  std::uint64_t device = 0;  // the backing file's device
  std::uint64_t blockSize = 4096;
};

// One call on a file through one of its fds: the file, the fd the caller used (its open file
// description carries the flags) and the context the call came through.
class OpenFile {
 public:
  OpenFile(Context& context, std::shared_ptr<File> file, int fd) noexcept
      : context_(&context), file_(std::move(file)), fd_(fd) {}

  [[nodiscard]] Context& context() const noexcept { return *context_; }
  [[nodiscard]] File& file() const noexcept { return *file_; }
  [[nodiscard]] const std::shared_ptr<File>& filePtr() const noexcept { return file_; }
  [[nodiscard]] int fd() const noexcept { return fd_; }
  // f_flags of the caller's open file description (F_GETFL): O_NONBLOCK, O_ACCMODE, ... Read
  // once per call, on first use.
  [[nodiscard]] int flags() const;
  [[nodiscard]] bool nonBlocking() const;
  // The access mode: O_RDONLY, O_WRONLY or O_RDWR.
  [[nodiscard]] int accessMode() const { return flags() & 03; }

 private:
  Context* context_;
  std::shared_ptr<File> file_;
  int fd_;
  mutable int flags_ = -1;  // -1: not read yet
};

// struct file_operations. One static instance per kind of file, never destroyed: the destructor
// is trivial (protected and not virtual, as nothing deletes an instance through this base), so a
// static instance outlives static destruction, when the embedded context's reaper thread may
// still release files through it. Each kind static_asserts IsFileOperations<T>.
class FileOperations {
 public:
  constexpr FileOperations() = default;
  FileOperations(const FileOperations&) = delete;
  FileOperations& operator=(const FileOperations&) = delete;
  FileOperations(FileOperations&&) = delete;
  FileOperations& operator=(FileOperations&&) = delete;

  // The kind's name, as fdinfo and messages show it ("dmabuf", "sync_file", "iio:buffer", ...).
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;

  // unlocked_ioctl: `cmd` is the 32-bit request the kernel sees; `arg` the caller's pointer
  // (read it with copyFromUser, user_copy.h). Returns what ioctl(2) returns on success.
  [[nodiscard]] virtual Result<long> ioctl(const OpenFile& f, unsigned cmd, void* arg) const;
  // read/write at *pos (the file position, which the operation advances if it uses it).
  [[nodiscard]] virtual Result<std::size_t> read(const OpenFile& f, std::span<std::byte> out,
                                                 std::int64_t& pos) const;
  [[nodiscard]] virtual Result<std::size_t> write(const OpenFile& f, std::span<const std::byte> in,
                                                  std::int64_t& pos) const;
  // poll: the ready subset of POLLIN | POLLOUT | POLLPRI | POLLERR | POLLHUP (and their
  // RDNORM/WRNORM forms). When `table` is non-null and the file is not ready for `events`, it
  // registers in `table` what will change that (poll_wait), and the caller sleeps on it.
  // Register before testing the state (as the kernel calls poll_wait first), so a change in
  // between is not missed.
  [[nodiscard]] virtual short poll(const OpenFile& f, short events, PollTable* table) const;
  // mmap: `offset` in bytes (page aligned; the fd-level call checks what mmap(2) checks).
  [[nodiscard]] virtual Result<sys::Mapping> mmap(const OpenFile& f, std::size_t length, int prot,
                                                  int flags, std::uint64_t offset) const;
  // llseek: the new position.
  [[nodiscard]] virtual Result<std::int64_t> llseek(const OpenFile& f, std::int64_t offset,
                                                    int whence, std::int64_t& pos) const;
  // fstat: the defaults (mode, inode, device of the backing fd) are filled in by the caller.
  virtual void stat(const File& file, FileStat& st) const;
  // The lines this kind adds to /proc/<pid>/fdinfo/<fd> after pos and flags (each ending in
  // '\n'), e.g. "size:\t4096\ncount:\t1\nexp_name:\tsystem\nname:\t\n" for a dma-buf.
  virtual void showFdinfo(const File& file, std::string& out) const;
  // What readlink(/proc/<pid>/fd/<fd>) shows (d_dname): "anon_inode:<name>" by default,
  // "/dmabuf:<buffer name>" for a dma-buf, the node's path for a device file.
  [[nodiscard]] virtual std::string linkName(const File& file) const;
  // release: the last description of the file was closed (everywhere). Runs once, on the thread
  // that noticed it (a close through the context, or the table's reaper), after the file left
  // the table; the private data is dropped right after.
  virtual void release(File& file) const;

 protected:
  ~FileOperations() = default;
};

// A kind of file's operations: derived from FileOperations and safe as a static that is never
// destroyed.
template <class T>
concept IsFileOperations =
    std::derived_from<T, FileOperations> && std::is_trivially_destructible_v<T>;

// struct file.
class File : public std::enable_shared_from_this<File> {
 public:
  // `backing` is the kernel fd zbuf made for this file (its identity); `data` the private data.
  File(const FileOperations& ops, std::shared_ptr<void> data, UniqueFd backing,
       std::uint64_t device, std::uint64_t inode) noexcept
      : ops_(&ops),
        data_(std::move(data)),
        backing_(std::move(backing)),
        device_(device),
        inode_(inode) {}
  ~File() = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  File(File&&) = delete;
  File& operator=(File&&) = delete;

  [[nodiscard]] const FileOperations& ops() const noexcept { return *ops_; }
  // Whether this file is of the kind `ops` (is_dma_buf_file: file->f_op == &dma_buf_fops).
  [[nodiscard]] bool is(const FileOperations& ops) const noexcept { return ops_ == &ops; }
  // The private data as the kind's type. Only valid after is() said it is that kind.
  template <typename T>
  [[nodiscard]] T& data() const noexcept {
    return *static_cast<T*>(data_.get());
  }
  template <typename T>
  [[nodiscard]] std::shared_ptr<T> dataPtr() const noexcept {
    return std::static_pointer_cast<T>(data_);
  }
  // The fd zbuf holds for this file (not the application's; -1 once released).
  [[nodiscard]] int backingFd() const noexcept { return backing_.get(); }
  [[nodiscard]] std::uint64_t device() const noexcept { return device_; }
  [[nodiscard]] std::uint64_t inode() const noexcept { return inode_; }
  // The file position (f_pos), for files whose read/write/llseek use it.
  [[nodiscard]] std::atomic<std::int64_t>& position() noexcept { return pos_; }
  // Open descriptions of the file the table has counted (fdinfo's count).
  [[nodiscard]] long descriptions() const noexcept { return descriptions_.load(); }

 private:
  friend class FileTable;
  const FileOperations* ops_;
  std::shared_ptr<void> data_;
  UniqueFd backing_;
  std::uint64_t device_;
  std::uint64_t inode_;
  std::atomic<std::int64_t> pos_{0};
  std::atomic<long> descriptions_{0};  // written by the FileTable under its mutex
};

using FilePtr = std::shared_ptr<File>;

// poll_table: what a poll() call sleeps on. Files register the sources that will change their
// readiness; zbuf's poll() then sleeps on all of them and on the ordinary fds of the call (a
// futex when there are none, else one poll(2)), and asks every file again when one fires.
// Registrations end with reset() or the table.
//
// Thread-safety: one table belongs to one poll() call (one thread); WaitQueue::wakeUp and fence
// callbacks may fire it from any thread.
class PollTable {
 public:
  PollTable();
  ~PollTable();
  PollTable(const PollTable&) = delete;
  PollTable& operator=(const PollTable&) = delete;
  PollTable(PollTable&&) = delete;
  PollTable& operator=(PollTable&&) = delete;

  // Wake when kernel fd `fd` reports one of `events`.
  void waitFd(int fd, short events);
  // Wake when `queue` is woken (the kernel's poll_wait on a wait_queue_head).
  void wait(WaitQueue& queue);
  // Wake when `fence` signals.
  void waitFence(const FencePtr& fence);

  // For the poll() implementation: sleeps until a registered source fires, one of `ordinary`
  // (fds that are not zbuf files) reports an event, or `timeoutMs` passes (< 0: forever).
  // Returns how many of `ordinary` have revents (filled in). With no ordinary fd and no
  // waitFd() registration it sleeps on a futex (no syscall on the waker's side unless it
  // sleeps); otherwise in one poll(2) that includes the thread's wake-up eventfd.
  [[nodiscard]] Result<int> sleep(std::span<struct pollfd> ordinary, int timeoutMs);
  // Ends every registration and clears the wake-up, before the next round.
  void reset();

 private:
  friend class WaitQueue;
  void unregister();
  struct Impl;
  // The calling thread's spare Impl: a poll() reuses the last one's (its eventfd and fence
  // callback nodes), so a poll allocates nothing once the thread has polled before.
  static std::unique_ptr<Impl>& spare() noexcept;
  std::unique_ptr<Impl> impl_;
};

// wait_queue_head_t for poll: a file's state changes (a block completed, an event queued) wake
// every PollTable that registered. Waking with nobody registered costs one uncontended mutex.
//
// Thread-safety: thread-safe. wakeUp() does not allocate and may be called under other locks
// (it takes only the queue's own mutex, which guards the list of registered tables).
class WaitQueue {
 public:
  WaitQueue();
  ~WaitQueue();
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;
  WaitQueue(WaitQueue&&) = delete;
  WaitQueue& operator=(WaitQueue&&) = delete;

  void wakeUp() noexcept;

 private:
  friend class PollTable;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zbuf::uapi
#pragma GCC visibility pop
