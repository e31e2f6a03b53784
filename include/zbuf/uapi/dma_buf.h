// Convenience calls for the dma-buf uAPI on a buffer fd (reference sections 1 and 12), on the
// calling thread's context: each is the fd-level call (calls.h) with the kernel's struct filled
// in, so they behave exactly as ioctl(fd, DMA_BUF_IOCTL_*, ...) does (the dma-buf file's
// operations are in src/uapi/dma_buf_file.cpp; docs/uapi.md has the errno table):
//   SYNC: a bit outside 0x7, or neither READ nor WRITE, EINVAL; the exporter's error; START
//     waits for the implicit fences (write access: usage READ; read access: usage WRITE);
//     END never waits.
//   SET_NAME: more than 31 characters EINVAL (the old name stays); empty is a name.
//   EXPORT_SYNC_FILE / IMPORT_SYNC_FILE: flags not a non-empty subset of READ|WRITE EINVAL;
//     IMPORT of an fd that is not a sync file EINVAL.
//   On an fd that is not a buffer: ENOTTY for the ioctls (another file's ioctl), EINVAL for
//     seek; EBADF for an fd that is not open.
//
// Thread-safety: every function is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "zbuf/base/result.h"
#include "zbuf/base/sys.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/core/buffer.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/calls.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

// --- the ioctls, with the kernel's structs ------------------------------------------------------
[[nodiscard]] Result<void> dmaBufSync(int fd, const DmaBufSync* sync);
// DMA_BUF_SET_NAME: `name` is the user pointer itself (the ioctl's argument), NUL-terminated.
[[nodiscard]] Result<void> dmaBufSetName(int fd, const char* name);
// DMA_BUF_IOCTL_EXPORT_SYNC_FILE: on success data->fd is a new sync file (close-on-exec).
[[nodiscard]] Result<void> dmaBufExportSyncFile(int fd, DmaBufExportSyncFile* data);
[[nodiscard]] Result<void> dmaBufImportSyncFile(int fd, const DmaBufImportSyncFile* data);

// --- convenience forms --------------------------------------------------------------------------
// SYNC with DMA_BUF_SYNC_* flags.
[[nodiscard]] Result<void> sync(int fd, std::uint64_t flags);
[[nodiscard]] Result<void> setName(int fd, std::string_view name);
// The name set with SET_NAME ("" if none was set), what fdinfo's name: line shows.
[[nodiscard]] Result<std::string> name(int fd);
// EXPORT_SYNC_FILE: the new sync file.
[[nodiscard]] Result<UniqueFd> exportSyncFile(int fd, std::uint32_t flags);
// IMPORT_SYNC_FILE of `syncFileFd` with DMA_BUF_SYNC_READ/WRITE flags.
[[nodiscard]] Result<void> importSyncFile(int fd, std::uint32_t flags, int syncFileFd);

// A CPU access bracket as a scope object: validates `rwFlags` as SYNC does (READ, WRITE or
// both; no other bit), then SYNC START; the returned core CpuAccess does SYNC END with the same
// direction on end() or destruction, and keeps the buffer alive meanwhile.
[[nodiscard]] Result<CpuAccess> syncScope(int fd, std::uint64_t rwFlags);

// --- file operations ---------------------------------------------------------------------------
// lseek: only offset 0 with SEEK_SET (-> 0) or SEEK_END (-> the size); the position does not
// move.
[[nodiscard]] Result<std::uint64_t> seek(int fd, std::int64_t offset, int whence);
// The buffer's size (seek(fd, 0, SEEK_END)).
[[nodiscard]] Result<std::uint64_t> size(int fd);
// poll(2) on one buffer fd: the ready subset of `events` (POLLIN: no pending writer; POLLOUT:
// nothing pending). Waits up to `timeout` (negative: forever); 0 on timeout. EINVAL for an fd
// that is not a buffer.
[[nodiscard]] Result<short> pollBuffer(int fd, short events, std::chrono::milliseconds timeout);

}  // namespace zbuf::uapi
#pragma GCC visibility pop
