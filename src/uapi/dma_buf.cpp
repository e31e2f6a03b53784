// The dma-buf convenience calls: each fills the kernel's struct and makes the fd-level call, so
// it answers exactly as the dma-buf file does (dma_buf_file.cpp).
#include "zbuf/uapi/dma_buf.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>

#include <array>
#include <climits>

namespace zbuf::uapi {
namespace {

Result<void> call(int fd, unsigned long request, void* arg) {
  ZBUF_TRY(Context::current().ioctl(fd, request, arg));
  return {};
}

// The buffer behind `fd`: EBADF if `fd` is not open, else `notBuffer` if it is no buffer.
Result<BufferPtr> bufferFor(int fd, const char* op, int notBuffer) {
  auto buffer = Context::current().bufferFromFd(fd);
  if (buffer.ok() || buffer.code() == EBADF) {
    return buffer;
  }
  return Error(notBuffer, op, fmt::format("fd {} is not a dma-buf", fd));
}

}  // namespace

Result<void> dmaBufSync(int fd, const DmaBufSync* sync) {
  // ioctl(2) takes a void* for every request; this one only reads it.
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): see above
  return call(fd, kDmaBufIoctlSync, const_cast<DmaBufSync*>(sync));
}

Result<void> dmaBufSetName(int fd, const char* name) {
  // ioctl(2) takes a void* for every request; this one only reads it.
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): see above
  return call(fd, kDmaBufSetName, const_cast<char*>(name));
}

Result<void> dmaBufExportSyncFile(int fd, DmaBufExportSyncFile* data) {
  return call(fd, kDmaBufIoctlExportSyncFile, data);
}

Result<void> dmaBufImportSyncFile(int fd, const DmaBufImportSyncFile* data) {
  // ioctl(2) takes a void* for every request; this one only reads it.
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): see above
  return call(fd, kDmaBufIoctlImportSyncFile, const_cast<DmaBufImportSyncFile*>(data));
}

Result<void> sync(int fd, std::uint64_t flags) {
  const DmaBufSync s{flags};
  return dmaBufSync(fd, &s);
}

Result<void> setName(int fd, std::string_view name) {
  const std::string copy(name);
  return dmaBufSetName(fd, copy.c_str());
}

Result<std::string> name(int fd) {
  ZBUF_ASSIGN_OR_RETURN(auto buffer, bufferFor(fd, "dma_buf name", ENOTTY));
  return buffer->name();
}

Result<UniqueFd> exportSyncFile(int fd, std::uint32_t flags) {
  DmaBufExportSyncFile data{flags, -1};
  ZBUF_TRY(dmaBufExportSyncFile(fd, &data));
  return UniqueFd::adopt(data.fd);
}

Result<void> importSyncFile(int fd, std::uint32_t flags, int syncFileFd) {
  const DmaBufImportSyncFile data{flags, syncFileFd};
  return dmaBufImportSyncFile(fd, &data);
}

Result<CpuAccess> syncScope(int fd, std::uint64_t rwFlags) {
  constexpr const char* kOp = "DMA_BUF_IOCTL_SYNC";
  ZBUF_ASSIGN_OR_RETURN(auto buffer, bufferFor(fd, kOp, ENOTTY));
  if ((rwFlags & kDmaBufSyncEnd) != 0 || (rwFlags & ~kDmaBufSyncRw) != 0 ||
      (rwFlags & kDmaBufSyncRw) == 0) {
    return Error(
        EINVAL, kOp,
        fmt::format("a scope begins with START and READ, WRITE or both, not {:#x}", rwFlags));
  }
  const DmaDirection dir = rwFlags == kDmaBufSyncRead    ? DmaDirection::FromDevice
                           : rwFlags == kDmaBufSyncWrite ? DmaDirection::ToDevice
                                                         : DmaDirection::Bidirectional;
  return CpuAccess::begin(std::move(buffer), dir);
}

Result<std::uint64_t> seek(int fd, std::int64_t offset, int whence) {
  ZBUF_TRY(bufferFor(fd, "dma_buf_llseek", EINVAL));
  ZBUF_ASSIGN_OR_RETURN(auto r, Context::current().lseek(fd, offset, whence));
  return static_cast<std::uint64_t>(r);
}

Result<std::uint64_t> size(int fd) {
  return seek(fd, 0, SEEK_END);
}

Result<short> pollBuffer(int fd, short events, std::chrono::milliseconds timeout) {
  ZBUF_TRY(bufferFor(fd, "dma_buf_poll", EINVAL));
  std::array<struct pollfd, 1> fds{{{fd, events, 0}}};
  const int ms =
      timeout.count() < 0 || timeout.count() > INT_MAX ? -1 : static_cast<int>(timeout.count());
  ZBUF_TRY(Context::current().poll(fds, ms));
  return fds[0].revents;
}

}  // namespace zbuf::uapi
