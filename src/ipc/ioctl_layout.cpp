// The table of requests whose arguments carry fds or pointers, and the _IOC fallback.
#include "zbuf/ipc/ioctl_layout.h"

#include <sys/ioctl.h>

#include <cstddef>

#include "zbuf/uapi/abi.h"

namespace zbuf::ipc {
namespace {

using namespace zbuf::uapi;  // NOLINT(google-build-using-namespace): the ABI names, one file

constexpr IoctlLayout structOf(std::uint32_t size, bool in, bool out) noexcept {
  IoctlLayout l;
  l.kind = ArgKind::Struct;
  l.size = size;
  l.copyIn = in;
  l.copyOut = out;
  return l;
}

constexpr IoctlLayout withFd(IoctlLayout l, std::size_t offset, FdDirection d) noexcept {
  l.fds.at(l.fdCount++) = FdField{static_cast<std::uint16_t>(offset), d};
  return l;
}

// The _IOC fields (asm-generic/ioctl.h): nr 8 bits, type 8, size 14, dir 2.
constexpr unsigned kIocSizeShift = 16;
constexpr unsigned kIocSizeMask = (1U << 14) - 1;
constexpr unsigned kIocDirShift = 30;

}  // namespace

IoctlLayout layoutOf(unsigned long request) noexcept {
  const auto cmd = static_cast<unsigned>(request);
  switch (cmd) {
    case kDmaHeapIoctlAlloc:
      return withFd(structOf(sizeof(DmaHeapAllocationData), true, true),
                    offsetof(DmaHeapAllocationData, fd), FdDirection::Out);
    case kUdmabufCreate: {
      IoctlLayout l = withFd(structOf(sizeof(UdmabufCreate), true, false),
                             offsetof(UdmabufCreate, memfd), FdDirection::In);
      l.returnsFd = true;
      return l;
    }
    case kUdmabufCreateList: {
      IoctlLayout l = structOf(sizeof(UdmabufCreateList), true, false);
      l.kind = ArgKind::UdmabufList;
      l.returnsFd = true;
      return l;
    }
    case kDmaBufIoctlExportSyncFile:
      return withFd(structOf(sizeof(DmaBufExportSyncFile), true, true),
                    offsetof(DmaBufExportSyncFile, fd), FdDirection::Out);
    case kDmaBufIoctlImportSyncFile:
      return withFd(structOf(sizeof(DmaBufImportSyncFile), true, false),
                    offsetof(DmaBufImportSyncFile, fd), FdDirection::In);
    case kDmaBufSetNameA:  // the u32 and u64 spellings; kDmaBufSetName is one of them
    case kDmaBufSetNameB: {
      IoctlLayout l;
      l.kind = ArgKind::String;
      l.copyIn = true;
      return l;
    }
    case kSyncIocMerge:
      return withFd(withFd(structOf(sizeof(SyncMergeData), true, true),
                           offsetof(SyncMergeData, fd2), FdDirection::In),
                    offsetof(SyncMergeData, fence), FdDirection::Out);
    case kSyncIocFileInfo: {
      IoctlLayout l = structOf(sizeof(SyncFileInfo), true, true);
      l.kind = ArgKind::SyncFileInfo;
      return l;
    }
    case kSwSyncIocCreateFence:  // out: the new sync file in `fence`
      return withFd(structOf(sizeof(SwSyncCreateFenceData), true, true),
                    offsetof(SwSyncCreateFenceData, fence), FdDirection::Out);
    case kSwSyncGetDeadline:  // in: the sync file in `fence_fd`; out: the deadline
      return withFd(structOf(sizeof(SwSyncGetDeadline), true, true),
                    offsetof(SwSyncGetDeadline, fenceFd), FdDirection::In);
    case kIioBufferGetFdIoctl:  // in: the buffer's index; out: its fd, in the same int
      return withFd(structOf(sizeof(int), true, true), 0, FdDirection::Out);
    case kIioBufferDmabufAttachIoctl:
    case kIioBufferDmabufDetachIoctl:
    case kFunctionfsDmabufAttach:
    case kFunctionfsDmabufDetach:
      return withFd(structOf(sizeof(int), true, false), 0, FdDirection::In);
    case kIioBufferDmabufEnqueueIoctl:
      return withFd(structOf(sizeof(IioDmabuf), true, false), offsetof(IioDmabuf, fd),
                    FdDirection::In);
    case kFunctionfsDmabufTransfer:
      return withFd(structOf(sizeof(UsbFfsDmabufTransferReq), true, false),
                    offsetof(UsbFfsDmabufTransferReq, fd), FdDirection::In);
    case kVirtioVideoAlloc:
      return withFd(structOf(sizeof(VirtioVideoAlloc), true, true), offsetof(VirtioVideoAlloc, fd),
                    FdDirection::Out);
    case kVirtioVideoGetUuid:
      return withFd(structOf(sizeof(VirtioVideoUuid), true, true), offsetof(VirtioVideoUuid, fd),
                    FdDirection::In);
    case kVirtioVideoDecode:
    case kVirtioVideoDisplay:
      return withFd(structOf(sizeof(VirtioVideoFrame), true, false), offsetof(VirtioVideoFrame, fd),
                    FdDirection::In);
    case kVirtioVideoImport:
      return withFd(structOf(sizeof(VirtioVideoImport), true, true),
                    offsetof(VirtioVideoImport, fd), FdDirection::Out);
    case kVirtioVideoDetach:
      return withFd(structOf(sizeof(int), true, false), 0, FdDirection::In);
    case FIONBIO:
    case FIOASYNC:
    case FIOCLEX:
    case FIONCLEX: {
      IoctlLayout l;
      l.kind = ArgKind::Local;
      return l;
    }
    default:
      break;
  }
  const unsigned size = (cmd >> kIocSizeShift) & kIocSizeMask;
  const unsigned dir = cmd >> kIocDirShift;
  if (size == 0 || dir == 0) {
    return IoctlLayout{};  // by value (_IO, or a legacy number without an encoding)
  }
  return structOf(size, (dir & kIocWrite) != 0, (dir & kIocRead) != 0);
}

}  // namespace zbuf::ipc
