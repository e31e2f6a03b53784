// The IIO device and buffer files at the fd level, so kernel-style code runs unchanged apart
// from calling zbuf::iio::ioctl/read/write/close instead of the libc functions:
//
//   UniqueFd dev = iio::openDeviceFd(adc).value();       // open("/dev/iio:device0")
//   int fd = 0;                                           // buffer index in, fd out
//   iio::ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &fd);
//   int dmabuf = heapBuffer->fd().get();
//   iio::ioctl(fd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &dmabuf);
//   iio_dmabuf req{static_cast<__u32>(dmabuf), 0, size};
//   iio::ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req);
//   ... wait (poll / EXPORT_SYNC_FILE), DMA_BUF_IOCTL_SYNC, read the samples ...
//   iio::close(fd);                                       // detaches everything
//
// Each file is a real fd (an empty memfd named "iio:deviceN" / "iio:buffer", close-on-exec)
// registered by its inode, so a dup()ed fd reaches the same file until one of them is closed
// through close() below (the kernel keeps the file until the last one; zbuf cannot see
// close(2), so the files are released by zbuf::iio::close). O_NONBLOCK set with fcntl
// on the buffer fd is honoured per call, as the kernel reads f_flags. DMABUF fds are resolved
// with Buffer::fromFd (the kernel's dma_buf_get: EBADF for a bad fd, EINVAL for a file that is
// not a buffer).
//
// Errors (Result's errno): an fd that is not an IIO file: EBADF if it is not open, ENOTTY
// otherwise. On a device fd: GET_FD as IioDevice::openBuffer (ENODEV, EBUSY); any other
// request ENODEV (the kernel's IIO_IOCTL_UNHANDLED). On a buffer fd: ATTACH, DETACH, ENQUEUE
// as IioBufferFile; any other request EINVAL (as the kernel); `arg` null: EFAULT.
//
// Thread-safety: thread-safe (one registry mutex, never held across a device call).
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/devices/iio/iio_buffer_file.h"
#include "zbuf/devices/iio/iio_device.h"
#include "zbuf/devices/iio/iio_uapi.h"

namespace zbuf::iio {

// The device's character device, opened.
[[nodiscard]] Result<UniqueFd> openDeviceFd(std::shared_ptr<IioDevice> device);
// ioctl(2) on an IIO device or buffer fd. Returns 0 (GET_FD writes the new fd into *arg).
[[nodiscard]] Result<long> ioctl(int fd, unsigned long request, void* arg);
// read(2) / write(2) on a buffer fd (EINVAL on a device fd).
[[nodiscard]] Result<std::size_t> read(int fd, std::span<std::byte> out);
[[nodiscard]] Result<std::size_t> write(int fd, std::span<const std::byte> in);
// close(2): closes `fd` and releases its file (a buffer file detaches every DMABUF); other
// fds dup()ed from it stop being IIO files. EBADF for an fd that is not open.
[[nodiscard]] Result<void> close(int fd);
// The buffer file behind a buffer fd (for C++ code that got the fd from kernel-style code).
[[nodiscard]] Result<std::shared_ptr<IioBufferFile>> bufferFileFromFd(int fd);

}  // namespace zbuf::iio
