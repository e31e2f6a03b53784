// zbuf::uapi::ioctl(): the kernel's ioctl(2) entry point for zbuf's fds, embedded transport
// (direct calls, errno results). It takes the real request numbers and structs of
// <linux/dma-buf.h>, <linux/sync_file.h>, <linux/dma-heap.h> and <linux/udmabuf.h> (see
// uapi/abi.h), so code written against the kernel runs unchanged with `ioctl` replaced by
// `zbuf::uapi::ioctl` and `errno` by the Result's code().
//
//   fd                      requests                                  anything else
//   sync file               SYNC_IOC_MERGE, _FILE_INFO, _SET_DEADLINE  ENOTTY
//   zbuf buffer             DMA_BUF_IOCTL_SYNC, DMA_BUF_SET_NAME(_A/_B), ENOTTY
//                           DMA_BUF_IOCTL_EXPORT/IMPORT_SYNC_FILE
//   heap device (heap.h)    DMA_HEAP_IOCTL_ALLOC                       EINVAL (as dma-heap)
//   udmabuf device          UDMABUF_CREATE, UDMABUF_CREATE_LIST        ENOTTY
//   any other open fd       -                                          ENOTTY
//   not an open fd          -                                          EBADF
// A known number with the wrong size is a different request: ENOTTY (EINVAL on a heap).
// The return value is what the kernel's ioctl returns: 0, or the new fd for the udmabuf calls.
//
// Thread-safety: thread-safe.
#pragma once

#include "zbuf/base/result.h"

namespace zbuf::uapi {

[[nodiscard]] Result<long> ioctl(int fd, unsigned long request, void* arg);

}  // namespace zbuf::uapi
