// The sync-file convenience calls: each fills the kernel's struct and makes the fd-level call, so
// it answers exactly as the sync file does (sync_file_file.cpp).
#include "zbuf/uapi/sync_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "zbuf/uapi/calls.h"

namespace zbuf::uapi {
namespace {

Result<void> call(int fd, unsigned long request, void* arg) {
  ZBUF_TRY(Context::current().ioctl(fd, request, arg));
  return {};
}

}  // namespace

Result<void> syncMerge(int fd, SyncMergeData* data) {
  return call(fd, kSyncIocMerge, data);
}

Result<void> syncFileInfo(int fd, SyncFileInfo* info) {
  return call(fd, kSyncIocFileInfo, info);
}

Result<void> syncSetDeadline(int fd, const SyncSetDeadline* data) {
  // ioctl(2) takes a void* for every request; this one only reads it.
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): see above
  return call(fd, kSyncIocSetDeadline, const_cast<SyncSetDeadline*>(data));
}

Result<UniqueFd> mergeSyncFiles(std::string_view name, int fd1, int fd2) {
  SyncMergeData data{};
  std::memcpy(data.name, name.data(), std::min(name.size(), sizeof data.name - 1));
  data.fd2 = fd2;
  ZBUF_TRY(syncMerge(fd1, &data));
  return UniqueFd::adopt(data.fence);
}

// libsync's sync_file_info(): FILE_INFO once for the count, once with room for every leaf.
Result<SyncFile::Info> syncFileInfo(int fd) {
  SyncFileInfo first{};
  ZBUF_TRY(syncFileInfo(fd, &first));
  std::vector<SyncFenceInfo> leaves(first.numFences);
  SyncFileInfo all{};
  all.numFences = first.numFences;
  all.syncFenceInfo = reinterpret_cast<std::uintptr_t>(leaves.data());
  if (first.numFences != 0) {
    ZBUF_TRY(syncFileInfo(fd, &all));
  } else {
    all = first;
  }
  SyncFile::Info out;
  out.name = std::string(all.name, ::strnlen(all.name, sizeof all.name));
  out.status = all.status;
  out.numFences = all.numFences;
  for (const SyncFenceInfo& leaf : leaves) {
    out.fences.push_back(SyncFile::FenceInfo{
        std::string(leaf.objName, ::strnlen(leaf.objName, sizeof leaf.objName)),
        std::string(leaf.driverName, ::strnlen(leaf.driverName, sizeof leaf.driverName)),
        leaf.status, leaf.timestampNs});
  }
  return out;
}

}  // namespace zbuf::uapi
