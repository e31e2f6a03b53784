// The dma-buf uAPI: argument checks in the kernel's order (dma-buf.c), then the core Buffer,
// Resv and SyncFile do the work.
#include "zbuf/uapi/dma_buf.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "dma_buf_calls.h"
#include "zbuf/core/fence_unwrap.h"
#include "zbuf/core/sync_file.h"

namespace zbuf::uapi {
namespace {

// The buffer behind `fd`: EBADF if `fd` is not open, else `notBuffer` if it is no zbuf buffer.
Result<BufferPtr> bufferFor(int fd, const char* op, int notBuffer) {
  auto buffer = Buffer::fromFd(fd);
  if (buffer.ok()) {
    return buffer;
  }
  if (buffer.code() == EBADF) {
    return Error(EBADF, op, fmt::format("fd {} is not open", fd));
  }
  return Error(notBuffer, op, fmt::format("fd {} is not a zbuf buffer", fd));
}

// Looks `fd` up (EBADF, or ENOTTY for another file) and runs an ioctl on its buffer.
template <typename Arg>
Result<void> onBuffer(int fd, const char* op, Result<void> (*call)(Buffer&, Arg), Arg arg) {
  auto buffer = bufferFor(fd, op, ENOTTY);
  if (!buffer.ok()) {
    return std::move(buffer).error();
  }
  return call(**buffer, arg);
}

Error nullArgument(const char* op) {
  return Error(EFAULT, op, "argument pointer is null");
}

// The READ/WRITE part of SYNC's flags as a direction; EINVAL for anything else.
Result<DmaDirection> syncDirection(std::uint64_t flags, const char* op) {
  if ((flags & ~kDmaBufSyncValidFlagsMask) != 0) {
    return Error(EINVAL, op,
                 fmt::format("flags {:#x} outside {:#x}", flags, kDmaBufSyncValidFlagsMask));
  }
  switch (flags & kDmaBufSyncRw) {
    case kDmaBufSyncRead:
      return DmaDirection::FromDevice;
    case kDmaBufSyncWrite:
      return DmaDirection::ToDevice;
    case kDmaBufSyncRw:
      return DmaDirection::Bidirectional;
    default:
      return Error(EINVAL, op, fmt::format("flags {:#x} have neither READ nor WRITE", flags));
  }
}

// EXPORT/IMPORT_SYNC_FILE: a non-empty subset of READ | WRITE.
Result<void> checkSyncFileFlags(std::uint32_t flags, const char* op) {
  if ((flags & ~kDmaBufSyncRw) != 0 || (flags & kDmaBufSyncRw) == 0) {
    return Error(EINVAL, op,
                 fmt::format("flags {:#x} are not a non-empty subset of READ|WRITE", flags));
  }
  return {};
}

// The resv lock as a scope object (a plain lock without acquire context cannot fail).
class ResvLock {
 public:
  explicit ResvLock(Resv& resv) : resv_(resv) { (void)resv_.lock(); }
  ~ResvLock() { resv_.unlock(); }
  ResvLock(const ResvLock&) = delete;
  ResvLock& operator=(const ResvLock&) = delete;
  ResvLock(ResvLock&&) = delete;
  ResvLock& operator=(ResvLock&&) = delete;

