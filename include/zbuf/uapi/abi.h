// The kernel's uAPI, byte for byte, in one place and one encoding: the structs and ioctl request
// numbers of <linux/dma-buf.h>, <linux/sync_file.h>, <linux/dma-heap.h>, <linux/udmabuf.h>,
// <linux/iio/buffer.h> and <linux/usb/functionfs.h> (reference sections 1, 2, 6, 7, 8 and 9),
// and sw_sync's, which only drivers/dma-buf/sw_sync.c defines, and, last, the calls of zbuf's
// own virtio-video pair (no kernel has them),
// for the generic ioctl layout (x86-64, arm64). uapi/linux_uapi.h gives them the kernel's
// names (including the system's headers where Debian has them, and checking these values
// against them).
//
// zbuf::uapi::ioctl() (uapi/calls.h) accepts exactly these numbers, so code written against
// the kernel headers runs unchanged: it passes its own `struct dma_buf_sync` etc., whose layout
// is checked against these types below whenever the system has the kernel headers.
#pragma once

#include <cstddef>
#include <cstdint>

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

// --- ioctl number encoding (asm-generic/ioctl.h) ----------------------------------------------
inline constexpr unsigned long kIocWrite = 1;
inline constexpr unsigned long kIocRead = 2;
[[nodiscard]] constexpr unsigned long iocNumber(unsigned long dir, unsigned long type,
                                                unsigned long nr, unsigned long size) noexcept {
  return (dir << 30) | (size << 16) | (type << 8) | nr;
}
[[nodiscard]] constexpr unsigned long iocType(unsigned long request) noexcept {
  return (request >> 8) & 0xff;
}

// --- dma-buf (magic 'b') ------------------------------------------------------------------------
inline constexpr std::uint64_t kDmaBufSyncRead = 1U << 0;
inline constexpr std::uint64_t kDmaBufSyncWrite = 2U << 0;
inline constexpr std::uint64_t kDmaBufSyncRw = kDmaBufSyncRead | kDmaBufSyncWrite;
inline constexpr std::uint64_t kDmaBufSyncStart = 0U << 2;
inline constexpr std::uint64_t kDmaBufSyncEnd = 1U << 2;
inline constexpr std::uint64_t kDmaBufSyncValidFlagsMask = kDmaBufSyncRw | kDmaBufSyncEnd;
inline constexpr std::size_t kDmaBufNameLen = 32;

struct DmaBufSync {  // struct dma_buf_sync
  std::uint64_t flags;
};
struct DmaBufExportSyncFile {  // struct dma_buf_export_sync_file
  std::uint32_t flags;
  std::int32_t fd;  // out
};
struct DmaBufImportSyncFile {  // struct dma_buf_import_sync_file
  std::uint32_t flags;
  std::int32_t fd;
};

inline constexpr unsigned long kDmaBufBase = 'b';
inline constexpr unsigned long kDmaBufIoctlSync =
    iocNumber(kIocWrite, kDmaBufBase, 0, sizeof(DmaBufSync));
inline constexpr unsigned long kDmaBufSetNameA = iocNumber(kIocWrite, kDmaBufBase, 1, 4);
inline constexpr unsigned long kDmaBufSetNameB = iocNumber(kIocWrite, kDmaBufBase, 1, 8);
inline constexpr unsigned long kDmaBufSetName =
    iocNumber(kIocWrite, kDmaBufBase, 1, sizeof(const char*));
inline constexpr unsigned long kDmaBufIoctlExportSyncFile =
    iocNumber(kIocRead | kIocWrite, kDmaBufBase, 2, sizeof(DmaBufExportSyncFile));
inline constexpr unsigned long kDmaBufIoctlImportSyncFile =
    iocNumber(kIocWrite, kDmaBufBase, 3, sizeof(DmaBufImportSyncFile));

static_assert(kDmaBufIoctlSync == 0x40086200UL);
static_assert(kDmaBufSetNameA == 0x40046201UL);
static_assert(kDmaBufSetNameB == 0x40086201UL);
static_assert(kDmaBufIoctlExportSyncFile == 0xC0086202UL);
static_assert(kDmaBufIoctlImportSyncFile == 0x40086203UL);

