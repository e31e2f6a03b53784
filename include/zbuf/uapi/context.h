// Context: one emulated kernel as its applications see it: a table of open files (FileTable),
// a device namespace (the paths open() resolves: /dev/dma_heap/<name>, /dev/udmabuf,
// /sys/kernel/debug/sync/sw_sync (each open a timeline of user-space fences), and what
// the board's drivers register: /dev/iio:deviceN, /sys/bus/iio/devices/..., a FunctionFS mount)
// and one fd-level call per system call, the same for every zbuf file:
//
//   auto& k = zbuf::uapi::Context::current();
//   UniqueFd heap = k.open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC).value();
//   dma_heap_allocation_data data{.len = 1 << 20, .fd_flags = O_RDWR | O_CLOEXEC};
//   k.ioctl(heap.get(), DMA_HEAP_IOCTL_ALLOC, &data);
//   k.poll(pollfds, -1);  k.close(data.fd);
//
// (the free functions in calls.h do the same on Context::current()). An fd the context does not
// own (a pipe, an eventfd, a real kernel dma-buf or sync_file) goes to the real system call, so
// an application never picks a dispatcher; that fall-through is where a real-kernel backend
// plugs in.
//
// Several contexts can live in one process (tests use that), each with its own files and
// devices. An fd belongs to the context that made it: another context sees it as a foreign fd
// (the real system call). The process has one default context, embedded(), with the heaps,
// udmabuf and sw_sync; drivers add their device nodes to a context with addNode() (the board does
// that, devices/board.h).
//
// Errors: each call returns what the kernel's call returns for the same file; EBADF for an fd
// that is not open; for foreign fds, the real call's errno. A path no node has is ENOENT.
//
// Thread-safety: thread-safe. The node mutex guards the namespace; the table has its own.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/base/sys.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/fence.h"
#include "zbuf/uapi/fd_calls.h"
#include "zbuf/uapi/file.h"
#include "zbuf/uapi/file_table.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

// debugfs's listing of the buffers (the kernel's /sys/kernel/debug/dma_buf/bufinfo), in every
// context: read-only, the kernel's text (core/bufinfo.h).
inline constexpr const char* kBufInfoPath = "/sys/kernel/debug/dma_buf/bufinfo";

// A device node's open(): makes the file for one open(path, flags) (the driver's ->open).
using NodeOpen = std::function<Result<UniqueFd>(Context& context, int flags)>;

class Context : public FdCalls, public std::enable_shared_from_this<Context> {
 public:
  // A context with the heaps ("system", "hugepage"), /dev/udmabuf and sw_sync.
  [[nodiscard]] static std::shared_ptr<Context> create();
  // The process's default context (created on first use, never destroyed).
  [[nodiscard]] static Context& embedded();
  // The calling thread's context: the innermost Scope's, else embedded().
  [[nodiscard]] static Context& current();

  // The name of the task the calling thread's calls are made for, as the kernel's
  // current->comm (at most 15 characters; sw_sync names its timelines so): the thread's own
  // name (PR_GET_NAME) unless setCallerName() gave another.
  [[nodiscard]] static std::string callerName();
  // Names the task this thread's calls are made for (zbufd: its client process's comm); empty
  // restores the thread's own name. Cut to 15 characters.
  static void setCallerName(std::string_view name);
  // The user the calling thread's calls are made for (the kernel's current_euid()): the
  // process's effective uid unless setCallerUid() gave another (zbufd: its client's, from
  // SO_PEERCRED). Drivers' access policies read it (the virtio host's, virtio_host.h).
  [[nodiscard]] static uid_t callerUid();
  // Names the user this thread's calls are made for; nullopt restores the process's own.
  static void setCallerUid(std::optional<uid_t> uid);

  // Makes `context` the calling thread's current() while it lives.
  class Scope {
   public:
    explicit Scope(Context& context) noexcept;
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    Scope(Scope&&) = delete;
    Scope& operator=(Scope&&) = delete;

   private:
    Context* previous_;
  };

  ~Context() override;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  Context(Context&&) = delete;
  Context& operator=(Context&&) = delete;

  // --- the device namespace ---------------------------------------------------------------------
  // Adds a node at `path` (EEXIST if taken, EINVAL if not absolute).
  [[nodiscard]] Result<void> addNode(std::string path, NodeOpen open);
  // Removes the node (files already open stay); false if there was none.
  bool removeNode(std::string_view path);
  // Every node path, sorted.
  [[nodiscard]] std::vector<std::string> nodes() const;

