// Convenience calls for udmabuf creation through the device node /dev/udmabuf of the calling
// thread's context (reference section 7); each opens the node or makes the fd-level ioctl
// (heap_file.cpp has the file; heaps/udmabuf.h the exporter).
//
//   auto dev = zbuf::uapi::openUdmabuf();                 // open("/dev/udmabuf")
//   udmabuf_create create{.memfd = memfd, .flags = UDMABUF_FLAGS_CLOEXEC, .size = 1 << 20};
//   int buf = zbuf::uapi::ioctl(dev->get(), UDMABUF_CREATE, &create);   // the buffer fd
//
// Errors: UDMABUF_CREATE / _CREATE_LIST: the checks of heaps/udmabuf.h (EBADFD for a bad memfd
// or one of zbuf's own files, EINVAL for seals, alignment, size 0, ranges past the end, count 0
// or over the limit). Any other request ENOTTY. The return value is the new buffer fd (O_RDWR;
// close-on-exec with UDMABUF_FLAGS_CLOEXEC).
//
// Thread-safety: thread-safe.
#pragma once

#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/uapi/abi.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

// open("/dev/udmabuf", O_RDWR | O_CLOEXEC), with the kernel's default limits.
[[nodiscard]] Result<UniqueFd> openUdmabuf();

// UDMABUF_CREATE / UDMABUF_CREATE_LIST on a udmabuf fd: the new buffer fd. On another fd, that
// file's answer: EINVAL on a heap device (nr >= 1), ENOTTY on any other file.
[[nodiscard]] Result<UniqueFd> udmabufCreate(int udmabufFd, const UdmabufCreate* create);
[[nodiscard]] Result<UniqueFd> udmabufCreateList(int udmabufFd, const UdmabufCreateList* list);

}  // namespace zbuf::uapi
#pragma GCC visibility pop
