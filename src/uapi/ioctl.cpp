// The ioctl dispatcher: finds what kind of zbuf file `fd` is, then hands the request to the
// typed call for that file, exactly like the kernel's per-file unlocked_ioctl.
#include "zbuf/uapi/ioctl.h"

#include <fmt/format.h>

#include "dma_buf_calls.h"
#include "zbuf/base/sys.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/sync_file.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/heap.h"
#include "zbuf/uapi/sync_file.h"

namespace zbuf::uapi {
namespace {

Error notTty(int fd, unsigned long request, const char* what) {
  return Error(ENOTTY, "ioctl",
               fmt::format("request {:#x} is not a {} ioctl (fd {})", request, what, fd));
}

template <typename T>
Result<long> asLong(Result<T> r) {
  if (!r.ok()) {
    return std::move(r).error();
  }
  return 0L;
}

Result<long> syncFileIoctl(int fd, unsigned long request, void* arg) {
  switch (request) {
    case kSyncIocMerge:
      return asLong(syncMerge(fd, static_cast<SyncMergeData*>(arg)));
    case kSyncIocFileInfo:
      return asLong(syncFileInfo(fd, static_cast<SyncFileInfo*>(arg)));
    case kSyncIocSetDeadline:
      return asLong(syncSetDeadline(fd, static_cast<const SyncSetDeadline*>(arg)));
    default:
      return notTty(fd, request, "sync file");
  }
}

Result<long> bufferIoctl(Buffer& buffer, int fd, unsigned long request, void* arg) {
  switch (request) {
    case kDmaBufIoctlSync:
      return asLong(detail::dmaBufSync(buffer, static_cast<const DmaBufSync*>(arg)));
    case kDmaBufSetNameA:
    case kDmaBufSetNameB:
      // The argument is the name pointer itself.
      return asLong(detail::dmaBufSetName(buffer, static_cast<const char*>(arg)));
    case kDmaBufIoctlExportSyncFile:
      return asLong(detail::dmaBufExportSyncFile(buffer, static_cast<DmaBufExportSyncFile*>(arg)));
    case kDmaBufIoctlImportSyncFile:
      return asLong(
          detail::dmaBufImportSyncFile(buffer, static_cast<const DmaBufImportSyncFile*>(arg)));
    default:
      return notTty(fd, request, "dma-buf");
  }
}

}  // namespace

Result<long> ioctl(int fd, unsigned long request, void* arg) {
  // Buffers first: SYNC is the hot path. Buffer::fromFd tells a closed fd (EBADF) apart.
  auto buffer = Buffer::fromFd(fd);
  if (buffer.ok()) {
    return bufferIoctl(**buffer, fd, request, arg);
  }
  if (buffer.code() == EBADF) {
    return Error(EBADF, "ioctl", fmt::format("fd {} is not open", fd));
  }
  if (SyncFile::fromFd(fd).ok()) {
    return syncFileIoctl(fd, request, arg);
  }
  if (deviceKind(fd) != DeviceKind::None) {
    return deviceIoctl(fd, request, arg);
  }
  return notTty(fd, request, "zbuf");
}

}  // namespace zbuf::uapi
