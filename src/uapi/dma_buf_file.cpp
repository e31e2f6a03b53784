// The dma-buf file (the kernel's dma_buf_fops): ioctls in dma_buf_ioctl's order and with its
// errnos, poll on the implicit fences, mmap through the exporter, the two-position llseek,
// fdinfo and the "/dmabuf:<name>" link name. The core Buffer, Resv and SyncFile do the work.
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/mman.h>

#include <cstring>
#include <vector>

#include "file_kinds.h"
#include "zbuf/core/fence_unwrap.h"
#include "zbuf/core/resv_lock.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/user_copy.h"

namespace zbuf::uapi {
namespace {

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

Result<long> sync(Buffer& buffer, const void* arg) {
  constexpr const char* kOp = "DMA_BUF_IOCTL_SYNC";
  ZBUF_ASSIGN_OR_RETURN(auto sync, copyFromUser<DmaBufSync>(arg, kOp));
  ZBUF_ASSIGN_OR_RETURN(auto dir, syncDirection(sync.flags, kOp));
  ZBUF_TRY((sync.flags & kDmaBufSyncEnd) != 0 ? buffer.endCpuAccess(dir)
                                              : buffer.beginCpuAccess(dir));
  return 0L;
}

Result<long> setName(Buffer& buffer, const void* arg) {
  constexpr const char* kOp = "DMA_BUF_SET_NAME";
  if (arg == nullptr) {
    return Error(EFAULT, kOp, "name pointer is null");
  }
  // strndup_user(name, DMA_BUF_NAME_LEN): no NUL within 32 bytes is EINVAL.
  const char* name = static_cast<const char*>(arg);
  const std::size_t len = ::strnlen(name, kDmaBufNameLen);
  if (len == kDmaBufNameLen) {
    return Error(EINVAL, kOp,
                 fmt::format("buffer {}: name longer than {} characters", buffer.inode(),
                             kDmaBufNameLen - 1));
  }
  ZBUF_TRY(buffer.setName(std::string_view(name, len)));
  return 0L;
}

Result<long> exportSyncFile(const OpenFile& f, Buffer& buffer, void* arg) {
  constexpr const char* kOp = "DMA_BUF_IOCTL_EXPORT_SYNC_FILE";
  ZBUF_ASSIGN_OR_RETURN(auto data, copyFromUser<DmaBufExportSyncFile>(arg, kOp));
  ZBUF_TRY(checkSyncFileFlags(data.flags, kOp));
  const bool write = (data.flags & kDmaBufSyncWrite) != 0;
  ZBUF_ASSIGN_OR_RETURN(auto fence, buffer.resv().getSingleton(usageRw(write)));
  ZBUF_ASSIGN_OR_RETURN(auto file,
                        f.context().installSyncFile(fence ? std::move(fence) : Fence::stub()));
  data.fd = file.get();
  ZBUF_TRY(copyToUser(arg, data, kOp));
  (void)file.release();
  return 0L;
}

Result<long> importSyncFile(const OpenFile& f, Buffer& buffer, const void* arg) {
  constexpr const char* kOp = "DMA_BUF_IOCTL_IMPORT_SYNC_FILE";
  ZBUF_ASSIGN_OR_RETURN(auto data, copyFromUser<DmaBufImportSyncFile>(arg, kOp));
  ZBUF_TRY(checkSyncFileFlags(data.flags, kOp));
  auto fence = f.context().syncFileFence(data.fd);
  if (!fence.ok()) {
    return Error(EINVAL, kOp, fmt::format("fd {} is not a sync file", data.fd));
  }
  const ResvUsage usage = (data.flags & kDmaBufSyncWrite) != 0 ? ResvUsage::Write : ResvUsage::Read;
  const std::vector<FencePtr> leaves = unwrapFences(*fence);
  if (leaves.empty()) {
    return 0L;
  }
  Resv& resv = buffer.resv();
  const ResvLock lock(resv);
  ZBUF_TRY(resv.reserveFencesLocked(static_cast<unsigned>(leaves.size())));
  for (const FencePtr& leaf : leaves) {
    resv.addFenceLocked(leaf, usage);
  }
  return 0L;
}

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class DmaBufOps final : public FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "dmabuf"; }

