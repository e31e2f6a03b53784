// The kernel's uAPI with the kernel's names, for code written against the kernel: the system's
// own <linux/dma-buf.h>, <linux/sync_file.h>, <linux/dma-heap.h>, <linux/udmabuf.h>,
// <linux/iio/buffer.h> and <linux/usb/functionfs.h> where the system has them, and, for what
// an older system header lacks (Debian 12's are Linux 6.1: no SYNC_IOC_SET_DEADLINE, no IIO or
// FunctionFS DMABUF ioctls), the same definitions filled in from uapi/abi.h. Every value the
// system defines is checked against abi.h at compile time, so zbuf and the kernel headers cannot
// disagree silently.
#pragma once
// zbuf: not exported (macros and compile-time checks only: nothing here has linkage)

#include <linux/types.h>

#include "zbuf/uapi/abi.h"

#if __has_include(<linux/dma-buf.h>)
#include <linux/dma-buf.h>
#endif
#if __has_include(<linux/sync_file.h>)
#include <linux/sync_file.h>
#endif
#if __has_include(<linux/dma-heap.h>)
#include <linux/dma-heap.h>
#endif
#if __has_include(<linux/udmabuf.h>)
#include <linux/udmabuf.h>
#endif
#if __has_include(<linux/iio/buffer.h>)
#include <linux/iio/buffer.h>
#endif
#if __has_include(<linux/usb/functionfs.h>)
#include <linux/usb/functionfs.h>
#endif

// --- dma-buf -------------------------------------------------------------------------------------
#ifndef DMA_BUF_IOCTL_SYNC
struct dma_buf_sync {
  __u64 flags;
};
#define DMA_BUF_SYNC_READ (::zbuf::uapi::kDmaBufSyncRead)
#define DMA_BUF_SYNC_WRITE (::zbuf::uapi::kDmaBufSyncWrite)
#define DMA_BUF_SYNC_RW (::zbuf::uapi::kDmaBufSyncRw)
#define DMA_BUF_SYNC_START (::zbuf::uapi::kDmaBufSyncStart)
#define DMA_BUF_SYNC_END (::zbuf::uapi::kDmaBufSyncEnd)
#define DMA_BUF_IOCTL_SYNC (::zbuf::uapi::kDmaBufIoctlSync)
#define DMA_BUF_SET_NAME_A (::zbuf::uapi::kDmaBufSetNameA)
#define DMA_BUF_SET_NAME_B (::zbuf::uapi::kDmaBufSetNameB)
#endif
#ifndef DMA_BUF_IOCTL_EXPORT_SYNC_FILE
struct dma_buf_export_sync_file {
  __u32 flags;
  __s32 fd;
};
struct dma_buf_import_sync_file {
  __u32 flags;
  __s32 fd;
};
#define DMA_BUF_IOCTL_EXPORT_SYNC_FILE (::zbuf::uapi::kDmaBufIoctlExportSyncFile)
#define DMA_BUF_IOCTL_IMPORT_SYNC_FILE (::zbuf::uapi::kDmaBufIoctlImportSyncFile)
#endif

// --- sync_file -----------------------------------------------------------------------------------
#ifndef SYNC_IOC_MERGE
#define SYNC_IOC_MERGE (::zbuf::uapi::kSyncIocMerge)
#define SYNC_IOC_FILE_INFO (::zbuf::uapi::kSyncIocFileInfo)
#endif
#ifndef SYNC_IOC_SET_DEADLINE
struct sync_set_deadline {
  __u64 deadline_ns;
  __u64 pad;
};
#define SYNC_IOC_SET_DEADLINE (::zbuf::uapi::kSyncIocSetDeadline)
#endif

// --- sw_sync -------------------------------------------------------------------------------------
// No system header has these (the kernel defines them in drivers/dma-buf/sw_sync.c; IGT's
// lib/sw_sync.c and tools/testing/selftests/sync/ copy them): the kernel's names, always ours.
#ifndef SW_SYNC_IOC_CREATE_FENCE
struct sw_sync_create_fence_data {
  __u32 value;
  char name[32];
  __s32 fence;
};
#define SW_SYNC_IOC_MAGIC (::zbuf::uapi::kSwSyncIocMagic)
#define SW_SYNC_IOC_CREATE_FENCE (::zbuf::uapi::kSwSyncIocCreateFence)
#define SW_SYNC_IOC_INC (::zbuf::uapi::kSwSyncIocInc)
#endif
#ifndef SW_SYNC_GET_DEADLINE
struct sw_sync_get_deadline {
  __u64 deadline_ns;
  __u32 pad;
  __s32 fence_fd;
};
#define SW_SYNC_GET_DEADLINE (::zbuf::uapi::kSwSyncGetDeadline)
#endif

// --- dma-heap and udmabuf ------------------------------------------------------------------------
#ifndef DMA_HEAP_IOCTL_ALLOC
struct dma_heap_allocation_data {
  __u64 len;
  __u32 fd;
  __u32 fd_flags;
  __u64 heap_flags;
};
#define DMA_HEAP_IOCTL_ALLOC (::zbuf::uapi::kDmaHeapIoctlAlloc)
#endif
#ifndef UDMABUF_CREATE
#define UDMABUF_FLAGS_CLOEXEC (::zbuf::uapi::kUdmabufFlagsCloexec)
#define UDMABUF_CREATE (::zbuf::uapi::kUdmabufCreate)
#define UDMABUF_CREATE_LIST (::zbuf::uapi::kUdmabufCreateList)
#endif