// --- sync_file (magic '>') ----------------------------------------------------------------------
struct SyncMergeData {  // struct sync_merge_data
  char name[32];
  std::int32_t fd2;
  std::int32_t fence;  // out
  std::uint32_t flags;
  std::uint32_t pad;
};
struct SyncFenceInfo {  // struct sync_fence_info
  char objName[32];
  char driverName[32];
  std::int32_t status;
  std::uint32_t flags;
  std::uint64_t timestampNs;
};
struct SyncFileInfo {  // struct sync_file_info
  char name[32];
  std::int32_t status;
  std::uint32_t flags;
  std::uint32_t numFences;
  std::uint32_t pad;
  std::uint64_t syncFenceInfo;  // user pointer to SyncFenceInfo[numFences]
};
struct SyncSetDeadline {  // struct sync_set_deadline
  std::uint64_t deadlineNs;
  std::uint64_t pad;
};

inline constexpr unsigned long kSyncIocMagic = '>';
inline constexpr unsigned long kSyncIocMerge =
    iocNumber(kIocRead | kIocWrite, kSyncIocMagic, 3, sizeof(SyncMergeData));
inline constexpr unsigned long kSyncIocFileInfo =
    iocNumber(kIocRead | kIocWrite, kSyncIocMagic, 4, sizeof(SyncFileInfo));
inline constexpr unsigned long kSyncIocSetDeadline =
    iocNumber(kIocWrite, kSyncIocMagic, 5, sizeof(SyncSetDeadline));

static_assert(sizeof(SyncMergeData) == 48 && sizeof(SyncFenceInfo) == 80);
static_assert(sizeof(SyncFileInfo) == 56 && sizeof(SyncSetDeadline) == 16);
static_assert(kSyncIocMerge == 0xC0303E03UL);
static_assert(kSyncIocFileInfo == 0xC0383E04UL);
static_assert(kSyncIocSetDeadline == 0x40103E05UL);

// --- sw_sync (magic 'W'): /sys/kernel/debug/sync/sw_sync ---------------------------------------
// Not in any uapi header: the kernel keeps these in drivers/dma-buf/sw_sync.c (IGT and the
// kernel's selftests copy them).
inline constexpr std::size_t kSwSyncNameLen = 32;
struct SwSyncCreateFenceData {  // struct sw_sync_create_fence_data
  std::uint32_t value;
  char name[kSwSyncNameLen];  // ignored by the kernel
  std::int32_t fence;         // out: the new sync file's fd
};
struct SwSyncGetDeadline {   // struct sw_sync_get_deadline (Linux 6.5+)
  std::uint64_t deadlineNs;  // out; must be 0 on input
  std::uint32_t pad;         // must be 0
  std::int32_t fenceFd;      // a sync file of one sw_sync fence
};
inline constexpr unsigned long kSwSyncIocMagic = 'W';
inline constexpr unsigned long kSwSyncIocCreateFence =
    iocNumber(kIocRead | kIocWrite, kSwSyncIocMagic, 0, sizeof(SwSyncCreateFenceData));
inline constexpr unsigned long kSwSyncIocInc =
    iocNumber(kIocWrite, kSwSyncIocMagic, 1, sizeof(std::uint32_t));
inline constexpr unsigned long kSwSyncGetDeadline =
    iocNumber(kIocRead | kIocWrite, kSwSyncIocMagic, 2, sizeof(SwSyncGetDeadline));
static_assert(sizeof(SwSyncCreateFenceData) == 40 && sizeof(SwSyncGetDeadline) == 16);
static_assert(kSwSyncIocCreateFence == 0xC0285700UL);
static_assert(kSwSyncIocInc == 0x40045701UL);
static_assert(kSwSyncGetDeadline == 0xC0105702UL);

// --- dma-heap (magic 'H') -----------------------------------------------------------------------
struct DmaHeapAllocationData {  // struct dma_heap_allocation_data
  std::uint64_t len;
  std::uint32_t fd;  // out; must be 0 on input
  std::uint32_t fdFlags;
  std::uint64_t heapFlags;
};
inline constexpr unsigned long kDmaHeapIocMagic = 'H';
inline constexpr unsigned long kDmaHeapIoctlAlloc =
    iocNumber(kIocRead | kIocWrite, kDmaHeapIocMagic, 0, sizeof(DmaHeapAllocationData));
