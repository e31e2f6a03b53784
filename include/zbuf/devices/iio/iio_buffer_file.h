// IioBufferFile: an open IIO buffer (the anonymous "iio:buffer" file that
// IIO_BUFFER_GET_FD_IOCTL returns), the object applications and other drivers use.
//
// It carries the file's O_NONBLOCK flag (off by default, as GET_FD gives O_RDWR) and forwards
// read(), write(), ATTACH, DETACH and ENQUEUE to its IioBuffer with it. Destroying it is
// closing the file: every DMABUF attached through it is detached (attachments with transfers
// in flight live until those complete) and the buffer can be opened again.
//
// C++ users (a pipeline, the USB bridge) call the typed functions directly; kernel-style code
// goes through the buffer file (iio_files.h), which resolves fds and calls the same functions.
//
// Thread-safety: thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "zbuf/base/result.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/fence.h"
#include "zbuf/devices/iio/iio_buffer.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::iio {

class IioDevice;

class IioBufferFile {
 public:
  struct Private;
  IioBufferFile(Private key, std::shared_ptr<IioDevice> device, IioBuffer& buffer);
  ~IioBufferFile();
  IioBufferFile(const IioBufferFile&) = delete;
  IioBufferFile& operator=(const IioBufferFile&) = delete;

  [[nodiscard]] IioBuffer& buffer() const noexcept { return buffer_; }
  [[nodiscard]] const std::shared_ptr<IioDevice>& device() const noexcept { return device_; }
  void setNonBlocking(bool nonblock) noexcept { nonblock_.store(nonblock); }
  [[nodiscard]] bool nonBlocking() const noexcept { return nonblock_.load(); }

  [[nodiscard]] Result<std::size_t> read(std::span<std::byte> out);
  [[nodiscard]] Result<std::size_t> write(std::span<const std::byte> in);
  // IIO_BUFFER_DMABUF_ATTACH_IOCTL / DETACH / ENQUEUE (see IioBuffer for the errors).
  [[nodiscard]] Result<void> attach(const BufferPtr& buffer);
  [[nodiscard]] Result<void> detach(const Buffer& buffer);
  // Returns the enqueue's fence, which is also in the buffer's resv (WRITE usage on input,
  // READ on output).
  [[nodiscard]] Result<FencePtr> enqueue(const Buffer& buffer, std::uint64_t bytesUsed,
                                         std::uint32_t flags = 0);

 private:
  std::shared_ptr<IioDevice> device_;
  IioBuffer& buffer_;
  std::atomic<bool> nonblock_{false};
};

}  // namespace zbuf::iio
#pragma GCC visibility pop