// --- IIO buffer ----------------------------------------------------------------------------------
#ifndef IIO_BUFFER_GET_FD_IOCTL
#define IIO_BUFFER_GET_FD_IOCTL (::zbuf::uapi::kIioBufferGetFdIoctl)
#endif
#ifndef IIO_BUFFER_DMABUF_ATTACH_IOCTL
struct iio_dmabuf {
  __u32 fd;
  __u32 flags;
  __u64 bytes_used;
};
#define IIO_BUFFER_DMABUF_CYCLIC (::zbuf::uapi::kIioBufferDmabufCyclic)
#define IIO_BUFFER_DMABUF_SUPPORTED_FLAGS (::zbuf::uapi::kIioBufferDmabufSupportedFlags)
#define IIO_BUFFER_DMABUF_ATTACH_IOCTL (::zbuf::uapi::kIioBufferDmabufAttachIoctl)
#define IIO_BUFFER_DMABUF_DETACH_IOCTL (::zbuf::uapi::kIioBufferDmabufDetachIoctl)
#define IIO_BUFFER_DMABUF_ENQUEUE_IOCTL (::zbuf::uapi::kIioBufferDmabufEnqueueIoctl)
#endif

// --- FunctionFS ----------------------------------------------------------------------------------
#ifndef FUNCTIONFS_ENDPOINT_REVMAP
#define FUNCTIONFS_ENDPOINT_REVMAP (::zbuf::uapi::kFunctionfsEndpointRevmap)
#endif
#ifndef FUNCTIONFS_DMABUF_ATTACH
struct usb_ffs_dmabuf_transfer_req {
  int fd;
  __u32 flags;
  __u64 length;
} __attribute__((packed));
#define USB_FFS_DMABUF_TRANSFER_MASK (::zbuf::uapi::kUsbFfsDmabufTransferMask)
#define FUNCTIONFS_DMABUF_ATTACH (::zbuf::uapi::kFunctionfsDmabufAttach)
#define FUNCTIONFS_DMABUF_DETACH (::zbuf::uapi::kFunctionfsDmabufDetach)
#define FUNCTIONFS_DMABUF_TRANSFER (::zbuf::uapi::kFunctionfsDmabufTransfer)
#endif

// --- the check: whatever the system defined is what zbuf implements ---------------------------
// NOLINTBEGIN(misc-redundant-expression): where the installed kernel header lacks a definition,
// the fallback above defines it as zbuf's own constant, so both sides are the same expression;
// with a kernel that has it the check is real.
namespace zbuf::uapi::detail {
static_assert(DMA_BUF_IOCTL_SYNC == kDmaBufIoctlSync);
static_assert(DMA_BUF_SET_NAME_A == kDmaBufSetNameA && DMA_BUF_SET_NAME_B == kDmaBufSetNameB);
static_assert(DMA_BUF_IOCTL_EXPORT_SYNC_FILE == kDmaBufIoctlExportSyncFile);
static_assert(DMA_BUF_IOCTL_IMPORT_SYNC_FILE == kDmaBufIoctlImportSyncFile);
static_assert(DMA_BUF_SYNC_RW == kDmaBufSyncRw && DMA_BUF_SYNC_END == kDmaBufSyncEnd);
static_assert(sizeof(dma_buf_sync) == sizeof(DmaBufSync));
static_assert(sizeof(dma_buf_export_sync_file) == sizeof(DmaBufExportSyncFile));
static_assert(SYNC_IOC_MERGE == kSyncIocMerge && SYNC_IOC_FILE_INFO == kSyncIocFileInfo);
static_assert(SYNC_IOC_SET_DEADLINE == kSyncIocSetDeadline);
static_assert(sizeof(sync_merge_data) == sizeof(SyncMergeData));
static_assert(sizeof(sync_file_info) == sizeof(SyncFileInfo));
static_assert(sizeof(sync_fence_info) == sizeof(SyncFenceInfo));
static_assert(SW_SYNC_IOC_CREATE_FENCE == kSwSyncIocCreateFence);
static_assert(SW_SYNC_IOC_INC == kSwSyncIocInc && SW_SYNC_GET_DEADLINE == kSwSyncGetDeadline);
static_assert(sizeof(sw_sync_create_fence_data) == sizeof(SwSyncCreateFenceData));
static_assert(sizeof(sw_sync_get_deadline) == sizeof(SwSyncGetDeadline));
static_assert(DMA_HEAP_IOCTL_ALLOC == kDmaHeapIoctlAlloc);
static_assert(sizeof(dma_heap_allocation_data) == sizeof(DmaHeapAllocationData));
static_assert(UDMABUF_CREATE == kUdmabufCreate && UDMABUF_CREATE_LIST == kUdmabufCreateList);
static_assert(IIO_BUFFER_GET_FD_IOCTL == kIioBufferGetFdIoctl);
static_assert(IIO_BUFFER_DMABUF_ATTACH_IOCTL == kIioBufferDmabufAttachIoctl);
static_assert(IIO_BUFFER_DMABUF_DETACH_IOCTL == kIioBufferDmabufDetachIoctl);
static_assert(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL == kIioBufferDmabufEnqueueIoctl);
static_assert(sizeof(iio_dmabuf) == sizeof(IioDmabuf));
static_assert(FUNCTIONFS_ENDPOINT_REVMAP == kFunctionfsEndpointRevmap);
static_assert(FUNCTIONFS_DMABUF_ATTACH == kFunctionfsDmabufAttach);
static_assert(FUNCTIONFS_DMABUF_DETACH == kFunctionfsDmabufDetach);
static_assert(FUNCTIONFS_DMABUF_TRANSFER == kFunctionfsDmabufTransfer);
static_assert(sizeof(usb_ffs_dmabuf_transfer_req) == sizeof(UsbFfsDmabufTransferReq));
}  // namespace zbuf::uapi::detail
// NOLINTEND(misc-redundant-expression)