static_assert(sizeof(DmaHeapAllocationData) == 24 && kDmaHeapIoctlAlloc == 0xC0184800UL);

// --- udmabuf (magic 'u') ------------------------------------------------------------------------
inline constexpr std::uint32_t kUdmabufFlagsCloexec = 0x01;
struct UdmabufCreate {  // struct udmabuf_create
  std::uint32_t memfd;
  std::uint32_t flags;
  std::uint64_t offset;
  std::uint64_t size;
};
struct UdmabufCreateItem {  // struct udmabuf_create_item
  std::uint32_t memfd;
  std::uint32_t pad;
  std::uint64_t offset;
  std::uint64_t size;
};
struct UdmabufCreateList {  // struct udmabuf_create_list, followed by `count` items
  std::uint32_t flags;
  std::uint32_t count;
  // UdmabufCreateItem list[count] follows.
};
inline constexpr unsigned long kUdmabufCreate =
    iocNumber(kIocWrite, 'u', 0x42, sizeof(UdmabufCreate));
inline constexpr unsigned long kUdmabufCreateList =
    iocNumber(kIocWrite, 'u', 0x43, sizeof(UdmabufCreateList));
static_assert(kUdmabufCreate == 0x40187542UL && kUdmabufCreateList == 0x40087543UL);

// --- IIO buffer (magic 'i') ---------------------------------------------------------------------
struct IioDmabuf {  // struct iio_dmabuf
  std::uint32_t fd;
  std::uint32_t flags;
  std::uint64_t bytesUsed;
};
inline constexpr std::uint32_t kIioBufferDmabufCyclic = 1U << 0;
inline constexpr std::uint32_t kIioBufferDmabufSupportedFlags = 0x1;
inline constexpr unsigned long kIioBufferGetFdIoctl =
    iocNumber(kIocRead | kIocWrite, 'i', 0x91, sizeof(int));
inline constexpr unsigned long kIioBufferDmabufAttachIoctl =
    iocNumber(kIocWrite, 'i', 0x92, sizeof(int));
inline constexpr unsigned long kIioBufferDmabufDetachIoctl =
    iocNumber(kIocWrite, 'i', 0x93, sizeof(int));
inline constexpr unsigned long kIioBufferDmabufEnqueueIoctl =
    iocNumber(kIocWrite, 'i', 0x94, sizeof(IioDmabuf));
static_assert(sizeof(IioDmabuf) == 16);
static_assert(kIioBufferGetFdIoctl == 0xC0046991UL);
static_assert(kIioBufferDmabufAttachIoctl == 0x40046992UL);
static_assert(kIioBufferDmabufDetachIoctl == 0x40046993UL);
static_assert(kIioBufferDmabufEnqueueIoctl == 0x40106994UL);

// --- FunctionFS (magic 'g') ---------------------------------------------------------------------
struct UsbFfsDmabufTransferReq {  // struct usb_ffs_dmabuf_transfer_req
  std::int32_t fd;
  std::uint32_t flags;
  std::uint64_t length;
} __attribute__((packed));
inline constexpr std::uint32_t kUsbFfsDmabufTransferMask = 0;
inline constexpr unsigned long kFunctionfsDmabufAttach =
    iocNumber(kIocWrite, 'g', 131, sizeof(int));
inline constexpr unsigned long kFunctionfsDmabufDetach =
    iocNumber(kIocWrite, 'g', 132, sizeof(int));
inline constexpr unsigned long kFunctionfsDmabufTransfer =
    iocNumber(kIocWrite, 'g', 133, sizeof(UsbFfsDmabufTransferReq));
inline constexpr unsigned long kFunctionfsEndpointRevmap = iocNumber(0, 'g', 129, 0);
static_assert(sizeof(UsbFfsDmabufTransferReq) == 16);
static_assert(kFunctionfsDmabufAttach == 0x40046783UL);
static_assert(kFunctionfsDmabufDetach == 0x40046784UL);
static_assert(kFunctionfsDmabufTransfer == 0x40106785UL);
static_assert(kFunctionfsEndpointRevmap == 0x6781UL);

