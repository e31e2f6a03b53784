// Convenience calls for the sync-file uAPI (reference section 2): SYNC_IOC_MERGE,
// SYNC_IOC_FILE_INFO and SYNC_IOC_SET_DEADLINE, each as a typed call taking the kernel's struct
// and as a convenience call; all make the fd-level ioctl on the calling thread's context
// (the sync file's operations are in src/uapi/sync_file_file.cpp).
//
// Errors, as the kernel returns them (docs/uapi.md has the table):
//   any call on a fd that is not a sync file           ENOTTY (the other file's ioctl)
//   null argument pointer                               EFAULT
//   MERGE: flags or pad non-zero                        EINVAL
//          fd2 not a sync file                          ENOENT
//   FILE_INFO: flags or pad non-zero                    EINVAL
//          0 < num_fences < number of leaf fences       EINVAL
//          num_fences > 0 with a null sync_fence_info   EFAULT
//   SET_DEADLINE: pad non-zero                          EINVAL
// A sync file is polled with the fd-level poll or with poll(2) itself (POLLIN once signalled,
// never POLLOUT); its fd-level read() is EINVAL, as the kernel's.
//
// Thread-safety: every function is thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/core/sync_file.h"
#include "zbuf/uapi/abi.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

// SYNC_IOC_MERGE: on success data->fence is the new fd (close-on-exec); the caller owns it.
[[nodiscard]] Result<void> syncMerge(int fd, SyncMergeData* data);
// SYNC_IOC_FILE_INFO.
[[nodiscard]] Result<void> syncFileInfo(int fd, SyncFileInfo* info);
// SYNC_IOC_SET_DEADLINE.
[[nodiscard]] Result<void> syncSetDeadline(int fd, const SyncSetDeadline* data);

// Convenience: MERGE of fd1 and fd2 into a new file named `name`.
[[nodiscard]] Result<UniqueFd> mergeSyncFiles(std::string_view name, int fd1, int fd2);
// Convenience: FILE_INFO with every leaf (two calls, like libsync's sync_file_info()).
[[nodiscard]] Result<SyncFile::Info> syncFileInfo(int fd);

}  // namespace zbuf::uapi
#pragma GCC visibility pop
