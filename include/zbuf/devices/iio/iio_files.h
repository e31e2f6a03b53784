// The IIO device as files of a context, with the kernel's names, so an application is written
// with paths and fd-level calls alone (docs/iio.md):
//
//   /dev/iio:deviceN                                  the character device (one open at a time:
//                                                     EBUSY, as iio_chrdev_open); ioctl
//                                                     IIO_BUFFER_GET_FD_IOCTL (index in, fd out);
//                                                     read/write/poll: buffer 0 (the legacy
//                                                     interface); other ioctls ENODEV
//   anon_inode:iio:buffer (GET_FD's fd)               read/write (fileio), poll, and
//                                                     IIO_BUFFER_DMABUF_ATTACH/DETACH/ENQUEUE;
//                                                     other ioctls EINVAL; closing it detaches
//                                                     every DMABUF
//   /sys/bus/iio/devices/iio:deviceN/name             read-only
//     sampling_frequency                              frames per second (0: unlimited)
//     bufferK/{enable,length,watermark}               (buffer/ is buffer0, the legacy names)
//     scan_elements/{in,out}_voltageC_{en,index,type} and the same under bufferK/
//
// The kernel's order of checks is kept: ATTACH on a buffer without DMABUF support is EPERM
// before the argument is read; arguments are copied in and out (any alignment; null EFAULT);
// O_NONBLOCK is read from the caller's open file description at every call.
// Channel masks: the emulated hardware streams every channel, so writing 0 to a _en attribute
// is EINVAL (docs/iio.md lists this as a difference).
//
// Thread-safety: thread-safe.
#pragma once

#include <memory>

#include "zbuf/base/result.h"
#include "zbuf/devices/iio/iio_device.h"
#include "zbuf/uapi/context.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::iio {

// Registers iio:device<index>'s character device and sysfs attributes in `context`. EEXIST if
// that index is taken.
[[nodiscard]] Result<void> addToContext(uapi::Context& context, std::shared_ptr<IioDevice> device,
                                        unsigned index);

// The operations of GET_FD's buffer file (for drivers that recognise one).
[[nodiscard]] const uapi::FileOperations& bufferFileOperations() noexcept;

}  // namespace zbuf::iio
#pragma GCC visibility pop
