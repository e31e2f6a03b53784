// Buffer fds handed to applications (the kernel's dma_buf_fd), and how long the Buffer behind
// one lives in embedded mode.
//
// The kernel keeps a dma-buf alive while any file reference exists (fds in any process,
// mmaps, importers). zbuf's Buffer lives while someone holds a BufferPtr; Buffer::fromFd()
// only finds live buffers. So that an application that only has an int fd (what the kernel
// uAPI gives it) keeps its buffer, the uAPI holds a BufferPtr for every buffer it hands an fd
// out for, and drops it when no fd of this process refers to that buffer any more:
//  - at once through uapi::close(fd) (close(2) plus the check for other fds of the buffer);
//  - or at the next prune (pruneBuffers(), run by installBuffer() whenever the table has
//    doubled since the last prune), which lists /proc/self/fd: fds closed with close(2) or a
//    UniqueFd are noticed there. The buffer's own backing fd does not count.
// So the table stays within 2x the buffers with open fds + 64 entries, and never leaks.
//
// What does not keep the Buffer (its name, resv, fences, attachments) alive: a mapping made
// with uapi::mmap (it keeps the memory, as in the kernel, but not the Buffer object), and a
// copy of the fd in another process. Another process can still mmap(2) a system-heap fd it
// received (the fd is the memfd), and poll sync files; the buffer's uAPI calls there need the
// daemon transport.
//
// Thread-safety: thread-safe; the table mutex guards the table only.
#pragma once

#include <fcntl.h>

#include <cstddef>

#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/core/buffer.h"

namespace zbuf::uapi {

// dma_buf_fd: a new fd for `buffer`, with the access mode of `fdFlags` (O_RDWR: a dup of the
// buffer's fd; O_RDONLY/O_WRONLY: a new open file description with that mode) and FD_CLOEXEC
// if `fdFlags` has O_CLOEXEC. The uAPI keeps the buffer alive as described above. EINVAL for
// flags other than O_ACCMODE | O_CLOEXEC; the errors of dup/open.
[[nodiscard]] Result<UniqueFd> installBuffer(BufferPtr buffer, int fdFlags = O_RDWR | O_CLOEXEC);

// close(2) for any fd the uAPI handed out: releases the uAPI's hold on a buffer or sync file
// as soon as no fd of this process refers to it any more. Other fds are simply closed.
void close(UniqueFd fd);

// Drops the hold on every buffer no fd of this process refers to; returns how many.
std::size_t pruneBuffers();
// Buffers the uAPI currently holds (including those not yet pruned).
[[nodiscard]] std::size_t heldBufferCount();

}  // namespace zbuf::uapi
