// The dma-buf uAPI on a zbuf buffer fd (reference sections 1 and 12), embedded transport.
//
// Each ioctl has a typed call taking the kernel's struct (what uapi::ioctl() dispatches to) and
// a convenience form. The file operations the kernel gives a dma-buf fd (lseek, mmap, poll) are
// functions here, because zbuf's buffer fd is a memfd: lseek(2)/poll(2) on it would be the
// memfd's, not a dma-buf's (docs/uapi.md lists every difference).
//
// Errors (docs/uapi.md has the full table):
//   every call: fd not open EBADF; an open fd that is not a zbuf buffer: ENOTTY for the ioctls,
//   EINVAL for seek/mmap/pollBuffer; a null argument pointer EFAULT.
//   SYNC: a bit outside 0x7, or neither READ nor WRITE, EINVAL; the exporter's error; START
//     waits for the implicit fences (write access: usage READ; read access: usage WRITE);
//     END never waits.
//   SET_NAME: more than 31 characters EINVAL (the old name stays); empty is a name.
//   EXPORT_SYNC_FILE: flags not a non-empty subset of READ|WRITE EINVAL.
//   IMPORT_SYNC_FILE: same flags rule EINVAL; fd not a sync file EINVAL; ENOMEM from the resv.
//   seek: offset != 0 or whence not SEEK_SET/SEEK_END EINVAL.
//   mmap: length 0, unaligned offset, MAP_PRIVATE (or no MAP_SHARED), range past the end, no
//     exporter mmap EINVAL; offset overflow EOVERFLOW; a write-only fd, or PROT_WRITE shared on
//     a read-only fd or buffer, EACCES; then the exporter's own rules.
//   pollBuffer: EINVAL for a non-buffer fd only; it never fails because of the fences.
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

namespace zbuf::uapi {

// --- the ioctls, with the kernel's structs ------------------------------------------------------
// DMA_BUF_IOCTL_SYNC.
[[nodiscard]] Result<void> dmaBufSync(int fd, const DmaBufSync* sync);
// DMA_BUF_SET_NAME: `name` is the user pointer itself (the ioctl's argument), NUL-terminated.
[[nodiscard]] Result<void> dmaBufSetName(int fd, const char* name);
// DMA_BUF_IOCTL_EXPORT_SYNC_FILE: on success data->fd is a new sync file (close-on-exec).
[[nodiscard]] Result<void> dmaBufExportSyncFile(int fd, DmaBufExportSyncFile* data);
// DMA_BUF_IOCTL_IMPORT_SYNC_FILE.
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
// llseek: only offset 0 with SEEK_SET (-> 0) or SEEK_END (-> the size); the position does not
// move.
[[nodiscard]] Result<std::uint64_t> seek(int fd, std::int64_t offset, int whence);
// The buffer's size (seek(fd, 0, SEEK_END)).
[[nodiscard]] Result<std::uint64_t> size(int fd);
// mmap of the buffer: `offset` in bytes (page aligned), MAP_SHARED only. Mapping and touching
// memory never wait for fences; bracket CPU access with SYNC.
[[nodiscard]] Result<sys::Mapping> mmap(int fd, std::size_t length, int prot, int flags,
                                        std::uint64_t offset = 0);
// poll(2) on a dma-buf, as a function: the ready subset of `events` (POLLIN: no pending writer,
// i.e. every fence with usage <= WRITE has signalled; POLLOUT: nothing pending, usage <= READ).
// Other bits are ignored; with neither POLLIN nor POLLOUT it returns 0 at once. Waits up to
// `timeout` (negative: forever) for one of the requested events; 0 on timeout.
[[nodiscard]] Result<short> pollBuffer(int fd, short events, std::chrono::milliseconds timeout);

}  // namespace zbuf::uapi