// ep0: the descriptors and strings blobs written to it (enum functionfs_flags and the magics).
inline constexpr std::uint32_t kFfsDescriptorsMagic = 1;    // FUNCTIONFS_DESCRIPTORS_MAGIC (legacy)
inline constexpr std::uint32_t kFfsStringsMagic = 2;        // FUNCTIONFS_STRINGS_MAGIC
inline constexpr std::uint32_t kFfsDescriptorsMagicV2 = 3;  // FUNCTIONFS_DESCRIPTORS_MAGIC_V2
inline constexpr std::uint32_t kFfsHasFsDesc = 1;
inline constexpr std::uint32_t kFfsHasHsDesc = 2;
inline constexpr std::uint32_t kFfsHasSsDesc = 4;
inline constexpr std::uint32_t kFfsHasMsOsDesc = 8;
inline constexpr std::uint32_t kFfsVirtualAddr = 16;
inline constexpr std::uint32_t kFfsEventfd = 32;
inline constexpr std::uint32_t kFfsAllCtrlRecip = 64;
inline constexpr std::uint32_t kFfsConfig0Setup = 128;
inline constexpr std::uint32_t kFfsKnownFlags = 0xff;

// USB descriptor types and fields the descriptors parser knows (linux/usb/ch9.h).
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
inline constexpr std::uint8_t kUsbEndpointDirIn = 0x80;  // USB_DIR_IN
inline constexpr std::uint8_t kUsbEndpointNumberMask = 0x0f;
inline constexpr std::uint8_t kUsbEndpointXferBulk = 2;

// ep0: what is read from it (enum usb_functionfs_event_type, struct usb_functionfs_event).
enum class FfsEventType : std::uint8_t {
  Bind = 0,
  Unbind = 1,
  Enable = 2,
  Disable = 3,
  Setup = 4,
  Suspend = 5,
  Resume = 6,
};
struct UsbCtrlRequest {       // struct usb_ctrlrequest (little-endian fields)
  std::uint8_t bRequestType;  // NOLINT(readability-identifier-naming): the kernel's names
  std::uint8_t bRequest;      // NOLINT(readability-identifier-naming)
  std::uint16_t wValue;       // NOLINT(readability-identifier-naming)
  std::uint16_t wIndex;       // NOLINT(readability-identifier-naming)
  std::uint16_t wLength;      // NOLINT(readability-identifier-naming)
} __attribute__((packed));
struct UsbFunctionfsEvent {  // struct usb_functionfs_event
  UsbCtrlRequest setup;      // u.setup: SETUP only, else zero
  std::uint8_t type;         // FfsEventType
  std::uint8_t pad[3];
} __attribute__((packed));
struct UsbEndpointDescriptor {    // struct usb_endpoint_descriptor (with the audio bytes)
  std::uint8_t bLength;           // NOLINT(readability-identifier-naming)
  std::uint8_t bDescriptorType;   // NOLINT(readability-identifier-naming)
  std::uint8_t bEndpointAddress;  // NOLINT(readability-identifier-naming)
  std::uint8_t bmAttributes;      // NOLINT(readability-identifier-naming)
  std::uint16_t wMaxPacketSize;   // NOLINT(readability-identifier-naming)
  std::uint8_t bInterval;         // NOLINT(readability-identifier-naming)
  std::uint8_t bRefresh;          // NOLINT(readability-identifier-naming)
  std::uint8_t bSynchAddress;     // NOLINT(readability-identifier-naming)
} __attribute__((packed));
static_assert(sizeof(UsbCtrlRequest) == 8 && sizeof(UsbFunctionfsEvent) == 12);
static_assert(sizeof(UsbEndpointDescriptor) == 9);

// The other endpoint and ep0 ioctls.
inline constexpr unsigned long kFunctionfsFifoStatus = iocNumber(0, 'g', 1, 0);
inline constexpr unsigned long kFunctionfsFifoFlush = iocNumber(0, 'g', 2, 0);
inline constexpr unsigned long kFunctionfsClearHalt = iocNumber(0, 'g', 3, 0);
inline constexpr unsigned long kFunctionfsInterfaceRevmap = iocNumber(0, 'g', 128, 0);
inline constexpr unsigned long kFunctionfsEndpointDesc =
    iocNumber(kIocRead, 'g', 130, sizeof(UsbEndpointDescriptor));
