// The kernel's FunctionFS uAPI (include/uapi/linux/usb/functionfs.h and the parts of
// linux/usb/ch9.h it uses): what is written to ep0 (the descriptors and strings blobs), what is
// read from it (struct usb_functionfs_event), and the endpoint ioctls, with the kernel's values.
// They are checked against the system's <linux/usb/functionfs.h> where it has them
// (functionfs_files.cpp); Debian's headers predate the DMABUF ioctls, so those are checked
// against the reference (section 9) and defined here under the kernel's macro names too. Code
// written against the kernel's header can include it alongside this one: the enum names
// (FUNCTIONFS_DESCRIPTORS_MAGIC_V2, FUNCTIONFS_BIND, ...) and structs come from there, and the
// values are the same.
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

namespace zbuf::usb {

// --- ep0: the blobs written to it -------------------------------------------------------------
inline constexpr std::uint32_t kFfsDescriptorsMagic = 1;    // FUNCTIONFS_DESCRIPTORS_MAGIC (legacy)
inline constexpr std::uint32_t kFfsStringsMagic = 2;        // FUNCTIONFS_STRINGS_MAGIC
inline constexpr std::uint32_t kFfsDescriptorsMagicV2 = 3;  // FUNCTIONFS_DESCRIPTORS_MAGIC_V2

// enum functionfs_flags (the V2 header's flags word).
inline constexpr std::uint32_t kFfsHasFsDesc = 1;
inline constexpr std::uint32_t kFfsHasHsDesc = 2;
inline constexpr std::uint32_t kFfsHasSsDesc = 4;
inline constexpr std::uint32_t kFfsHasMsOsDesc = 8;
inline constexpr std::uint32_t kFfsVirtualAddr = 16;
inline constexpr std::uint32_t kFfsEventfd = 32;
inline constexpr std::uint32_t kFfsAllCtrlRecip = 64;
inline constexpr std::uint32_t kFfsConfig0Setup = 128;
inline constexpr std::uint32_t kFfsKnownFlags = 0xff;

// USB descriptor types and sizes the parser knows (linux/usb/ch9.h).
inline constexpr std::uint8_t kUsbDtDevice = 1;
inline constexpr std::uint8_t kUsbDtConfig = 2;
inline constexpr std::uint8_t kUsbDtString = 3;
inline constexpr std::uint8_t kUsbDtInterface = 4;
inline constexpr std::uint8_t kUsbDtEndpoint = 5;
inline constexpr std::uint8_t kUsbDtDeviceQualifier = 6;
inline constexpr std::uint8_t kUsbDtOtg = 9;
inline constexpr std::uint8_t kUsbDtInterfaceAssociation = 11;
inline constexpr std::uint8_t kUsbDtClassHid = 0x21;  // USB_TYPE_CLASS | 0x01 (HID or CCID)
inline constexpr std::uint8_t kUsbDtSsEndpointComp = 0x30;
inline constexpr std::uint8_t kUsbEndpointDirIn = 0x80;  // USB_DIR_IN / USB_ENDPOINT_DIR_MASK
inline constexpr std::uint8_t kUsbEndpointNumberMask = 0x0f;
inline constexpr std::uint8_t kUsbEndpointXferBulk = 2;

// --- ep0: what is read from it ------------------------------------------------------------------
// enum usb_functionfs_event_type.
enum class FfsEventType : std::uint8_t {
  Bind = 0,
  Unbind = 1,
  Enable = 2,
  Disable = 3,
  Setup = 4,
  Suspend = 5,
  Resume = 6,
};

// struct usb_ctrlrequest (little-endian fields).
struct UsbCtrlRequest {
  std::uint8_t bRequestType;  // NOLINT(readability-identifier-naming): the kernel's names
  std::uint8_t bRequest;      // NOLINT(readability-identifier-naming)
  std::uint16_t wValue;       // NOLINT(readability-identifier-naming)
  std::uint16_t wIndex;       // NOLINT(readability-identifier-naming)
  std::uint16_t wLength;      // NOLINT(readability-identifier-naming)
} __attribute__((packed));
static_assert(sizeof(UsbCtrlRequest) == 8);

// struct usb_functionfs_event.
struct UsbFunctionfsEvent {
  UsbCtrlRequest setup;  // u.setup: SETUP only, else zero
  std::uint8_t type;     // FfsEventType
  std::uint8_t pad[3];
} __attribute__((packed));
static_assert(sizeof(UsbFunctionfsEvent) == 12);

// struct usb_endpoint_descriptor (with the two audio bytes; FUNCTIONFS_ENDPOINT_DESC's size).
struct UsbEndpointDescriptor {
  std::uint8_t bLength;           // NOLINT(readability-identifier-naming)
  std::uint8_t bDescriptorType;   // NOLINT(readability-identifier-naming)
  std::uint8_t bEndpointAddress;  // NOLINT(readability-identifier-naming)
  std::uint8_t bmAttributes;      // NOLINT(readability-identifier-naming)
  std::uint16_t wMaxPacketSize;   // NOLINT(readability-identifier-naming)
  std::uint8_t bInterval;         // NOLINT(readability-identifier-naming)
  std::uint8_t bRefresh;          // NOLINT(readability-identifier-naming)
  std::uint8_t bSynchAddress;     // NOLINT(readability-identifier-naming)
} __attribute__((packed));
static_assert(sizeof(UsbEndpointDescriptor) == 9);

// FUNCTIONFS_DMABUF_TRANSFER's argument (struct usb_ffs_dmabuf_transfer_req).
struct DmabufTransferReq {
  int fd = -1;
  std::uint32_t flags = 0;
  std::uint64_t length = 0;
} __attribute__((packed));
static_assert(sizeof(DmabufTransferReq) == 16);

inline constexpr std::uint32_t kDmabufTransferMask = 0;  // USB_FFS_DMABUF_TRANSFER_MASK

// --- ioctls
// ---------------------------------------------------------------------------------------
inline constexpr unsigned long kFunctionfsFifoStatus = 0x6701UL;
inline constexpr unsigned long kFunctionfsFifoFlush = 0x6702UL;
inline constexpr unsigned long kFunctionfsClearHalt = 0x6703UL;
inline constexpr unsigned long kFunctionfsInterfaceRevmap = 0x6780UL;
inline constexpr unsigned long kFunctionfsEndpointRevmap = 0x6781UL;
inline constexpr unsigned long kFunctionfsEndpointDesc = 0x80096782UL;
inline constexpr unsigned long kFunctionfsDmabufAttach = 0x40046783UL;
inline constexpr unsigned long kFunctionfsDmabufDetach = 0x40046784UL;
inline constexpr unsigned long kFunctionfsDmabufTransfer = 0x40106785UL;

}  // namespace zbuf::usb

// The kernel's macro names that Debian's <linux/usb/functionfs.h> lacks, for code written
// against a newer header.
#ifndef FUNCTIONFS_DMABUF_ATTACH
#define FUNCTIONFS_DMABUF_ATTACH (::zbuf::usb::kFunctionfsDmabufAttach)
#define FUNCTIONFS_DMABUF_DETACH (::zbuf::usb::kFunctionfsDmabufDetach)
#define FUNCTIONFS_DMABUF_TRANSFER (::zbuf::usb::kFunctionfsDmabufTransfer)
#define USB_FFS_DMABUF_TRANSFER_MASK (::zbuf::usb::kDmabufTransferMask)
#endif
