// UsbEndpoint: a FunctionFS data endpoint driven as a FunctionFS program drives one, with paths
// and fd-level calls only.
#include <fcntl.h>
#include <poll.h>

#include "stream/stages.h"
#include "zbuf/devices/usb/functionfs_uapi.h"

namespace zbuf::pipeline {
UsbEndpoint::UsbEndpoint(uapi::FdCalls& ctx, bool in, UniqueFd fd)
    : ctx_(ctx), in_(in), fd_(std::move(fd)) {}

UsbEndpoint::~UsbEndpoint() {
  (void)ctx_.close(std::move(fd_));  // closing an endpoint detaches every buffer
}

Result<std::unique_ptr<UsbEndpoint>> UsbEndpoint::open(uapi::FdCalls& ctx, const std::string& path,
                                                       bool in) {
  ZBUF_ASSIGN_OR_RETURN(auto fd, ctx.open(path, O_RDWR));
  return std::make_unique<UsbEndpoint>(ctx, in, std::move(fd));
}

Result<void> UsbEndpoint::attach(int bufferFd) {
  return ioctlVoid(ctx_, fd_.get(), FUNCTIONFS_DMABUF_ATTACH, &bufferFd);
}

Result<void> UsbEndpoint::detach(int bufferFd) {
  return ioctlVoid(ctx_, fd_.get(), FUNCTIONFS_DMABUF_DETACH, &bufferFd);
}

Result<void> UsbEndpoint::enqueue(int bufferFd, std::uint64_t bytes) {
  usb::DmabufTransferReq req{};
  req.fd = bufferFd;
  req.flags = 0;
  req.length = bytes;
  return ioctlVoid(ctx_, fd_.get(), FUNCTIONFS_DMABUF_TRANSFER, &req);
}

// An IN transfer reads the buffer (a READ fence): done once nothing is pending. An OUT transfer
// writes it.
short UsbEndpoint::doneEvents() const noexcept {
  return in_ ? POLLOUT : POLLIN;
}

Result<std::size_t> UsbEndpoint::read(std::span<std::byte> out) {
  return ctx_.read(fd_.get(), out);
}

Result<std::size_t> UsbEndpoint::write(std::span<const std::byte> in) {
  return ctx_.write(fd_.get(), in);
}

const char* UsbEndpoint::fenceDriver() const noexcept {
  return "functionfs";
}

}  // namespace zbuf::pipeline
