// Test helpers for the uAPI tests: a buffer from the system heap through the uAPI, fences
// attached the way a driver (vgem) attaches them, and IGT's busy checks.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "support/wait_until.h"
#include "zbuf/base/sys.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/bufinfo.h"
#include "zbuf/core/fence.h"
#include "zbuf/core/resv.h"
#include "zbuf/heaps/system_heap.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/dma_buf.h"
#include "zbuf/uapi/heap.h"

namespace zbuf::testing {

// A system-heap buffer fd (IGT's vgem bo + prime export).
inline UniqueFd allocateBuffer(std::uint64_t len = 4096,
                               std::uint32_t fdFlags = O_RDWR | O_CLOEXEC) {
  auto fd = uapi::allocate("system", len, fdFlags);
  EXPECT_TRUE(fd.ok()) << fd.error().describe();
  return fd.ok() ? std::move(*fd) : UniqueFd();
}

// dma_buf_get on the calling thread's context.
inline BufferPtr bufferOf(int fd) {
  auto b = uapi::Context::current().bufferFromFd(fd);
  EXPECT_TRUE(b.ok()) << b.error().describe();
  return b.ok() ? *b : nullptr;
}

// A sync file for `fence`, installed in the calling thread's context (sync_file_create +
// fd_install, as a driver returns one).
inline UniqueFd syncFileFor(FencePtr fence) {
  auto fd = uapi::Context::current().installSyncFile(std::move(fence));
  EXPECT_TRUE(fd.ok()) << fd.error().describe();
  return fd.ok() ? std::move(*fd) : UniqueFd();
}

// sync_file_get_fence on the calling thread's context.
inline FencePtr fenceOf(int syncFileFd) {
  auto f = uapi::Context::current().syncFileFence(syncFileFd);
  EXPECT_TRUE(f.ok()) << f.error().describe();
  return f.ok() ? *f : nullptr;
}

// vgem_fence_attach: a new unsignalled fence on its own context, added to the buffer's resv
// with `usage`, as a driver does (lock, reserve, add, unlock).
inline std::shared_ptr<TimelineFence> attachFence(int bufferFd, ResvUsage usage) {
  auto fence = Timeline::create("vgem", "vgem-fence")->createFence();
  Resv& resv = bufferOf(bufferFd)->resv();
  EXPECT_TRUE(resv.lock().ok());
  EXPECT_TRUE(resv.reserveFencesLocked(1).ok());
  resv.addFenceLocked(fence, usage);
  resv.unlock();
  return fence;
}

// IGT's dmabuf_busy: poll with POLLOUT for a WRITE question, else POLLIN; busy if not ready.
inline bool dmabufBusy(int bufferFd, std::uint32_t flags) {
  const short events = (flags & uapi::kDmaBufSyncWrite) != 0 ? POLLOUT : POLLIN;
  auto r = uapi::pollBuffer(bufferFd, events, std::chrono::milliseconds(0));
  EXPECT_TRUE(r.ok());
  return r.ok() && *r == 0;
}

// IGT's sync_file_busy: poll(POLLIN) with a zero timeout.
inline bool syncFileBusy(int syncFileFd) {
  auto r = sys::pollOne(syncFileFd, POLLIN, std::chrono::milliseconds(0));
  EXPECT_TRUE(r.ok());
  return r.ok() && (*r & POLLIN) == 0;
}

// IGT's dmabuf_sync_file_busy: export with `flags`, then sync_file_busy.
inline bool dmabufSyncFileBusy(int bufferFd, std::uint32_t flags) {
  auto file = uapi::exportSyncFile(bufferFd, flags);
  EXPECT_TRUE(file.ok());
  return file.ok() && syncFileBusy(file->get());
}

// A system-heap buffer installed in `ctx` directly (dma_buf_fd), without opening the heap device
// (so the context's table holds the buffer's file only).
inline UniqueFd installSystemBuffer(uapi::Context& ctx, std::uint64_t len = 4096,
                                    int fdFlags = O_RDWR | O_CLOEXEC) {
  auto buffer = SystemHeap::instance()->allocate(len);
  EXPECT_TRUE(buffer.ok()) << buffer.error().describe();
  if (!buffer.ok()) {
    return {};
  }
  auto fd = ctx.installBuffer(std::move(*buffer), fdFlags);
  EXPECT_TRUE(fd.ok()) << fd.error().describe();
  return fd.ok() ? std::move(*fd) : UniqueFd();
}

// Whether the buffer with this inode is in the process's buffer list (the kernel's db_list,
// what bufinfo shows).
inline bool bufferListed(std::uint64_t inode) {
  for (const BufInfoEntry& e : collectBufInfo().buffers) {
    if (e.inode == inode) {
      return true;
    }
  }
  return false;
}

// waitUntil(done, limit): a bounded wait on a condition (tests/support/wait_until.h).
using testing_support::waitUntil;

}  // namespace zbuf::testing
