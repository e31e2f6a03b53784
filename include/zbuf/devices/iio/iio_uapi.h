// The kernel's IIO buffer uAPI (include/uapi/linux/iio/buffer.h): ioctl numbers, struct
// iio_dmabuf and its flags, with the kernel's names, so kernel-style code compiles unchanged
// against the fd-level calls (uapi/calls.h, iio_files.h). Values are for the generic ioctl layout (x86-64,
// arm64) and are checked against the reference (section 8) at compile time.
#pragma once

#include <linux/ioctl.h>

#include <cstdint>

namespace zbuf::iio {

// struct iio_dmabuf: the argument of IIO_BUFFER_DMABUF_ENQUEUE_IOCTL.
struct iio_dmabuf {  // NOLINT(readability-identifier-naming): the kernel's name
  std::uint32_t fd;
  std::uint32_t flags;
  std::uint64_t bytes_used;  // NOLINT(readability-identifier-naming)
};
static_assert(sizeof(iio_dmabuf) == 16);

inline constexpr std::uint32_t kDmabufCyclic = 1U << 0;              // IIO_BUFFER_DMABUF_CYCLIC
inline constexpr std::uint32_t kDmabufSupportedFlags = 0x1;          // ..._SUPPORTED_FLAGS
inline constexpr unsigned long kGetFdIoctl = _IOWR('i', 0x91, int);  // NOLINT
inline constexpr unsigned long kDmabufAttachIoctl = _IOW('i', 0x92, int);          // NOLINT
inline constexpr unsigned long kDmabufDetachIoctl = _IOW('i', 0x93, int);          // NOLINT
inline constexpr unsigned long kDmabufEnqueueIoctl = _IOW('i', 0x94, iio_dmabuf);  // NOLINT

static_assert(kGetFdIoctl == 0xC0046991UL);
static_assert(kDmabufAttachIoctl == 0x40046992UL);
static_assert(kDmabufDetachIoctl == 0x40046993UL);
static_assert(kDmabufEnqueueIoctl == 0x40106994UL);

// The enqueue timeout for conflicting fences (DMABUF_ENQUEUE_TIMEOUT_MS).
inline constexpr unsigned kEnqueueTimeoutMs = 5000;

}  // namespace zbuf::iio

// The kernel's macro names, for code written against <linux/iio/buffer.h>.
#ifndef IIO_BUFFER_GET_FD_IOCTL
#define IIO_BUFFER_GET_FD_IOCTL (::zbuf::iio::kGetFdIoctl)
#define IIO_BUFFER_DMABUF_ATTACH_IOCTL (::zbuf::iio::kDmabufAttachIoctl)
#define IIO_BUFFER_DMABUF_DETACH_IOCTL (::zbuf::iio::kDmabufDetachIoctl)
#define IIO_BUFFER_DMABUF_ENQUEUE_IOCTL (::zbuf::iio::kDmabufEnqueueIoctl)
#define IIO_BUFFER_DMABUF_CYCLIC (::zbuf::iio::kDmabufCyclic)
#define IIO_BUFFER_DMABUF_SUPPORTED_FLAGS (::zbuf::iio::kDmabufSupportedFlags)
#endif
