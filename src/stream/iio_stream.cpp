// IioStream: an IIO buffer driven as libiio drives one, with paths and fd-level calls only.
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>

#include <string>

#include "stream/stages.h"
#include "zbuf/devices/iio/iio_uapi.h"

namespace zbuf::pipeline {
namespace {

Result<void> writeAttr(uapi::FdCalls& ctx, const std::string& path, const std::string& value) {
  ZBUF_ASSIGN_OR_RETURN(auto fd, ctx.open(path, O_WRONLY));
  auto n = ctx.write(fd.get(), std::as_bytes(std::span(value)));
  (void)ctx.close(std::move(fd));
  ZBUF_TRY(std::move(n));
  return {};
}

}  // namespace

IioStream::IioStream(uapi::FdCalls& ctx, std::string sysfsDir, bool input, UniqueFd dev,
                     UniqueFd buffer)
    : ctx_(ctx),
      sysfs_(std::move(sysfsDir)),
      input_(input),
      dev_(std::move(dev)),
      buffer_(std::move(buffer)) {}

IioStream::~IioStream() {
  (void)enable(false);
  (void)ctx_.close(std::move(buffer_));  // detaches every DMABUF
  (void)ctx_.close(std::move(dev_));
}

Result<std::unique_ptr<IioStream>> IioStream::open(uapi::FdCalls& ctx, const char* devPath,
                                                   const char* sysfsDir, std::uint64_t lengthFrames,
                                                   bool input) {
  ZBUF_ASSIGN_OR_RETURN(auto dev, ctx.open(devPath, O_RDWR));
  const std::string sysfs(sysfsDir);
  ZBUF_TRY(writeAttr(ctx, sysfs + "/buffer0/enable", "0"));
  ZBUF_TRY(writeAttr(ctx, sysfs + "/buffer0/length", fmt::format("{}", lengthFrames)));
  int fd = 0;  // buffer index in, fd out
  ZBUF_TRY(ioctlVoid(ctx, dev.get(), IIO_BUFFER_GET_FD_IOCTL, &fd));
  return std::make_unique<IioStream>(ctx, sysfs, input, std::move(dev), UniqueFd::adopt(fd));
}

Result<void> IioStream::enable(bool on) {
  return writeAttr(ctx_, sysfs_ + "/buffer0/enable", on ? "1" : "0");
}

Result<void> IioStream::attach(int bufferFd) {
  return ioctlVoid(ctx_, buffer_.get(), IIO_BUFFER_DMABUF_ATTACH_IOCTL, &bufferFd);
}

Result<void> IioStream::detach(int bufferFd) {
  return ioctlVoid(ctx_, buffer_.get(), IIO_BUFFER_DMABUF_DETACH_IOCTL, &bufferFd);
}

Result<void> IioStream::enqueue(int bufferFd, std::uint64_t bytes) {
  iio::iio_dmabuf req{};
  req.fd = static_cast<std::uint32_t>(bufferFd);
  req.flags = 0;
  req.bytes_used = bytes;
  return ioctlVoid(ctx_, buffer_.get(), IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req);
}

// An ADC writes the buffer (a WRITE fence): done once no writer is pending. A DAC reads it.
short IioStream::doneEvents() const noexcept {
  return input_ ? POLLIN : POLLOUT;
}

Result<std::size_t> IioStream::read(std::span<std::byte> out) {
  return ctx_.read(buffer_.get(), out);
}

Result<std::size_t> IioStream::write(std::span<const std::byte> in) {
  return ctx_.write(buffer_.get(), in);
}

const char* IioStream::fenceDriver() const noexcept {
  return "iio";
}

}  // namespace zbuf::pipeline