  // --- the fd-level calls ----------------------------------------------------------------------
  // open(2): a node's file, or, for a path no node has, ENOENT (zbuf paths) — real files are
  // opened with open(2) itself. O_CLOEXEC is always set; O_NONBLOCK and the access mode are the
  // description's flags.
  [[nodiscard]] Result<UniqueFd> open(std::string_view path, int flags) override;
  // ioctl(2). `request` is cut to 32 bits as the kernel's unsigned int cmd.
  [[nodiscard]] Result<long> ioctl(int fd, unsigned long request, void* arg) override;
  [[nodiscard]] Result<std::size_t> read(int fd, std::span<std::byte> out) override;
  [[nodiscard]] Result<std::size_t> write(int fd, std::span<const std::byte> in) override;
  // poll(2) over a mix of zbuf and other fds; returns the number of entries with revents != 0
  // (0 on timeout). timeoutMs < 0 waits forever.
  [[nodiscard]] Result<int> poll(std::span<struct pollfd> fds, int timeoutMs) override;
  [[nodiscard]] Result<sys::Mapping> mmap(int fd, std::size_t length, int prot, int flags,
                                          std::uint64_t offset = 0) override;
  [[nodiscard]] Result<std::int64_t> lseek(int fd, std::int64_t offset, int whence) override;
  [[nodiscard]] Result<FileStat> fstat(int fd) override;
  // What /proc/self/fdinfo/<fd> shows ("pos:\t0\nflags:\t02000002\n" then the kind's lines).
  [[nodiscard]] Result<std::string> fdinfo(int fd) override;
  // What readlink(/proc/self/fd/<fd>) shows: "/dmabuf:<name>" for a buffer,
  // "anon_inode:sync_file", "/dev/iio:device0", ...
  [[nodiscard]] Result<std::string> fdPath(int fd) override;
  // close(2). The file is released when its last description closes, here or anywhere.
  Result<void> close(int fd) override;
  using FdCalls::close;  // close(UniqueFd)

  // --- for drivers: making files ---------------------------------------------------------------
  // anon_inode_getfd: a new file of kind `ops` with private data `data`, backed by a new memfd
  // named `name`; `flags`: O_ACCMODE, O_NONBLOCK, O_CLOEXEC (always added).
  [[nodiscard]] Result<UniqueFd> installFile(const FileOperations& ops, std::shared_ptr<void> data,
                                             const char* name, int flags);
  // dma_buf_fd: an fd for `buffer` (flags: O_ACCMODE | O_CLOEXEC, else EINVAL). A buffer has
  // one File per context (its backing fd is the buffer's own memfd); each call opens a new
  // description of it with the access mode asked for.
  [[nodiscard]] Result<UniqueFd> installBuffer(BufferPtr buffer, int flags = O_RDWR | O_CLOEXEC);
  // sync_file_create + fd_install: a new sync file for `fence` (EINVAL if null). `name` as
  // SyncFile::create.
  [[nodiscard]] Result<UniqueFd> installSyncFile(FencePtr fence, std::string_view name = {});

  // dma_buf_get: the buffer behind `fd`. EBADF if `fd` is not open, EINVAL if it is not a buffer.
  // A real kernel dma-buf (an fd the context does not own) is wrapped (kernel_objects.h): one
  // Buffer per real file while it lives, so emulated devices attach buffers the kernel made.
  [[nodiscard]] Result<BufferPtr> bufferFromFd(int fd);
  // sync_file_get_fence: EINVAL if `fd` is not a sync file (EBADF included, as the kernel). A
  // real kernel sync file is wrapped as a Fence that signals with the kernel's status.
  [[nodiscard]] Result<FencePtr> syncFileFence(int fd);
  // The file behind `fd`: EBADF if not open; nullptr if it is not one of this context's.
  [[nodiscard]] Result<FilePtr> lookup(int fd);

  [[nodiscard]] FileTable& files() noexcept { return files_; }

  struct Private;
  explicit Context(Private key);

 private:
  [[nodiscard]] Result<OpenFile> openFile(int fd);
  // The real kernel's dma-buf / sync file behind a foreign fd, wrapped once per live object.
  [[nodiscard]] Result<BufferPtr> kernelBuffer(int fd);
  [[nodiscard]] Result<FencePtr> kernelFence(int fd);
  // The live wrapped Buffer of the real dma-buf behind `fd`, or nullptr (never wraps).
  [[nodiscard]] BufferPtr wrappedKernelBuffer(int fd);

  FileTable files_;
  // The real kernel's dma-bufs and sync files wrapped so far, by (st_dev, st_ino).
  Mutex kernelMutex_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::weak_ptr<Buffer>> kernelBuffers_
      ZBUF_GUARDED_BY(kernelMutex_);
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::weak_ptr<Fence>> kernelFences_
      ZBUF_GUARDED_BY(kernelMutex_);
  mutable Mutex nodeMutex_;
  std::map<std::string, NodeOpen> nodes_ ZBUF_GUARDED_BY(nodeMutex_);  // path -> open
};

using ContextPtr = std::shared_ptr<Context>;

// The file kinds the uapi layer defines (for drivers that check an fd's kind).
[[nodiscard]] const FileOperations& dmaBufFileOperations() noexcept;
[[nodiscard]] const FileOperations& syncFileOperations() noexcept;

}  // namespace zbuf::uapi
#pragma GCC visibility pop
