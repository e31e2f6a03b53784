// Context: the fd-level calls (one per system call, for every file), the device namespace, and
// the calls drivers use to make files. The file kinds live in their own files (dma_buf_file.cpp,
// sync_file_file.cpp, heap_file.cpp); this file only routes.
#include "zbuf/uapi/context.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "file_kinds.h"
#include "zbuf/base/log.h"
#include "zbuf/core/bufinfo.h"
#include "zbuf/core/sync_file.h"
#include "zbuf/uapi/kernel_calls.h"
#include "zbuf/uapi/kernel_objects.h"
#include "zbuf/uapi/sysfs_attr.h"

namespace zbuf::uapi {

struct Context::Private {};

namespace {

thread_local Context* tCurrent = nullptr;
thread_local std::string tCallerName;          // empty: the thread's own name
thread_local std::optional<uid_t> tCallerUid;  // none: the process's effective uid

Error notOpen(const char* op, int fd) {
  return Error(EBADF, op, fmt::format("fd {} is not open", fd));
}

// The requests do_vfs_ioctl answers for every file before the file's own ioctl. The backing
// descriptions are real files, so the real ioctl does exactly that.
bool isGenericIoctl(unsigned cmd) {
  return cmd == FIONBIO || cmd == FIOASYNC || cmd == FIOCLEX || cmd == FIONCLEX;
}

}  // namespace

Context::Context(Private /*key*/) {}

Context::~Context() = default;

std::shared_ptr<Context> Context::create() {
  auto ctx = std::make_shared<Context>(Private{});
  detail::addHeapNodes(*ctx);
  // debugfs's bufinfo (dma_buf_debug_show): the process's buffers, as `zbuf info` lists them;
  // through zbufd, the daemon's.
  (void)addSysfsAttr(*ctx, kBufInfoPath,
                     {[]() -> Result<std::string> { return bufInfoText(); }, {}});
  detail::addSwSyncNode(*ctx);
  return ctx;
}

Context& Context::embedded() {
  // Never destroyed: files may be used during static destruction.
  static auto* ctx = new std::shared_ptr<Context>(create());
  return **ctx;
}

Context& Context::current() {
  return tCurrent != nullptr ? *tCurrent : embedded();
}

Context::Scope::Scope(Context& context) noexcept : previous_(tCurrent) {
  tCurrent = &context;
}

Context::Scope::~Scope() {
  tCurrent = previous_;
}

std::string Context::callerName() {
  if (!tCallerName.empty()) {
    return tCallerName;
  }
  std::array<char, 17> comm{};  // TASK_COMM_LEN and a NUL
  if (::prctl(PR_GET_NAME, comm.data()) != 0) {
    return {};
  }
  return comm.data();
}

void Context::setCallerName(std::string_view name) {
  tCallerName.assign(name.substr(0, 15));  // TASK_COMM_LEN - 1
}

uid_t Context::callerUid() {
  return tCallerUid.value_or(::geteuid());
}

void Context::setCallerUid(std::optional<uid_t> uid) {
  tCallerUid = uid;
}

// --- namespace -------------------------------------------------------------------------------

Result<void> Context::addNode(std::string path, NodeOpen open) {
  if (path.empty() || path.front() != '/') {
    return Error(EINVAL, "Context::addNode", fmt::format("path '{}' is not absolute", path));
  }
  const MutexLocker lock(nodeMutex_);
  if (nodes_.contains(path)) {
    return Error(EEXIST, "Context::addNode", fmt::format("{} exists", path));
  }
  nodes_.emplace(std::move(path), std::move(open));
  return {};
}

bool Context::removeNode(std::string_view path) {
  const MutexLocker lock(nodeMutex_);
  auto it = nodes_.find(std::string(path));
  if (it == nodes_.end()) {
    return false;
  }
  nodes_.erase(it);
  return true;
}

std::vector<std::string> Context::nodes() const {
  const MutexLocker lock(nodeMutex_);
  std::vector<std::string> out;
  out.reserve(nodes_.size());
  for (const auto& [path, open] : nodes_) {
    out.push_back(path);
  }
  return out;
}

// --- fd-level calls -----------------------------------------------------------------------------

Result<FilePtr> Context::lookup(int fd) {
  return files_.find(fd);
}

Result<OpenFile> Context::openFile(int fd) {
  ZBUF_ASSIGN_OR_RETURN(auto file, files_.find(fd));
  return OpenFile(*this, std::move(file), fd);
}

Result<UniqueFd> Context::open(std::string_view path, int flags) {
  NodeOpen open;
  {
    const MutexLocker lock(nodeMutex_);
    auto it = nodes_.find(std::string(path));
    if (it == nodes_.end()) {
      return Error(ENOENT, "open", fmt::format("{}: no such file or directory", path));
    }
    open = it->second;
  }
  return open(*this, flags);
}

Result<long> Context::ioctl(int fd, unsigned long request, void* arg) {
  const auto cmd = static_cast<unsigned>(request);  // the kernel's unsigned int cmd
  auto of = openFile(fd);
  if (!of.ok()) {
    return notOpen("ioctl", fd);
  }
  if (!of->filePtr() || isGenericIoctl(cmd)) {
    return sys::ioctl(fd, cmd, arg);
  }
  return of->file().ops().ioctl(*of, cmd, arg);
}

Result<std::size_t> Context::read(int fd, std::span<std::byte> out) {
  auto of = openFile(fd);
  if (!of.ok()) {
    return notOpen("read", fd);
  }
  if (!of->filePtr()) {
    return sys::read(fd, out);
  }
  if (of->accessMode() == O_WRONLY) {
    return Error(EBADF, "read", fmt::format("fd {} is not open for reading", fd));
  }
  std::int64_t pos = of->file().position().load();
  auto n = of->file().ops().read(*of, out, pos);
  of->file().position().store(pos);
  return n;
}

Result<std::size_t> Context::write(int fd, std::span<const std::byte> in) {
  auto of = openFile(fd);
  if (!of.ok()) {
    return notOpen("write", fd);
  }
  if (!of->filePtr()) {
    return sys::write(fd, in);
  }
  if (of->accessMode() == O_RDONLY) {
    return Error(EBADF, "write", fmt::format("fd {} is not open for writing", fd));
  }
  std::int64_t pos = of->file().position().load();
  auto n = of->file().ops().write(*of, in, pos);
  of->file().position().store(pos);
  return n;
}

Result<int> Context::poll(std::span<struct pollfd> fds, int timeoutMs) {
  // Resolve every entry once: a zbuf file, or an fd for poll(2) (foreign, or not open: poll(2)
  // itself reports POLLNVAL for those).
  // Up to kInline entries without allocating (the common case: a few fds per call).
  constexpr std::size_t kInline = 8;
  std::array<std::optional<OpenFile>, kInline> inlineFiles;
  std::vector<std::optional<OpenFile>> manyFiles;
  if (fds.size() > kInline) {
    manyFiles.resize(fds.size());
  }
  const std::span<std::optional<OpenFile>> files =
      fds.size() > kInline ? std::span(manyFiles) : std::span(inlineFiles).first(fds.size());
  // A real kernel dma-buf the context wrapped (an emulated device holds it) polls as a dma-buf of
  // this context: its reservation has zbuf's fences and the kernel's (kernel_objects.h).
  std::vector<BufferPtr> wrapped;
  for (std::size_t i = 0; i < fds.size(); ++i) {
    fds[i].revents = 0;
    if (fds[i].fd < 0) {
      continue;
    }
    auto of = openFile(fds[i].fd);
    if (of.ok() && of->filePtr()) {
      files[i].emplace(std::move(*of));
    } else if (of.ok()) {
      if (BufferPtr b = wrappedKernelBuffer(fds[i].fd)) {
        wrapped.resize(fds.size());
        wrapped[i] = std::move(b);
      }
    }
  }
  const auto isWrapped = [&](std::size_t i) { return !wrapped.empty() && wrapped[i]; };
  const bool forever = timeoutMs < 0;
  const std::uint64_t deadline =
      forever ? 0 : sys::monotonicNs() + static_cast<std::uint64_t>(timeoutMs) * 1'000'000ULL;
  PollTable table;
  std::vector<struct pollfd> ordinary;
  std::vector<std::size_t> ordinaryIndex;
  for (std::size_t i = 0; i < fds.size(); ++i) {
    if (!files[i] && !isWrapped(i)) {
      ordinary.push_back(fds[i]);
      ordinaryIndex.push_back(i);
    }
  }
  for (;;) {
    const std::uint64_t now = sys::monotonicNs();
    const bool mayWait = forever || now < deadline;
    int ready = 0;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (files[i]) {
        // POLLERR and POLLHUP are always reported, as poll(2) does.
        const short mask =
            files[i]->file().ops().poll(*files[i], fds[i].events, mayWait ? &table : nullptr);
        fds[i].revents = static_cast<short>(mask & (fds[i].events | POLLERR | POLLHUP | POLLNVAL));
        ready += fds[i].revents != 0 ? 1 : 0;
      } else if (isWrapped(i)) {
        // What the kernel has pending that zbuf's view lacks comes in first, so the table
        // sleeps on it too (a wrapped sync file, signalled by the watcher).
        const auto real = sys::pollOne(fds[i].fd, fds[i].events, std::chrono::milliseconds(0));
        if (!real.ok() || (*real & fds[i].events) != (fds[i].events & (POLLIN | POLLOUT))) {
          (void)importKernelFences(*wrapped[i]);
        }
        const short mask =
            detail::dmaBufPollMask(*wrapped[i], fds[i].events, mayWait ? &table : nullptr);
        fds[i].revents = static_cast<short>(mask & fds[i].events);
        ready += fds[i].revents != 0 ? 1 : 0;
      }
    }
    int wait = 0;
    if (ready == 0 && mayWait) {
      wait = forever ? -1 : static_cast<int>((deadline - now + 999'999) / 1'000'000);
    }
    if (wait == 0 && ordinary.empty()) {
      return ready;
    }
    ZBUF_ASSIGN_OR_RETURN(auto n, table.sleep(ordinary, wait));
    for (std::size_t j = 0; j < ordinary.size(); ++j) {
      fds[ordinaryIndex[j]].revents = ordinary[j].revents;
    }
    ready += n;
    if (ready > 0 || wait == 0 || (!forever && sys::monotonicNs() >= deadline)) {
      return ready;
    }
    table.reset();  // a registered source fired: ask the files again
  }
}

Result<sys::Mapping> Context::mmap(int fd, std::size_t length, int prot, int flags,
                                   std::uint64_t offset) {
  constexpr const char* kOp = "mmap";
  auto of = openFile(fd);
  if (!of.ok()) {
    return notOpen(kOp, fd);
  }
  if (!of->filePtr()) {
    return sys::mmap(length, prot, flags, fd, static_cast<off_t>(offset));
  }
  // What mmap(2) checks before the file's mmap: length, alignment, map type, file mode.
  if (length == 0) {
    return Error(EINVAL, kOp, "length 0");
  }
  if (offset % sys::pageSize() != 0) {
    return Error(EINVAL, kOp, fmt::format("offset {} is not page aligned", offset));
  }
  const int type = flags & MAP_TYPE;
  if (type != MAP_SHARED && type != MAP_SHARED_VALIDATE && type != MAP_PRIVATE) {
    return Error(EINVAL, kOp, fmt::format("map flags {:#x} are neither shared nor private", flags));
  }
  const int mode = of->accessMode();
  if (mode == O_WRONLY) {
    return Error(EACCES, kOp, fmt::format("fd {} is write-only", fd));
  }
  if (type != MAP_PRIVATE && (prot & PROT_WRITE) != 0 && mode == O_RDONLY) {
    return Error(EACCES, kOp, fmt::format("writable shared mapping of read-only fd {}", fd));
  }
  return of->file().ops().mmap(*of, length, prot, flags, offset);
}

Result<std::int64_t> Context::lseek(int fd, std::int64_t offset, int whence) {
  auto of = openFile(fd);
  if (!of.ok()) {
    return notOpen("lseek", fd);
  }
  if (!of->filePtr()) {
    return KernelCalls().lseek(fd, offset, whence);
  }
  std::int64_t pos = of->file().position().load();
  auto r = of->file().ops().llseek(*of, offset, whence, pos);
  of->file().position().store(pos);
  return r;
}

Result<FileStat> Context::fstat(int fd) {
  auto of = openFile(fd);
  if (!of.ok()) {
    return notOpen("fstat", fd);
  }
  ZBUF_ASSIGN_OR_RETURN(auto st, sys::fstat(fd));
  FileStat out{st.mode, st.size, st.inode, st.device, st.blockSize};
  if (of->filePtr()) {
    out.mode = S_IRUSR | S_IWUSR;  // an anonymous inode's mode, unless the kind says otherwise
    out.size = 0;
    of->file().ops().stat(of->file(), out);
  }
  return out;
}

Result<std::string> Context::fdinfo(int fd) {
  auto of = openFile(fd);
  if (!of.ok()) {
    return notOpen("fdinfo", fd);
  }
  if (!of->filePtr()) {
    // Not one of this context's files: the kernel's own text (a real dma-buf's size and
    // exp_name, a pipe's, ...), as for every other call on a foreign fd.
    return KernelCalls().fdinfo(fd);
  }
  auto fdFlags = sys::getFdFlags(fd);
  // A zbuf file shows the flags its kernel file has: not the O_LARGEFILE its backing reopen got.
  const int kept = of->filePtr() ? (O_ACCMODE | O_NONBLOCK | O_APPEND | O_ASYNC) : ~0;
  const int flags =
      (of->flags() & kept) | (fdFlags.ok() && (*fdFlags & FD_CLOEXEC) != 0 ? O_CLOEXEC : 0);
  auto st = sys::fstat(fd);
  std::string out =
      fmt::format("pos:\t{}\nflags:\t0{:o}\nino:\t{}\n",
                  of->filePtr() ? of->file().position().load() : 0, flags, st.ok() ? st->inode : 0);
  if (of->filePtr()) {
    of->file().ops().showFdinfo(of->file(), out);
  }
  return out;
}

Result<std::string> Context::fdPath(int fd) {
  auto of = openFile(fd);
  if (!of.ok()) {
    return notOpen("readlink", fd);
  }
  if (!of->filePtr()) {
    return KernelCalls().fdPath(fd);
  }
  return of->file().ops().linkName(of->file());
}

Result<void> Context::close(int fd) {
  if (::close(fd) != 0) {
    return Error(errno == EBADF ? EBADF : errno, "close", fmt::format("fd {}", fd));
  }
  files_.reap();  // a last close is noticed at once
  return {};
}

// --- making files -------------------------------------------------------------------------------

Result<UniqueFd> Context::installFile(const FileOperations& ops, std::shared_ptr<void> data,
                                      const char* name, int flags) {
  ZBUF_ASSIGN_OR_RETURN(auto memfd, sys::memfdCreate(name, MFD_CLOEXEC));
  ZBUF_ASSIGN_OR_RETURN(auto file, files_.insert(ops, std::move(data), std::move(memfd)));
  return files_.openDescription(*file, flags);
}

// The buffer is taken by value, as ownership passes to the file table; a retry after EEXIST
// needs it again, so it is copied into the table rather than moved.
// NOLINTNEXTLINE(performance-unnecessary-value-param): see above
Result<UniqueFd> Context::installBuffer(BufferPtr buffer, int flags) {
  constexpr const char* kOp = "dma_buf_fd";
  if (!buffer) {
    return Error(EINVAL, kOp, "no buffer");
  }
  if ((flags & ~(O_ACCMODE | O_CLOEXEC)) != 0) {
    return Error(EINVAL, kOp, fmt::format("fd flags {:#o} beyond O_ACCMODE | O_CLOEXEC", flags));
  }
  ZBUF_ASSIGN_OR_RETURN(auto st, sys::fstat(buffer->fd().get()));
  for (int attempt = 0; attempt < 2; ++attempt) {
    FilePtr file = files_.findByIdentity(st.device, st.inode);
    if (file && (!file->is(detail::dmaBufOps()) || file->dataPtr<Buffer>() != buffer)) {
      // A file is found by its inode: one memfd cannot stand for two buffers.
      return Error(
          EBUSY, kOp,
          fmt::format("the buffer's fd already backs another {} file", file->ops().name()));
    }
    if (!file) {
      ZBUF_ASSIGN_OR_RETURN(auto backing, sys::dup(buffer->fd().get()));
      auto inserted = files_.insert(detail::dmaBufOps(), buffer, std::move(backing));
      if (!inserted.ok()) {
        if (inserted.code() == EEXIST) {
          continue;  // another thread installed it first
        }
        return std::move(inserted).error();
      }
      file = std::move(*inserted);
    }
    auto fd = files_.openDescription(*file, flags & O_ACCMODE);
    if (!fd.ok() && fd.code() == EBADF) {
      continue;  // released meanwhile: install anew
    }
    if (fd.ok() && (flags & O_CLOEXEC) == 0) {
      ZBUF_TRY(sys::setFdFlags(fd->get(), 0));
    }
    return fd;
  }
  return Error(EAGAIN, kOp, "the buffer's file was released and installed concurrently");
}

Result<UniqueFd> Context::installSyncFile(FencePtr fence, std::string_view name) {
  ZBUF_ASSIGN_OR_RETURN(auto created, SyncFile::create(std::move(fence), name));
  ZBUF_ASSIGN_OR_RETURN(auto file, files_.insert(detail::syncFileOps(), std::move(created.file),
                                                 std::move(created.readEnd)));
  return files_.openDescription(*file, O_RDONLY);
}

Result<BufferPtr> Context::bufferFromFd(int fd) {
  auto file = files_.find(fd);
  if (!file.ok()) {
    return Error(EBADF, "dma_buf_get", fmt::format("fd {} is not an open file", fd));
  }
  if (!*file) {
    return kernelBuffer(fd);
  }
  if (!(*file)->is(detail::dmaBufOps())) {
    return Error(EINVAL, "dma_buf_get", fmt::format("fd {} is not a dma-buf", fd));
  }
  return (*file)->dataPtr<Buffer>();
}

namespace {

// The live object wrapping the real file behind `fd` in `cache` (keyed by the file's identity),
// or a new one from `wrap`; expired entries are dropped as it goes. The caller holds the lock.
template <typename T, typename Wrap>
Result<std::shared_ptr<T>> cachedWrap(
    std::map<std::pair<std::uint64_t, std::uint64_t>, std::weak_ptr<T>>& cache, int fd, Wrap wrap) {
  ZBUF_ASSIGN_OR_RETURN(auto st, sys::fstat(fd));
  const auto key = std::pair(st.device, st.inode);
  if (auto it = cache.find(key); it != cache.end()) {
    if (auto live = it->second.lock()) {
      return live;
    }
  }
  std::erase_if(cache, [](const auto& kv) { return kv.second.expired(); });
  ZBUF_ASSIGN_OR_RETURN(auto made, wrap(fd));
  cache[key] = made;
  return std::shared_ptr<T>(std::move(made));
}

}  // namespace

Result<BufferPtr> Context::kernelBuffer(int fd) {
  const MutexLocker lock(kernelMutex_);
  ZBUF_ASSIGN_OR_RETURN(auto buffer, cachedWrap(kernelBuffers_, fd, wrapKernelDmaBuf));
  // Every dma_buf_get brings in what the kernel has pending on the buffer now.
  ZBUF_TRY(importKernelFences(*buffer));
  return buffer;
}

BufferPtr Context::wrappedKernelBuffer(int fd) {
  const MutexLocker lock(kernelMutex_);
  std::erase_if(kernelBuffers_, [](const auto& kv) { return kv.second.expired(); });
  if (kernelBuffers_.empty()) {
    return nullptr;  // the common case: no fstat
  }
  auto st = sys::fstat(fd);
  if (!st.ok()) {
    return nullptr;
  }
  auto it = kernelBuffers_.find(std::pair(st->device, st->inode));
  return it == kernelBuffers_.end() ? nullptr : it->second.lock();
}

Result<FencePtr> Context::kernelFence(int fd) {
  const MutexLocker lock(kernelMutex_);
  return cachedWrap(kernelFences_, fd, wrapKernelSyncFile);
}

Result<FencePtr> Context::syncFileFence(int fd) {
  auto file = files_.find(fd);
  if (file.ok() && !*file) {
    auto fence = kernelFence(fd);
    if (fence.ok() || fence.code() != EINVAL) {
      return fence;
    }
    return Error(EINVAL, "sync_file_get_fence", fence.error().describe());
  }
  if (!file.ok() || !(*file)->is(detail::syncFileOps())) {
    return Error(EINVAL, "sync_file_get_fence", fmt::format("fd {} is not a sync file", fd));
  }
  return (*file)->data<SyncFile>().fence();
}

const FileOperations& dmaBufFileOperations() noexcept {
  return detail::dmaBufOps();
}

const FileOperations& syncFileOperations() noexcept {
  return detail::syncFileOps();
}

}  // namespace zbuf::uapi
