// The sync-file uAPI: argument checks in the kernel's order (sync_file.c), then the core
// SyncFile does the work.
#include "zbuf/uapi/sync_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace zbuf::uapi {
namespace {

Result<std::shared_ptr<SyncFile>> syncFileFor(int fd, const char* op) {
  auto file = SyncFile::fromFd(fd);
  if (!file.ok()) {
    return Error(ENOTTY, op, fmt::format("fd {} is not a sync file", fd));
  }
  return file;
}

// strscpy into a fixed, zero-filled char array.
template <std::size_t N>
void copyName(char (&out)[N], std::string_view name) {
  std::memset(out, 0, N);
  std::memcpy(out, name.data(), std::min(name.size(), N - 1));
}

// MERGE and FILE_INFO: the sync file behind `fd` (ENOTTY), a non-null argument (EFAULT) whose
// flags and pad are 0 (EINVAL).
template <typename Arg>
Result<std::shared_ptr<SyncFile>> fileForCall(int fd, const char* op, const Arg* arg) {
  auto file = syncFileFor(fd, op);
  if (!file.ok()) {
    return file;
  }
  if (arg == nullptr) {
    return Error(EFAULT, op, "argument pointer is null");
  }
  if (arg->flags != 0 || arg->pad != 0) {
    return Error(EINVAL, op,
                 fmt::format("flags {:#x} and pad {:#x} must be 0", arg->flags, arg->pad));
  }
  return file;
}

}  // namespace

Result<void> syncMerge(int fd, SyncMergeData* data) {
  auto file = fileForCall(fd, "SYNC_IOC_MERGE", data);
  if (!file.ok()) {
    return std::move(file).error();
  }
  data->name[sizeof data->name - 1] = '\0';
  auto merged = (*file)->merge(std::string_view(data->name), data->fd2);
  if (!merged.ok()) {
    return std::move(merged).error();
  }
  data->fence = merged->release();
  return {};
}

Result<void> syncFileInfo(int fd, SyncFileInfo* info) {
  auto file = fileForCall(fd, "SYNC_IOC_FILE_INFO", info);
  if (!file.ok()) {
    return std::move(file).error();
  }
  const bool withFences = info->numFences != 0;
  const zbuf::SyncFileInfo got = (*file)->info(withFences);
  if (withFences) {
    if (info->numFences < got.numFences) {
      return Error(EINVAL, "SYNC_IOC_FILE_INFO",
                   fmt::format("num_fences {} is below the file's {} fences", info->numFences,
                               got.numFences));
    }
    if (info->syncFenceInfo == 0) {
      return Error(EFAULT, "SYNC_IOC_FILE_INFO", "sync_fence_info pointer is null");
    }
    // NOLINTNEXTLINE(performance-no-int-to-ptr): a user pointer carried as __u64 by the ABI.
    auto* out = reinterpret_cast<SyncFenceInfo*>(static_cast<std::uintptr_t>(info->syncFenceInfo));
    for (std::size_t i = 0; i < got.fences.size(); ++i) {
      SyncFenceInfo entry{};
      copyName(entry.objName, got.fences[i].objName);
      copyName(entry.driverName, got.fences[i].driverName);
      entry.status = got.fences[i].status;
      entry.flags = 0;
      entry.timestampNs = got.fences[i].timestampNs;
      std::memcpy(&out[i], &entry, sizeof entry);
    }
  }
  copyName(info->name, got.name);
  info->status = got.status;
  info->numFences = static_cast<std::uint32_t>(got.numFences);
  return {};
}

Result<void> syncSetDeadline(int fd, const SyncSetDeadline* data) {
  auto file = syncFileFor(fd, "SYNC_IOC_SET_DEADLINE");
  if (!file.ok()) {
    return std::move(file).error();
  }
  if (data == nullptr) {
    return Error(EFAULT, "SYNC_IOC_SET_DEADLINE", "argument pointer is null");
  }
  if (data->pad != 0) {
    return Error(EINVAL, "SYNC_IOC_SET_DEADLINE", fmt::format("pad {:#x} must be 0", data->pad));
  }
  (*file)->setDeadline(data->deadlineNs);
  return {};
}

Result<UniqueFd> mergeSyncFiles(std::string_view name, int fd1, int fd2) {
  SyncMergeData data{};
  copyName(data.name, name);
  data.fd2 = fd2;
  ZBUF_TRY(syncMerge(fd1, &data));
  return UniqueFd::adopt(data.fence);
}

Result<zbuf::SyncFileInfo> syncFileInfo(int fd) {
  auto file = syncFileFor(fd, "SYNC_IOC_FILE_INFO");
  if (!file.ok()) {
    return std::move(file).error();
  }
  return (*file)->info(true);
}

}  // namespace zbuf::uapi
