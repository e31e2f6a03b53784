// SyncFile: a fence as a file descriptor (the kernel's struct sync_file), the object behind a
// sync-file File (uapi/context.h installs it; uapi/sync_file.h has the fd-level calls).
//
// What it promises:
//  - create() makes the object and the pipe that stands for it: the read end is the file's
//    identity (the context installs it in its file table and hands out descriptions of it), and
//    poll(2) reports it readable (POLLIN, never POLLOUT) once the fence has signalled, in this
//    process or in any process the fd was passed to (fork, SCM_RIGHTS). A fence callback writes
//    one byte to the write end when the fence signals. The fd-level read() of a sync file is
//    EINVAL (the kernel's has no read); a plain read(2) would consume the byte (docs/uapi.md).
//  - Signalling is enabled when the object is created (the kernel arms its callback on the first
//    poll; zbuf cannot see poll(2) calls, so it arms at once).
//  - merge(), info(), setDeadline() follow the kernel's SYNC_IOC_MERGE, SYNC_IOC_FILE_INFO and
//    SYNC_IOC_SET_DEADLINE (reference section 2).
//
// Lifetime: whoever holds the shared_ptr (the file table, while some description of the pipe's
// read end is open anywhere). If the creating process exits, the write end closes and the other
// processes' fds report POLLHUP (the fence can no longer signal for them).
//
// Thread-safety: every function is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/core/fence.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class SyncFile : public std::enable_shared_from_this<SyncFile> {
 public:
  static constexpr std::size_t kNameLen = 32;  // sizeof(sync_merge_data::name), NUL included

  // What SYNC_IOC_FILE_INFO reports, as C++ values (the ABI structs struct sync_file_info and
  // struct sync_fence_info are uapi::SyncFileInfo and uapi::SyncFenceInfo, uapi/abi.h).
  // One leaf fence of a sync file.
  struct FenceInfo {
    std::string objName;     // the timeline name, at most 31 characters
    std::string driverName;  // at most 31 characters
    int status = 0;          // 0 pending, 1 signalled, negative errno when signalled with error
    std::uint64_t timestampNs = 0;  // signal time, 0 while pending
  };
  // The file.
  struct Info {
    std::string name;               // at most 31 characters
    int status = 0;                 // see info()
    std::size_t numFences = 0;      // the number of leaf fences
    std::vector<FenceInfo> fences;  // empty unless asked for
  };

  struct Created;
  // sync_file_create: a new sync file for `fence` (EINVAL if null) and the read end of its pipe
  // (close-on-exec). `name` (the MERGE name) is cut to 31 characters; empty means "generate one
  // from the fence".
  [[nodiscard]] static Result<Created> create(FencePtr fence, std::string_view name = {});

  // SYNC_IOC_MERGE: a new sync file whose fence is dma_fence_unwrap_merge(this, other's fence),
  // named `name` (cut at the first NUL and to 31 characters). ENOMEM if the merged fence cannot
  // be built.
  [[nodiscard]] Result<Created> merge(std::string_view name, const SyncFile& other) const;

  // SYNC_IOC_FILE_INFO. With withFences false (num_fences 0): count, name and the status of the
  // file's fence (dma_fence_get_status). With withFences true: one entry per leaf fence, and the
  // status is 1 unless some leaf's status is <= 0, in which case the first such leaf's status.
  [[nodiscard]] Info info(bool withFences) const;
  // The leaf fences (the file's fence unwrapped: arrays and chains flattened).
  [[nodiscard]] std::vector<FencePtr> leaves() const;
  // The MERGE name if one was given, else "<driver>-<timeline><context>-<seqno>", both cut to
  // 31 characters like the kernel's 32-byte buffer.
  [[nodiscard]] std::string name() const;
  [[nodiscard]] const FencePtr& fence() const noexcept { return fence_; }
  // SYNC_IOC_SET_DEADLINE: forwards the hint (no-op once signalled).
  void setDeadline(std::uint64_t deadlineNs) const noexcept { fence_->setDeadline(deadlineNs); }

  struct Private;  // construction key
  SyncFile(Private key, FencePtr fence, std::string name, UniqueFd writeEnd);
  ~SyncFile();
  SyncFile(const SyncFile&) = delete;
  SyncFile& operator=(const SyncFile&) = delete;
  SyncFile(SyncFile&&) = delete;
  SyncFile& operator=(SyncFile&&) = delete;

 private:
  // Writes the wake-up byte when the fence signals. Runs under the fence lock: one
  // non-blocking write(2) of one byte, no allocation, no other lock.
  struct Waker : FenceCallback {
    Waker() noexcept;
    static void onSignal(Fence& fence, FenceCallback& self);
    UniqueFd writeEnd;  // O_NONBLOCK; set before the callback is added, never changed after
  };

  FencePtr fence_;
  std::string name_;  // the MERGE name (empty: generated); never changed after construction
  Waker waker_;
};

struct SyncFile::Created {
  std::shared_ptr<SyncFile> file;
  UniqueFd readEnd;
};

}  // namespace zbuf
#pragma GCC visibility pop
