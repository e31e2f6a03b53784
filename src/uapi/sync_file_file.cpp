// The sync file (the kernel's sync_file_fops): MERGE, FILE_INFO and SET_DEADLINE in
// sync_file.c's order and with its errnos, and poll. No read, write or llseek: the defaults
// (EINVAL, EINVAL, ESPIPE) are the kernel's answers.
#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <cstring>

#include "file_kinds.h"
#include "zbuf/core/sync_file.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/user_copy.h"

namespace zbuf::uapi {
namespace {

// strscpy into a fixed, zero-filled char array.
template <std::size_t N>
void copyName(char (&out)[N], std::string_view name) {
  std::memset(out, 0, N);
  std::memcpy(out, name.data(), std::min(name.size(), N - 1));
}

Result<long> merge(const OpenFile& f, const SyncFile& file, void* arg) {
  constexpr const char* kOp = "SYNC_IOC_MERGE";
  ZBUF_ASSIGN_OR_RETURN(auto data, copyFromUser<SyncMergeData>(arg, kOp));
  if (data.flags != 0 || data.pad != 0) {
    return Error(EINVAL, kOp,
                 fmt::format("flags {:#x} and pad {:#x} must be 0", data.flags, data.pad));
  }
  auto other = f.context().lookup(data.fd2);
  if (!other.ok() || !*other || !(*other)->is(detail::syncFileOps())) {
    return Error(ENOENT, kOp, fmt::format("fd2 {} is not a sync file", data.fd2));
  }
  data.name[sizeof data.name - 1] = '\0';
  ZBUF_ASSIGN_OR_RETURN(auto merged,
                        file.merge(std::string_view(data.name), (*other)->data<SyncFile>()));
  ZBUF_ASSIGN_OR_RETURN(auto installed,
                        f.context().files().insert(detail::syncFileOps(), std::move(merged.file),
                                                   std::move(merged.readEnd)));
  ZBUF_ASSIGN_OR_RETURN(auto fd, f.context().files().openDescription(*installed, O_RDONLY));
  data.fence = fd.get();
  ZBUF_TRY(copyToUser(arg, data, kOp));
  (void)fd.release();
  return 0L;
}

Result<long> fileInfo(const SyncFile& file, void* arg) {
  constexpr const char* kOp = "SYNC_IOC_FILE_INFO";
  ZBUF_ASSIGN_OR_RETURN(auto info, copyFromUser<SyncFileInfo>(arg, kOp));
  if (info.flags != 0 || info.pad != 0) {
    return Error(EINVAL, kOp,
                 fmt::format("flags {:#x} and pad {:#x} must be 0", info.flags, info.pad));
  }
  const bool withFences = info.numFences != 0;
  const SyncFile::Info got = file.info(withFences);
  if (withFences) {
    if (info.numFences < got.numFences) {
      return Error(EINVAL, kOp,
                   fmt::format("num_fences {} is below the file's {} fences", info.numFences,
                               got.numFences));
    }
    if (info.syncFenceInfo == 0) {
      return Error(EFAULT, kOp, "sync_fence_info pointer is null");
    }
    // NOLINTNEXTLINE(performance-no-int-to-ptr): a user pointer carried as __u64 by the ABI.
    auto* out = reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(info.syncFenceInfo));
    for (std::size_t i = 0; i < got.fences.size(); ++i) {
      SyncFenceInfo entry{};
      copyName(entry.objName, got.fences[i].objName);
      copyName(entry.driverName, got.fences[i].driverName);
      entry.status = got.fences[i].status;
      entry.flags = 0;
      entry.timestampNs = got.fences[i].timestampNs;
      std::memcpy(out + i * sizeof entry, &entry, sizeof entry);
    }
  }
  copyName(info.name, got.name);
  info.status = got.status;
  info.numFences = static_cast<std::uint32_t>(got.numFences);
  ZBUF_TRY(copyToUser(arg, info, kOp));
  return 0L;
}

Result<long> setDeadline(const SyncFile& file, const void* arg) {
  constexpr const char* kOp = "SYNC_IOC_SET_DEADLINE";
  ZBUF_ASSIGN_OR_RETURN(auto data, copyFromUser<SyncSetDeadline>(arg, kOp));
  if (data.pad != 0) {
    return Error(EINVAL, kOp, fmt::format("pad {:#x} must be 0", data.pad));
  }
  file.setDeadline(data.deadlineNs);
  return 0L;
}

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class SyncFileOps final : public FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "sync_file"; }

  Result<long> ioctl(const OpenFile& f, unsigned cmd, void* arg) const override {
    const SyncFile& file = f.file().data<SyncFile>();
    switch (cmd) {
      case kSyncIocMerge:
        return merge(f, file, arg);
      case kSyncIocFileInfo:
        return fileInfo(file, arg);
      case kSyncIocSetDeadline:
        return setDeadline(file, arg);
      default:
        return FileOperations::ioctl(f, cmd, arg);
    }
  }

  // sync_file_poll: POLLIN once the fence has signalled; never POLLOUT.
  short poll(const OpenFile& f, short events, PollTable* table) const override {
    const FencePtr& fence = f.file().data<SyncFile>().fence();
    if ((events & (POLLIN | POLLRDNORM)) == 0) {
      return 0;
    }
    if (table != nullptr && !fence->isSignaledFlag()) {
      table->waitFence(fence);
    }
    return fence->isSignaled() ? static_cast<short>(POLLIN | (events & POLLRDNORM)) : short{0};
  }
};

}  // namespace

const FileOperations& detail::syncFileOps() noexcept {
  static_assert(IsFileOperations<SyncFileOps>);
  static constinit const SyncFileOps ops;
  return ops;
}

}  // namespace zbuf::uapi
