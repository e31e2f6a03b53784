// zbuf's buffer and fence types over objects the real kernel made, so zbuf's emulated devices
// consume buffers and wait on fences from the kernel (docs/kernel-lane.md):
//
//   auto buffer = uapi::wrapKernelDmaBuf(realFd).value();   // a Buffer: attach, map, CPU access
//   auto fence = uapi::wrapKernelSyncFile(realSyncFd).value();  // a Fence: wait, callbacks
//
// A wrapped dma-buf is a Buffer whose exporter is the real kernel: its size is the kernel's
// (lseek SEEK_END), its exporter name the kernel's exp_name; mmap maps the real fd; CPU access
// brackets are the real DMA_BUF_IOCTL_SYNC (so they wait for the kernel's fences); devices map
// it through one mapping of the whole buffer (zbuf's page model over it). Its Resv is zbuf's:
// fences an emulated device adds to it are zbuf's and the real kernel never sees them (it cannot:
// a kernel driver cannot wait on a fence it did not make), while the kernel's pending fences are
// brought into it at every dma_buf_get (importKernelFences); a CPU bracket on the wrapped Buffer
// waits for both.
//
// A wrapped sync_file is a Fence that signals when the real fd polls readable, with the kernel's
// status (FILE_INFO: 1, or the first fence's negative error). Waiting for it is a poll(2) in a
// watcher thread that zbuf starts on first use and that sleeps while nothing is pending.
//
// The Context reaches both through its fall-through: dma_buf_get (bufferFromFd) and
// sync_file_get_fence (syncFileFence) of an fd the Context does not own but the kernel says is a
// dma-buf or a sync file wrap it, so an emulated IIO or FunctionFS device attaches a real heap's
// buffer and IMPORT_SYNC_FILE takes a real sync file. One real file gives one Buffer per context
// while that Buffer lives.
//
// Errors: EBADF for an fd that is not open; EINVAL for a file that is not a dma-buf (resp. a sync
// file), as dma_buf_get and sync_file_get_fence; the kernel's errno of a failing call.
//
// Thread-safety: thread-safe.
#pragma once

#include <string>

#include "zbuf/base/result.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/fence.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

// What readlink(/proc/self/fd/<fd>) says of a real kernel dma-buf ("/dmabuf:<name>", or
// "anon_inode:dmabuf" on older kernels) and of a real sync file ("anon_inode:sync_file").
[[nodiscard]] bool isKernelDmaBufLink(std::string_view link) noexcept;
[[nodiscard]] bool isKernelSyncFileLink(std::string_view link) noexcept;

// A Buffer over the real dma-buf `fd` (which it dups: the caller keeps its fd).
[[nodiscard]] Result<BufferPtr> wrapKernelDmaBuf(int fd);
// Whether `buffer` was made by wrapKernelDmaBuf.
[[nodiscard]] bool isKernelDmaBuf(const Buffer& buffer) noexcept;
// Brings the real kernel's pending fences on a wrapped buffer into its Resv: the writers
// (EXPORT_SYNC_FILE READ) as WRITE fences, every fence (EXPORT_SYNC_FILE WRITE) as READ fences,
// each a wrapped sync file; nothing when nothing is pending. Context::bufferFromFd does it on
// every call, so an emulated device's ATTACH, ENQUEUE or TRANSFER waits for what the kernel has
// in flight on the buffer at that moment (a fence the kernel adds later is not seen until the
// next call). EINVAL for a buffer that is not a wrapped one.
[[nodiscard]] Result<void> importKernelFences(Buffer& buffer);

// A Fence over the real sync file `fd` (which it dups).
[[nodiscard]] Result<FencePtr> wrapKernelSyncFile(int fd);

}  // namespace zbuf::uapi
#pragma GCC visibility pop