 private:
  Resv& resv_;
};

}  // namespace

namespace detail {

Result<void> dmaBufSync(Buffer& buffer, const DmaBufSync* sync) {
  constexpr const char* kOp = "DMA_BUF_IOCTL_SYNC";
  if (sync == nullptr) {
    return nullArgument(kOp);
  }
  auto dir = syncDirection(sync->flags, kOp);
  if (!dir.ok()) {
    return std::move(dir).error();
  }
  if ((sync->flags & kDmaBufSyncEnd) != 0) {
    return buffer.endCpuAccess(*dir);
  }
  return buffer.beginCpuAccess(*dir);
}

Result<void> dmaBufSetName(Buffer& buffer, const char* name) {
  constexpr const char* kOp = "DMA_BUF_SET_NAME";
  if (name == nullptr) {
    return nullArgument(kOp);
  }
  // strndup_user(name, DMA_BUF_NAME_LEN): no NUL within 32 bytes is EINVAL.
  const std::size_t len = ::strnlen(name, kDmaBufNameLen);
  if (len == kDmaBufNameLen) {
    return Error(EINVAL, kOp,
                 fmt::format("buffer {}: name longer than {} characters", buffer.inode(),
                             kDmaBufNameLen - 1));
  }
  return buffer.setName(std::string_view(name, len));
}

Result<void> dmaBufExportSyncFile(Buffer& buffer, DmaBufExportSyncFile* data) {
  constexpr const char* kOp = "DMA_BUF_IOCTL_EXPORT_SYNC_FILE";
  if (data == nullptr) {
    return nullArgument(kOp);
  }
  ZBUF_TRY(checkSyncFileFlags(data->flags, kOp));
  const bool write = (data->flags & kDmaBufSyncWrite) != 0;
  auto fence = buffer.resv().getSingleton(usageRw(write));
  if (!fence.ok()) {
    return std::move(fence).error();
  }
  auto file = SyncFile::create(*fence ? std::move(*fence) : Fence::stub());
  if (!file.ok()) {
    return std::move(file).error();
  }
  data->fd = file->release();
  return {};
}

Result<void> dmaBufImportSyncFile(Buffer& buffer, const DmaBufImportSyncFile* data) {
  constexpr const char* kOp = "DMA_BUF_IOCTL_IMPORT_SYNC_FILE";
  if (data == nullptr) {
    return nullArgument(kOp);
  }
  ZBUF_TRY(checkSyncFileFlags(data->flags, kOp));
  auto fence = SyncFile::getFence(data->fd);
  if (!fence.ok()) {
    return Error(EINVAL, kOp, fmt::format("fd {} is not a sync file", data->fd));
  }
  const ResvUsage usage =
      (data->flags & kDmaBufSyncWrite) != 0 ? ResvUsage::Write : ResvUsage::Read;
  const std::vector<FencePtr> leaves = unwrapFences(*fence);
  if (leaves.empty()) {
    return {};
  }
  Resv& resv = buffer.resv();
  const ResvLock lock(resv);
  ZBUF_TRY(resv.reserveFencesLocked(static_cast<unsigned>(leaves.size())));
  for (const FencePtr& leaf : leaves) {
    resv.addFenceLocked(leaf, usage);
  }
  return {};
}

}  // namespace detail

Result<void> dmaBufSync(int fd, const DmaBufSync* sync) {
  return onBuffer(fd, "DMA_BUF_IOCTL_SYNC", &detail::dmaBufSync, sync);
}

Result<void> dmaBufSetName(int fd, const char* name) {
  return onBuffer(fd, "DMA_BUF_SET_NAME", &detail::dmaBufSetName, name);
}

Result<void> dmaBufExportSyncFile(int fd, DmaBufExportSyncFile* data) {
  return onBuffer(fd, "DMA_BUF_IOCTL_EXPORT_SYNC_FILE", &detail::dmaBufExportSyncFile, data);
}

Result<void> dmaBufImportSyncFile(int fd, const DmaBufImportSyncFile* data) {
  return onBuffer(fd, "DMA_BUF_IOCTL_IMPORT_SYNC_FILE", &detail::dmaBufImportSyncFile, data);
}

Result<void> sync(int fd, std::uint64_t flags) {
  const DmaBufSync s{flags};
  return dmaBufSync(fd, &s);
}

Result<void> setName(int fd, std::string_view name) {
  const std::string copy(name);
  return dmaBufSetName(fd, copy.c_str());
}

Result<std::string> name(int fd) {
  auto buffer = bufferFor(fd, "dma_buf name", ENOTTY);
  if (!buffer.ok()) {
    return std::move(buffer).error();
  }
  return (*buffer)->name();
}

Result<UniqueFd> exportSyncFile(int fd, std::uint32_t flags) {
  DmaBufExportSyncFile data{flags, -1};
  ZBUF_TRY(dmaBufExportSyncFile(fd, &data));
  return UniqueFd::adopt(data.fd);
}

Result<void> importSyncFile(int fd, std::uint32_t flags, int syncFileFd) {
  const DmaBufImportSyncFile data{flags, syncFileFd};
  return dmaBufImportSyncFile(fd, &data);
}

Result<CpuAccess> syncScope(int fd, std::uint64_t rwFlags) {
  constexpr const char* kOp = "DMA_BUF_IOCTL_SYNC";
  auto buffer = bufferFor(fd, kOp, ENOTTY);
  if (!buffer.ok()) {
    return std::move(buffer).error();
  }
  if ((rwFlags & kDmaBufSyncEnd) != 0) {
    return Error(EINVAL, kOp, "a scope begins with START: END is not allowed here");
  }
  auto dir = syncDirection(rwFlags, kOp);
  if (!dir.ok()) {
    return std::move(dir).error();
  }
  return CpuAccess::begin(std::move(*buffer), *dir);
}

Result<std::uint64_t> seek(int fd, std::int64_t offset, int whence) {
  constexpr const char* kOp = "dma_buf_llseek";
  auto buffer = bufferFor(fd, kOp, EINVAL);
  if (!buffer.ok()) {
    return std::move(buffer).error();
  }
  if (offset != 0) {
    return Error(EINVAL, kOp, fmt::format("offset {} is not 0", offset));
  }
  if (whence == SEEK_SET) {
    return std::uint64_t{0};
  }
  if (whence == SEEK_END) {
    return (*buffer)->size();
  }
  return Error(EINVAL, kOp, fmt::format("whence {} is neither SEEK_SET nor SEEK_END", whence));
}

Result<std::uint64_t> size(int fd) {
  return seek(fd, 0, SEEK_END);
}

Result<sys::Mapping> mmap(int fd, std::size_t length, int prot, int flags, std::uint64_t offset) {
  constexpr const char* kOp = "dma_buf_mmap";
  auto buffer = bufferFor(fd, kOp, EINVAL);
  if (!buffer.ok()) {
    return std::move(buffer).error();
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
  auto fileFlags = sys::getFileFlags(fd);
  if (!fileFlags.ok()) {
    return std::move(fileFlags).error();
  }
  const int mode = *fileFlags & O_ACCMODE;
  if (mode == O_WRONLY) {
    return Error(EACCES, kOp, fmt::format("fd {} is write-only", fd));
  }
  if (type != MAP_PRIVATE && (prot & PROT_WRITE) != 0 && mode == O_RDONLY) {
    return Error(EACCES, kOp, fmt::format("writable shared mapping of read-only fd {}", fd));
  }
  if (type == MAP_PRIVATE) {
    // Every exporter refuses private mappings (reference section 12).
    return Error(EINVAL, kOp, "MAP_PRIVATE: a dma-buf mapping must be shared");
  }
  return (*buffer)->mmap(offset / sys::pageSize(), length, prot, flags);
}

Result<short> pollBuffer(int fd, short events, std::chrono::milliseconds timeout) {
  auto buffer = bufferFor(fd, "dma_buf_poll", EINVAL);
  if (!buffer.ok()) {
    return std::move(buffer).error();
  }
  const bool wantIn = (events & POLLIN) != 0;
  const bool wantOut = (events & POLLOUT) != 0;
  if (!wantIn && !wantOut) {
    return short{0};
  }
  const Resv& resv = (*buffer)->resv();
  const auto ready = [&]() -> short {
    short revents = 0;
    if (wantIn && resv.testSignaled(ResvUsage::Write)) {
      revents |= POLLIN;
    }
    if (wantOut && resv.testSignaled(ResvUsage::Read)) {
      revents |= POLLOUT;
    }
    return revents;
  };
  const bool forever = timeout.count() < 0;
  const std::uint64_t deadline =
      forever ? 0
              : sys::monotonicNs() +
                    static_cast<std::uint64_t>(std::chrono::nanoseconds(timeout).count());
  // POLLIN (writers done) is always ready no later than POLLOUT (everyone done).
  const ResvUsage waitFor = wantIn ? ResvUsage::Write : ResvUsage::Read;
  for (;;) {
    if (const short revents = ready(); revents != 0) {
      return revents;
    }
    Resv::Duration left = Fence::kWaitForever;
    if (!forever) {
      const std::uint64_t now = sys::monotonicNs();
      if (now >= deadline) {
        return short{0};
      }
      left = std::chrono::nanoseconds(deadline - now);
    }
    // Fences added meanwhile are picked up by the next round of checks.
    (void)resv.waitTimeout(waitFor, left);
  }
}

}  // namespace zbuf::uapi
