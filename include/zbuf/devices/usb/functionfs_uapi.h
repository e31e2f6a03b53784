// The kernel's FunctionFS DMABUF ioctls (include/uapi/linux/usb/functionfs.h), dispatched to an
// EndpointFile, so that code written against the real uAPI runs unchanged on the emulation.
//
//   FUNCTIONFS_DMABUF_ATTACH   _IOW('g', 131, int)                                = 0x40046783
//   FUNCTIONFS_DMABUF_DETACH   _IOW('g', 132, int)                                = 0x40046784
//   FUNCTIONFS_DMABUF_TRANSFER _IOW('g', 133, struct usb_ffs_dmabuf_transfer_req) = 0x40106785
//
// Thread-safety: as the EndpointFile.
#pragma once

#include <cstdint>

#include "zbuf/base/result.h"
#include "zbuf/devices/usb/functionfs.h"
#include "zbuf/uapi/abi.h"

namespace zbuf::usb {

inline constexpr unsigned long kFunctionfsDmabufAttach = uapi::kFunctionfsDmabufAttach;
inline constexpr unsigned long kFunctionfsDmabufDetach = uapi::kFunctionfsDmabufDetach;
inline constexpr unsigned long kFunctionfsDmabufTransfer = uapi::kFunctionfsDmabufTransfer;

// ffs_epfile_ioctl for the DMABUF requests: `arg` points at an int fd (ATTACH, DETACH) or at a
// DmabufTransferReq (TRANSFER). Returns 0 on success. EFAULT for a null `arg`; ENOTTY on ep0
// and for any other request (the emulation has none of the older endpoint ioctls).
[[nodiscard]] Result<long> endpointIoctl(EndpointFile& endpoint, unsigned long request, void* arg);

}  // namespace zbuf::usb

// The kernel's macro names come from the one ABI header.
#include "zbuf/uapi/linux_uapi.h"
