// The IIO buffer uAPI as the IIO emulation uses it: the numbers and struct of
// include/uapi/linux/iio/buffer.h, from the one ABI header (uapi/abi.h; uapi/linux_uapi.h has
// the kernel's macro names, which this header brings in), and the enqueue timeout.
#pragma once

#include <cstdint>

#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/linux_uapi.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::iio {

// struct iio_dmabuf: the argument of IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, with the kernel's field
// names.
struct iio_dmabuf {  // NOLINT(readability-identifier-naming): the kernel's name
  std::uint32_t fd;
  std::uint32_t flags;
  std::uint64_t bytes_used;  // NOLINT(readability-identifier-naming)
};
static_assert(sizeof(iio_dmabuf) == sizeof(uapi::IioDmabuf));

inline constexpr std::uint32_t kDmabufCyclic = uapi::kIioBufferDmabufCyclic;
inline constexpr std::uint32_t kDmabufSupportedFlags = uapi::kIioBufferDmabufSupportedFlags;
inline constexpr unsigned long kGetFdIoctl = uapi::kIioBufferGetFdIoctl;
inline constexpr unsigned long kDmabufAttachIoctl = uapi::kIioBufferDmabufAttachIoctl;
inline constexpr unsigned long kDmabufDetachIoctl = uapi::kIioBufferDmabufDetachIoctl;
inline constexpr unsigned long kDmabufEnqueueIoctl = uapi::kIioBufferDmabufEnqueueIoctl;

// The enqueue timeout for conflicting fences (DMABUF_ENQUEUE_TIMEOUT_MS).
inline constexpr unsigned kEnqueueTimeoutMs = 5000;

}  // namespace zbuf::iio
#pragma GCC visibility pop
