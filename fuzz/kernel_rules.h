// The kernel's answers, call by call and kind by kind, as the fuzz targets check them
// (/work/shared/reference/linux-dmabuf-semantics.md, docs/uapi.md, docs/iio.md, docs/usb.md).
// EBADF for a closed fd and EFAULT for a null argument are added by the engine.
#pragma once

#include <cerrno>
#include <optional>
#include <vector>

#include "fuzz_support.h"
#include "zbuf/uapi/abi.h"

namespace zbuf::fuzz {

// Every call that makes an fd may also fail as fd allocation fails (EMFILE, ENFILE, ENOMEM) or,
// in zbuf, past the inotify watch limit (ENOSPC, docs/uapi.md).
inline void addFdErrors(std::vector<int>& v) {
  v.insert(v.end(), {EMFILE, ENFILE, ENOMEM, ENOSPC});
}

inline std::vector<int> kernelIoctlErrnos(const IoctlCall& call) {
  using namespace zbuf::uapi;
  std::vector<int> v;
  const unsigned cmd = call.cmd;
  switch (call.target.kind) {
    case Kind::DmaBuf:
      if (cmd == kDmaBufIoctlSync) {
        v = {EINVAL};
      } else if (cmd == kDmaBufSetNameA || cmd == kDmaBufSetNameB) {
        v = {EINVAL};
      } else if (cmd == kDmaBufIoctlExportSyncFile) {
        v = {EINVAL};
        addFdErrors(v);
      } else if (cmd == kDmaBufIoctlImportSyncFile) {
        v = {EINVAL, ENOMEM};
      } else {
        v = {ENOTTY};
      }
      break;
    case Kind::SyncFile:
      if (cmd == kSyncIocMerge) {
        v = {EINVAL, ENOENT};
        addFdErrors(v);
      } else if (cmd == kSyncIocFileInfo || cmd == kSyncIocSetDeadline) {
        v = {EINVAL};
      } else {
        v = {ENOTTY};
      }
      break;
    case Kind::Heap:
      // dma_heap_ioctl: nr 0 is ALLOC whatever the size; nr >= 1 is EINVAL.
      v = {EINVAL};
      if ((cmd & 0xff) == 0) {
        addFdErrors(v);
      }
      break;
    case Kind::Udmabuf:
      if (cmd == kUdmabufCreate || cmd == kUdmabufCreateList) {
        v = {EINVAL, EBADFD, EFAULT};
        addFdErrors(v);
      } else {
        v = {ENOTTY};
      }
      break;
    case Kind::IioDevice:
      v = {ENODEV};  // iio_ioctl: no handler took it
      if (cmd == kIioBufferGetFdIoctl) {
        v = {ENODEV, EBUSY};
        addFdErrors(v);
      }
      break;
    case Kind::IioBuffer:
      if (cmd == kIioBufferDmabufAttachIoctl) {
        v = {EPERM, EBADF, EINVAL, EBUSY, ENOMEM};
      } else if (cmd == kIioBufferDmabufDetachIoctl) {
        v = {EPERM, EBADF, EINVAL};
      } else if (cmd == kIioBufferDmabufEnqueueIoctl) {
        v = {EINVAL, EPERM, EBADF, EBUSY, ENOMEM};
      } else {
        v = {EINVAL};  // iio_buffer_chrdev_ioctl
      }
      break;
    case Kind::Ep0:
      // ffs_ep0_ioctl: INTERFACE_REVMAP (ENODEV without a function, EDOM for no such
      // interface), anything else ENOTTY.
      v = {ENOTTY, ENODEV, EDOM};
      break;
    case Kind::Endpoint:
      // Every request may wait for the endpoint first: EAGAIN non-blocking, ENODEV unbound.
      v = {EAGAIN, ENODEV};
      if (cmd == kFunctionfsDmabufAttach) {
        v.insert(v.end(), {EPERM, EBADF, EINVAL, EBUSY, ENOMEM});
      } else if (cmd == kFunctionfsDmabufDetach) {
        v.insert(v.end(), {EPERM, EBADF, EINVAL});
      } else if (cmd == kFunctionfsDmabufTransfer) {
        v.insert(v.end(), {EINVAL, EPERM, EBADF, EBUSY, ESHUTDOWN, ENOMEM});
      } else if (cmd == kFunctionfsFifoStatus) {
        v.push_back(EOPNOTSUPP);
      } else {
        v.push_back(ENOTTY);
      }
      break;
    case Kind::SysfsAttr:
      v = {ENOTTY};
      break;
    case Kind::VirtioVideo:
      // Both devices (docs/buffers.md, "Virtio buffers"); each other's calls are ENOTTY.
      v = {ENOTTY, EFAULT};
      if (cmd == kVirtioVideoAlloc) {
        v.insert(v.end(), {EINVAL, ENOMEM});
        addFdErrors(v);
      } else if (cmd == kVirtioVideoGetUuid) {
        v.insert(v.end(), {EINVAL, EBADF, EAGAIN, EEXIST, ESHUTDOWN});
      } else if (cmd == kVirtioVideoDecode || cmd == kVirtioVideoDisplay) {
        v.insert(v.end(), {EINVAL, EBADF, EBUSY, EPERM});
      } else if (cmd == kVirtioVideoImport) {
        v.insert(v.end(), {EINVAL, ENOENT, EACCES, EAGAIN, EBUSY, ENOMEM});
        addFdErrors(v);
      } else if (cmd == kVirtioVideoDetach) {
        v.insert(v.end(), {EPERM, EBADF, EINVAL});
      }
      break;
    case Kind::Foreign:
    case Kind::Closed:
      break;
  }
  return v;
}

// The fd a successful ioctl handed back, where the kernel's call returns one.
inline std::optional<int> kernelReturnedFd(const IoctlCall& call, long result) {
  using namespace zbuf::uapi;
  const auto field = [&](std::size_t offset) -> std::optional<int> {
    if (call.arg == nullptr) {
      return std::nullopt;
    }
    return readI32(call.arg + offset);
  };
  switch (call.target.kind) {
    case Kind::DmaBuf:
      return call.cmd == kDmaBufIoctlExportSyncFile ? field(4) : std::nullopt;
    case Kind::SyncFile:
      return call.cmd == kSyncIocMerge ? field(36) : std::nullopt;
    case Kind::Heap:
      // ALLOC copies the fd out only when the request reads back at least that far (the
      // heap target always asks for it so).
      return (call.cmd & 0xff) == 0 && ((call.cmd >> 30) & kIocRead) != 0 &&
                     ((call.cmd >> 16) & 0x3fff) >= 12
                 ? field(8)
                 : std::nullopt;
    case Kind::Udmabuf:
      return static_cast<int>(result);
    case Kind::IioDevice:
      return call.cmd == kIioBufferGetFdIoctl ? field(0) : std::nullopt;
    case Kind::VirtioVideo:
      if (call.cmd == kVirtioVideoAlloc) {
        return field(offsetof(VirtioVideoAlloc, fd));
      }
      return call.cmd == kVirtioVideoImport ? field(offsetof(VirtioVideoImport, fd)) : std::nullopt;
    default:
      return std::nullopt;
  }
}

inline std::vector<int> kernelRwErrnos(Kind kind, bool write) {
  // EBADF: the description's access mode does not allow the call.
  switch (kind) {
    case Kind::IioDevice:
    case Kind::IioBuffer:
      return {EBADF, EAGAIN, EINVAL, EBUSY, ENODEV, EPERM};
    case Kind::SysfsAttr:
      return write ? std::vector<int>{EBADF, EINVAL, EBUSY, EIO, EACCES, EPERM, ERANGE, ENOMEM}
                   : std::vector<int>{EBADF, EIO};
    case Kind::Ep0:
      // ffs_ep0_read/ffs_ep0_write: state (EBADFD), no request (ESRCH/EIDRM/EL2HLT), sizes;
      // __ffs_data_got_descs: unknown flags are ENOSYS.
      return {EBADF, EINVAL, EAGAIN, EBADFD, ESRCH, EIDRM, EL2HLT, ENODEV, EBUSY, ENOMEM, ENOSYS};
    case Kind::Endpoint:
      return {EBADF, EAGAIN, ENODEV, EBADMSG, EINVAL, ESHUTDOWN, EBUSY, EOVERFLOW};
    default:
      return {EBADF, EINVAL};  // no read or write operation
  }
}

}  // namespace zbuf::fuzz
