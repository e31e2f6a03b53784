// SyncFile: a fence as a file descriptor (the kernel's struct sync_file).
//
// What it promises:
//  - create() hands out a new fd (close-on-exec) that poll(2) reports readable (POLLIN, never
//    POLLOUT) once the fence has signalled, in this process or in any process the fd was
//    passed to (fork, SCM_RIGHTS). The fd is the read end of a pipe: a fence callback writes
//    one byte to the write end when the fence signals. Nobody ever reads that byte, so the fd
//    stays readable for good, like the kernel's sync file.
//  - Signalling is enabled when the file is created (the kernel arms its callback on the first
//    poll; zbuf cannot see poll(2) calls, so it arms at once).
//  - fromFd()/getFence() find the SyncFile behind any fd of the same pipe in the creating
//    process (the registry is keyed by the pipe's (st_dev, st_ino); dup'd fds work). A fd that
//    is not the read end of a registered sync file is EINVAL (sync_file_get_fence() returning
//    NULL). In another process the fd can be polled, but the registry there does not know it:
//    MERGE and FILE_INFO across processes need the daemon transport.
//  - merge(), info(), setDeadline() follow the kernel's SYNC_IOC_MERGE, SYNC_IOC_FILE_INFO and
//    SYNC_IOC_SET_DEADLINE (reference section 2); the fd-level ioctl is in uapi/sync_file.h.
//
// Lifetime (docs/uapi.md): the registry keeps a SyncFile (its fence reference and the pipe's
// write end) exactly as long as some read end of its pipe is open anywhere. The kernel
// reports that state for free: poll(2) on the write end returns POLLERR once no reader is
// left. Entries are dropped (a) at once by SyncFile::close(), which closes the caller's fd and
// drops the entry if that was the last reader, (b) by prune(), which create() runs whenever the
// registry has doubled since the last prune (so it stays within 2x the live files + 64), and
// (c) explicitly through prune(). Closing the fd with close(2) or a UniqueFd is therefore fine:
// the entry goes at the next prune. If the creating process exits, the write end closes and
// the other processes' fds report POLLHUP (the fence can no longer signal for them).
//
// Thread-safety: every function is thread-safe. The registry mutex guards the registry map
// only; it is never held while a fence is waited on or signalled.
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

namespace zbuf {

// One leaf fence of a sync file (struct sync_fence_info).
struct SyncFenceInfo {
  std::string objName;     // the timeline name, at most 31 characters
  std::string driverName;  // at most 31 characters
  int status = 0;          // 0 pending, 1 signalled, negative errno when signalled with error
  std::uint64_t timestampNs = 0;  // signal time, 0 while pending
};

// struct sync_file_info, as SYNC_IOC_FILE_INFO fills it.
struct SyncFileInfo {
  std::string name;                   // at most 31 characters
  int status = 0;                     // see SyncFile::info()
  std::size_t numFences;              // the number of leaf fences
  std::vector<SyncFenceInfo> fences;  // empty unless asked for
};

class SyncFile : public std::enable_shared_from_this<SyncFile> {
 public:
  static constexpr std::size_t kNameLen = 32;  // sizeof(sync_merge_data::name), NUL included

  // sync_file_create + fd_install: a new sync file for `fence` (EINVAL if null). `name` (the
  // MERGE name) is cut to 31 characters; empty means "generate one from the fence".
  [[nodiscard]] static Result<UniqueFd> create(FencePtr fence, std::string_view name = {});
  // The SyncFile behind `fd`: EINVAL if `fd` is not the read end of a live sync file.
  [[nodiscard]] static Result<std::shared_ptr<SyncFile>> fromFd(int fd);
  // sync_file_get_fence: a new reference to the fence; EINVAL if `fd` is not a sync file.
  [[nodiscard]] static Result<FencePtr> getFence(int fd);
  // Closes `fd`; if it was the last open reader of its sync file, the registry entry (and its
  // fence reference) is dropped now rather than at the next prune.
  static void close(UniqueFd fd);
  // Drops every entry whose pipe has no reader left; returns how many were dropped.
  static std::size_t prune();
  // Entries in the registry (live files plus those not yet pruned).
  [[nodiscard]] static std::size_t registeredCount();

  // SYNC_IOC_MERGE: a new sync file whose fence is dma_fence_unwrap_merge(this, fd2's fence),
  // named `name` (cut at the first NUL and to 31 characters). ENOENT if `fd2` is not a sync
  // file; ENOMEM if the merged fence cannot be built.
  [[nodiscard]] Result<UniqueFd> merge(std::string_view name, int fd2) const;
  [[nodiscard]] Result<UniqueFd> merge(std::string_view name, const SyncFile& other) const;

  // SYNC_IOC_FILE_INFO. With withFences false (num_fences 0): count, name and the status of the
  // file's fence (dma_fence_get_status). With withFences true: one entry per leaf fence, and the
  // status is 1 unless some leaf's status is <= 0, in which case the first such leaf's status.
  [[nodiscard]] SyncFileInfo info(bool withFences) const;
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

  [[nodiscard]] bool hasReaders() const;

  FencePtr fence_;
  std::string name_;  // the MERGE name (empty: generated); never changed after construction
  Waker waker_;
};

}  // namespace zbuf
