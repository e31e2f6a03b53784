// The kernel's FunctionFS uAPI (include/uapi/linux/usb/functionfs.h and the parts of
// linux/usb/ch9.h it uses) in the usb namespace: the definitions live in the one ABI header
// (uapi/abi.h, checked against the system's headers in uapi/linux_uapi.h and
// functionfs_files.cpp); this header names them for the FunctionFS code and includes the
// kernel's macro names (linux_uapi.h).
//
//   FUNCTIONFS_FIFO_STATUS      _IO('g', 1)                                         = 0x6701
//   FUNCTIONFS_FIFO_FLUSH       _IO('g', 2)                                         = 0x6702
//   FUNCTIONFS_CLEAR_HALT       _IO('g', 3)                                         = 0x6703
//   FUNCTIONFS_INTERFACE_REVMAP _IO('g', 128)                                       = 0x6780
//   FUNCTIONFS_ENDPOINT_REVMAP  _IO('g', 129)                                       = 0x6781
//   FUNCTIONFS_ENDPOINT_DESC    _IOR('g', 130, struct usb_endpoint_descriptor)      = 0x80096782
//   FUNCTIONFS_DMABUF_ATTACH    _IOW('g', 131, int)                                 = 0x40046783
//   FUNCTIONFS_DMABUF_DETACH    _IOW('g', 132, int)                                 = 0x40046784
//   FUNCTIONFS_DMABUF_TRANSFER  _IOW('g', 133, struct usb_ffs_dmabuf_transfer_req)  = 0x40106785
#pragma once

#include <cstdint>

#include "zbuf/uapi/abi.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::usb {

using DmabufTransferReq = uapi::UsbFfsDmabufTransferReq;
using uapi::FfsEventType;
using uapi::UsbCtrlRequest;
using uapi::UsbEndpointDescriptor;
using uapi::UsbFunctionfsEvent;
inline constexpr std::uint32_t kDmabufTransferMask = uapi::kUsbFfsDmabufTransferMask;

using uapi::kFfsAllCtrlRecip;
using uapi::kFfsConfig0Setup;
using uapi::kFfsDescriptorsMagic;
using uapi::kFfsDescriptorsMagicV2;
using uapi::kFfsEventfd;
using uapi::kFfsHasFsDesc;
using uapi::kFfsHasHsDesc;
using uapi::kFfsHasMsOsDesc;
using uapi::kFfsHasSsDesc;
using uapi::kFfsKnownFlags;
using uapi::kFfsStringsMagic;
using uapi::kFfsVirtualAddr;

using uapi::kUsbDtClassHid;
using uapi::kUsbDtConfig;
using uapi::kUsbDtDevice;
using uapi::kUsbDtDeviceQualifier;
using uapi::kUsbDtEndpoint;
using uapi::kUsbDtInterface;
using uapi::kUsbDtInterfaceAssociation;
using uapi::kUsbDtOtg;
using uapi::kUsbDtSsEndpointComp;
using uapi::kUsbDtString;
using uapi::kUsbEndpointDirIn;
using uapi::kUsbEndpointNumberMask;
using uapi::kUsbEndpointXferBulk;

using uapi::kFunctionfsClearHalt;
using uapi::kFunctionfsDmabufAttach;
using uapi::kFunctionfsDmabufDetach;
using uapi::kFunctionfsDmabufTransfer;
using uapi::kFunctionfsEndpointDesc;
using uapi::kFunctionfsEndpointRevmap;
using uapi::kFunctionfsFifoFlush;
using uapi::kFunctionfsFifoStatus;
using uapi::kFunctionfsInterfaceRevmap;

}  // namespace zbuf::usb
#pragma GCC visibility pop

// The kernel's macro names come from the one ABI header.
#include "zbuf/uapi/linux_uapi.h"