  Result<long> ioctl(const OpenFile& f, unsigned cmd, void* arg) const override {
    Buffer& buffer = f.file().data<Buffer>();
    switch (cmd) {
      case kDmaBufIoctlSync:
        return sync(buffer, arg);
      case kDmaBufSetNameA:
      case kDmaBufSetNameB:
        return setName(buffer, arg);  // the argument is the name pointer itself
      case kDmaBufIoctlExportSyncFile:
        return exportSyncFile(f, buffer, arg);
      case kDmaBufIoctlImportSyncFile:
        return importSyncFile(f, buffer, arg);
      default:
        return FileOperations::ioctl(f, cmd, arg);
    }
  }

  // dma_buf_poll: POLLIN unless a writer is pending, POLLOUT when nothing is.
  short poll(const OpenFile& f, short events, PollTable* table) const override {
    return detail::dmaBufPollMask(f.file().data<Buffer>(), events, table);
  }

  Result<sys::Mapping> mmap(const OpenFile& f, std::size_t length, int prot, int flags,
                            std::uint64_t offset) const override {
    // Whether a private mapping is allowed is the exporter's call, as in dma_buf_mmap_internal:
    // Debian's 6.12 system heap maps privately (copy-on-write), udmabuf refuses (the kernel
    // lane's transcript, docs/kernel-lane.md).
    auto buffer = f.file().dataPtr<Buffer>();
    auto mapping = buffer->mmap(offset / sys::pageSize(), length, prot, flags);
    if (mapping.ok()) {
      mapping->keepAlive(std::move(buffer));  // a mapping keeps the buffer, as in the kernel
    }
    return mapping;
  }

  // dma_buf_llseek: only offset 0 with SEEK_SET or SEEK_END; the position does not move.
  Result<std::int64_t> llseek(const OpenFile& f, std::int64_t offset, int whence,
                              std::int64_t& /*pos*/) const override {
    constexpr const char* kOp = "dma_buf_llseek";
    if (whence != SEEK_SET && whence != SEEK_END) {
      return Error(EINVAL, kOp, fmt::format("whence {} is neither SEEK_SET nor SEEK_END", whence));
    }
    if (offset != 0) {
      return Error(EINVAL, kOp, fmt::format("offset {} is not 0", offset));
    }
    return whence == SEEK_SET ? 0 : static_cast<std::int64_t>(f.file().data<Buffer>().size());
  }

  void stat(const File& file, FileStat& st) const override { st.size = file.data<Buffer>().size(); }

  void showFdinfo(const File& file, std::string& out) const override {
    const Buffer& buffer = file.data<Buffer>();
    out += fmt::format("size:\t{}\ncount:\t{}\nexp_name:\t{}\n", buffer.size(), file.descriptions(),
                       buffer.exporterName());
    if (buffer.hasName()) {
      out += fmt::format("name:\t{}\n", buffer.name());
    }
  }

  [[nodiscard]] std::string linkName(const File& file) const override {
    return fmt::format("/dmabuf:{}", file.data<Buffer>().name());
  }
};

}  // namespace

short detail::dmaBufPollMask(const Buffer& buffer, short events, PollTable* table) {
  const Resv& resv = buffer.resv();
  short revents = 0;
  const auto check = [&](short bit, ResvUsage usage) {
    if ((events & bit) == 0) {
      return;
    }
    // One unlocked walk (dma_buf_poll_add_cb): the bit is ready when it finds no unsignalled
    // fence; with a table, each one it finds gets a wake-up callback (one that signalled
    // meanwhile wakes the table at once). A walk that started over and then found nothing
    // means nothing is pending (callbacks added before stay: a spurious wake-up at most).
    bool pending = false;
    Resv::UnlockedIter it(resv, usage);
    FencePtr fence = it.first();
    for (; fence; fence = it.next()) {
      pending = true;
      if (table == nullptr) {
        break;
      }
      table->waitFence(fence);
    }
    if (!fence && it.isRestarted()) {
      pending = false;
    }
    if (!pending) {
      revents = static_cast<short>(revents | bit);
    }
  };
  check(POLLIN, ResvUsage::Write);
  check(POLLOUT, ResvUsage::Read);
  return revents;
}

const FileOperations& detail::dmaBufOps() noexcept {
  static_assert(IsFileOperations<DmaBufOps>);
  static constinit const DmaBufOps ops;
  return ops;
}

}  // namespace zbuf::uapi