static_assert(kFunctionfsFifoStatus == 0x6701UL && kFunctionfsFifoFlush == 0x6702UL);
static_assert(kFunctionfsClearHalt == 0x6703UL && kFunctionfsInterfaceRevmap == 0x6780UL);
static_assert(kFunctionfsEndpointDesc == 0x80096782UL);

// --- zbuf's virtio-video pair (magic 'z'): zbuf's own, not the kernel's
// --------------------------- The emulated decoder (/dev/virtio-video0) and display
// (/dev/virtio-video1) of devices/virtio/virtio_video.h. A real virtio-video device is a V4L2
// device; zbuf gives its two halves these few calls instead (docs/buffers.md, "Virtio buffers").
struct VirtioVideoAlloc {  // ZBUF_VIRTIO_VIDEO_ALLOC, on the decoder
  std::uint64_t size;      // in: bytes (rounded up to the page)
  std::uint32_t fdFlags;   // in: O_ACCMODE | O_CLOEXEC, as DMA_HEAP_IOCTL_ALLOC's
  std::uint32_t flags;     // in: kVirtioVideoAllocUuid, else 0
  std::uint32_t fd;        // out: the buffer
  std::uint32_t pad;       // must be 0
  std::uint8_t uuid[16];   // in with kVirtioVideoAllocUuid, else out  NOLINT(*-avoid-c-arrays)
};
struct VirtioVideoUuid {  // ZBUF_VIRTIO_VIDEO_GET_UUID, on the decoder
  std::uint32_t fd;       // in: a virtio buffer
  std::uint32_t pad;      // must be 0
  std::uint8_t uuid[16];  // out  NOLINT(*-avoid-c-arrays): the kernel's uuid_t layout
};
struct VirtioVideoFrame {  // ZBUF_VIRTIO_VIDEO_DECODE (decoder), _DISPLAY (display)
  std::uint32_t fd;        // in: the buffer
  std::uint32_t flags;     // must be 0
  std::uint64_t frame;     // in: the frame number (what the picture shows)
};
struct VirtioVideoImport {  // ZBUF_VIRTIO_VIDEO_IMPORT, on the display
  std::uint8_t uuid[16];    // in  NOLINT(*-avoid-c-arrays): the kernel's uuid_t layout
  std::uint32_t fdFlags;    // in: O_ACCMODE | O_CLOEXEC
  std::uint32_t fd;         // out: the same buffer
};
inline constexpr std::uint32_t kVirtioVideoAllocUuid = 1;  // use the caller's uuid
inline constexpr unsigned long kVirtioVideoMagic = 'z';
inline constexpr unsigned long kVirtioVideoAlloc =
    iocNumber(kIocRead | kIocWrite, kVirtioVideoMagic, 0, sizeof(VirtioVideoAlloc));
inline constexpr unsigned long kVirtioVideoGetUuid =
    iocNumber(kIocRead | kIocWrite, kVirtioVideoMagic, 1, sizeof(VirtioVideoUuid));
inline constexpr unsigned long kVirtioVideoDecode =
    iocNumber(kIocWrite, kVirtioVideoMagic, 2, sizeof(VirtioVideoFrame));
inline constexpr unsigned long kVirtioVideoImport =
    iocNumber(kIocRead | kIocWrite, kVirtioVideoMagic, 3, sizeof(VirtioVideoImport));
inline constexpr unsigned long kVirtioVideoDisplay =
    iocNumber(kIocWrite, kVirtioVideoMagic, 4, sizeof(VirtioVideoFrame));
inline constexpr unsigned long kVirtioVideoDetach =
    iocNumber(kIocWrite, kVirtioVideoMagic, 5, sizeof(int));
static_assert(sizeof(VirtioVideoAlloc) == 40 && sizeof(VirtioVideoUuid) == 24);
static_assert(sizeof(VirtioVideoFrame) == 16 && sizeof(VirtioVideoImport) == 24);

}  // namespace zbuf::uapi
#pragma GCC visibility pop
