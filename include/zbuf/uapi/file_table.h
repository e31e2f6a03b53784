// FileTable: a context's open files, found by the identity of the file an fd refers to, and
// kept exactly as long as the kernel would keep them.
//
// Identity: every File is backed by a kernel fd zbuf made for it (file.h); an fd of the
// application refers to the File whose backing file has the same (st_dev, st_ino). So dup(2),
// fork(2) and SCM_RIGHTS copies reach the same File, and a lookup is one fstat(2) and one hash
// lookup.
//
// Lifetime, with no scan of /proc/self/fd: the application never gets zbuf's own backing
// description; every fd handed out is a new open file description of the backing file
// (openDescription()), and the table watches the backing file with inotify (IN_OPEN and
// IN_CLOSE_*). The kernel reports an IN_CLOSE when a description's last reference goes (the
// last fd of it in any process, or the last mapping made through it), so the table counts the
// descriptions alive and releases the File when the count drops to zero: the kernel's own rule
// (a file lives while an fd or a mapping refers to it). Closes are noticed
//  - at once when the close goes through the context (Context::close, which reaps after
//    close(2)), and by any listing (reap() runs first);
//  - otherwise (close(2), a UniqueFd, a child's exit) by the table's reaper thread, which
//    sleeps on the inotify fd: the file is released a scheduling delay after the close, on the
//    reaper thread, as the kernel defers a final fput to task work.
// Limits: a description opened behind zbuf's back through /proc/<pid>/fd of a zbuf fd is
// counted too (it is an IN_OPEN); a file installed into two contexts is counted by both, so a
// buffer must not be installed into a second context while the first holds it (each context is
// a separate kernel). The inotify watch limit (fs.inotify.max_user_watches) bounds the number of
// live files; past it, creating a file fails with ENOSPC.
//
// Thread-safety: thread-safe. The table mutex guards the maps and the inotify reads; release
// operations run after it is dropped. A release may end the table's own context, even on the
// reaper thread (see State below).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/uapi/file.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

// One row of the table's listing.
struct FileInfo {
  std::string kind;  // FileOperations::name()
  std::uint64_t inode = 0;
  std::uint64_t device = 0;
  long descriptions = 0;  // open descriptions counted so far (a pending IN_OPEN may lag)
};

class FileTable {
 public:
  FileTable();
  ~FileTable();  // stops the reaper; releases every file still in the table
  FileTable(const FileTable&) = delete;
  FileTable& operator=(const FileTable&) = delete;
  FileTable(FileTable&&) = delete;
  FileTable& operator=(FileTable&&) = delete;

  // Adds a File of kind `ops` backed by `backing` and starts watching it. EEXIST if a file with
  // that identity is already in the table; ENOSPC past the inotify watch limit.
  [[nodiscard]] Result<FilePtr> insert(const FileOperations& ops, std::shared_ptr<void> data,
                                       UniqueFd backing);
  // A new open file description of `file` for the application (flags: O_ACCMODE, O_NONBLOCK;
  // O_CLOEXEC always set).
  [[nodiscard]] Result<UniqueFd> openDescription(const File& file, int flags);
  // The file behind `fd`: EBADF if `fd` is not open; nullptr if it is not one of this table's.
  [[nodiscard]] Result<FilePtr> find(int fd) const;
  // The file with this identity, or nullptr.
  [[nodiscard]] FilePtr findByIdentity(std::uint64_t device, std::uint64_t inode) const;

  // Processes the close events queued so far and releases the files they finished; returns how
  // many files this call released. When it returns, every close that happened before the call
  // has been released (by this call or by the reaper thread).
  std::size_t reap();
  // Every file (after a reap()).
  [[nodiscard]] std::vector<FileInfo> list();
  [[nodiscard]] std::size_t size();

 private:
  // The table's state lives in an object the reaper thread shares: a release on the reaper may
  // drop the last reference to the table's context (FunctionFS's ep0 release holds one), so the
  // table can end on its own reaper, which then cannot be joined; it is detached instead, and
  // leaves its loop on the state it still holds once that release returns.
  class State;
  std::shared_ptr<State> state_;
  std::thread reaper_;
};

}  // namespace zbuf::uapi
#pragma GCC visibility pop
