// zbuf's uAPI structs and request numbers against the kernel headers of the build machine.
#include "zbuf/uapi/abi.h"

#include <gtest/gtest.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/ioctl.h>
#include <linux/sync_file.h>
#include <linux/udmabuf.h>

#include <cstddef>

namespace zbuf::uapi {
namespace {

// NOLINTBEGIN(bugprone-macro-parentheses): `ours::a` names a member; it cannot be parenthesized
#define ZBUF_SAME_FIELD(ours, theirs, a, b)                 \
  static_assert(offsetof(ours, a) == offsetof(theirs, b) && \
                sizeof(ours::a) == sizeof(static_cast<theirs*>(nullptr)->b))
// NOLINTEND(bugprone-macro-parentheses)

static_assert(sizeof(DmaBufSync) == sizeof(dma_buf_sync));
ZBUF_SAME_FIELD(DmaBufSync, dma_buf_sync, flags, flags);
static_assert(sizeof(DmaBufExportSyncFile) == sizeof(dma_buf_export_sync_file));
ZBUF_SAME_FIELD(DmaBufExportSyncFile, dma_buf_export_sync_file, flags, flags);
ZBUF_SAME_FIELD(DmaBufExportSyncFile, dma_buf_export_sync_file, fd, fd);
static_assert(sizeof(DmaBufImportSyncFile) == sizeof(dma_buf_import_sync_file));
ZBUF_SAME_FIELD(DmaBufImportSyncFile, dma_buf_import_sync_file, flags, flags);
ZBUF_SAME_FIELD(DmaBufImportSyncFile, dma_buf_import_sync_file, fd, fd);

static_assert(sizeof(SyncMergeData) == sizeof(sync_merge_data));
ZBUF_SAME_FIELD(SyncMergeData, sync_merge_data, name, name);
ZBUF_SAME_FIELD(SyncMergeData, sync_merge_data, fd2, fd2);
ZBUF_SAME_FIELD(SyncMergeData, sync_merge_data, fence, fence);
ZBUF_SAME_FIELD(SyncMergeData, sync_merge_data, flags, flags);
ZBUF_SAME_FIELD(SyncMergeData, sync_merge_data, pad, pad);
static_assert(sizeof(SyncFenceInfo) == sizeof(sync_fence_info));
ZBUF_SAME_FIELD(SyncFenceInfo, sync_fence_info, objName, obj_name);
ZBUF_SAME_FIELD(SyncFenceInfo, sync_fence_info, driverName, driver_name);
ZBUF_SAME_FIELD(SyncFenceInfo, sync_fence_info, status, status);
ZBUF_SAME_FIELD(SyncFenceInfo, sync_fence_info, flags, flags);
ZBUF_SAME_FIELD(SyncFenceInfo, sync_fence_info, timestampNs, timestamp_ns);
static_assert(sizeof(SyncFileInfo) == sizeof(sync_file_info));
ZBUF_SAME_FIELD(SyncFileInfo, sync_file_info, name, name);
ZBUF_SAME_FIELD(SyncFileInfo, sync_file_info, status, status);
ZBUF_SAME_FIELD(SyncFileInfo, sync_file_info, flags, flags);
ZBUF_SAME_FIELD(SyncFileInfo, sync_file_info, numFences, num_fences);
ZBUF_SAME_FIELD(SyncFileInfo, sync_file_info, pad, pad);
ZBUF_SAME_FIELD(SyncFileInfo, sync_file_info, syncFenceInfo, sync_fence_info);

static_assert(sizeof(DmaHeapAllocationData) == sizeof(dma_heap_allocation_data));
ZBUF_SAME_FIELD(DmaHeapAllocationData, dma_heap_allocation_data, len, len);
ZBUF_SAME_FIELD(DmaHeapAllocationData, dma_heap_allocation_data, fd, fd);
ZBUF_SAME_FIELD(DmaHeapAllocationData, dma_heap_allocation_data, fdFlags, fd_flags);
ZBUF_SAME_FIELD(DmaHeapAllocationData, dma_heap_allocation_data, heapFlags, heap_flags);

static_assert(sizeof(UdmabufCreate) == sizeof(udmabuf_create));
ZBUF_SAME_FIELD(UdmabufCreate, udmabuf_create, memfd, memfd);
ZBUF_SAME_FIELD(UdmabufCreate, udmabuf_create, flags, flags);
ZBUF_SAME_FIELD(UdmabufCreate, udmabuf_create, offset, offset);
ZBUF_SAME_FIELD(UdmabufCreate, udmabuf_create, size, size);
static_assert(sizeof(UdmabufCreateItem) == sizeof(udmabuf_create_item));
ZBUF_SAME_FIELD(UdmabufCreateItem, udmabuf_create_item, offset, offset);
ZBUF_SAME_FIELD(UdmabufCreateItem, udmabuf_create_item, size, size);
static_assert(sizeof(UdmabufCreateList) == sizeof(udmabuf_create_list));

// sw_sync has no uapi header: the structs as drivers/dma-buf/sw_sync.c declares them, and the
// request numbers from the system's _IOWR/_IOW, as the kernel defines them.
struct KernelSwSyncCreateFenceData {
  __u32 value;
  char name[32];
  __s32 fence;
};
struct KernelSwSyncGetDeadline {
  __u64 deadline_ns;
  __u32 pad;
  __s32 fence_fd;
};
static_assert(sizeof(SwSyncCreateFenceData) == sizeof(KernelSwSyncCreateFenceData));
ZBUF_SAME_FIELD(SwSyncCreateFenceData, KernelSwSyncCreateFenceData, value, value);
ZBUF_SAME_FIELD(SwSyncCreateFenceData, KernelSwSyncCreateFenceData, name, name);
ZBUF_SAME_FIELD(SwSyncCreateFenceData, KernelSwSyncCreateFenceData, fence, fence);
static_assert(sizeof(SwSyncGetDeadline) == sizeof(KernelSwSyncGetDeadline));
ZBUF_SAME_FIELD(SwSyncGetDeadline, KernelSwSyncGetDeadline, deadlineNs, deadline_ns);
ZBUF_SAME_FIELD(SwSyncGetDeadline, KernelSwSyncGetDeadline, pad, pad);
ZBUF_SAME_FIELD(SwSyncGetDeadline, KernelSwSyncGetDeadline, fenceFd, fence_fd);

TEST(UapiAbi, RequestNumbersMatchTheKernelHeaders) {
  EXPECT_EQ(kDmaBufIoctlSync, DMA_BUF_IOCTL_SYNC);
  EXPECT_EQ(kDmaBufSetName, DMA_BUF_SET_NAME);
  EXPECT_EQ(kDmaBufSetNameA, DMA_BUF_SET_NAME_A);
  EXPECT_EQ(kDmaBufSetNameB, DMA_BUF_SET_NAME_B);
  EXPECT_EQ(kDmaBufIoctlExportSyncFile, DMA_BUF_IOCTL_EXPORT_SYNC_FILE);
  EXPECT_EQ(kDmaBufIoctlImportSyncFile, DMA_BUF_IOCTL_IMPORT_SYNC_FILE);
  EXPECT_EQ(kDmaBufSyncRead, DMA_BUF_SYNC_READ);
  EXPECT_EQ(kDmaBufSyncWrite, DMA_BUF_SYNC_WRITE);
  EXPECT_EQ(kDmaBufSyncEnd, DMA_BUF_SYNC_END);
  EXPECT_EQ(kDmaBufSyncValidFlagsMask, DMA_BUF_SYNC_VALID_FLAGS_MASK);
  EXPECT_EQ(kDmaBufNameLen, std::size_t{DMA_BUF_NAME_LEN});
  EXPECT_EQ(kSyncIocMerge, SYNC_IOC_MERGE);
  EXPECT_EQ(kSyncIocFileInfo, SYNC_IOC_FILE_INFO);
#ifdef SYNC_IOC_SET_DEADLINE
  EXPECT_EQ(kSyncIocSetDeadline, SYNC_IOC_SET_DEADLINE);
#endif
  EXPECT_EQ(kDmaHeapIoctlAlloc, DMA_HEAP_IOCTL_ALLOC);
  EXPECT_EQ(kUdmabufCreate, UDMABUF_CREATE);
  EXPECT_EQ(kUdmabufCreateList, UDMABUF_CREATE_LIST);
  EXPECT_EQ(kUdmabufFlagsCloexec, std::uint32_t{UDMABUF_FLAGS_CLOEXEC});
}

TEST(UapiAbi, SwSyncRequestNumbersAreTheKernelsIoctlFormulae) {
  EXPECT_EQ(kSwSyncIocCreateFence, _IOWR('W', 0, KernelSwSyncCreateFenceData));
  EXPECT_EQ(kSwSyncIocInc, _IOW('W', 1, __u32));
  EXPECT_EQ(kSwSyncGetDeadline, _IOWR('W', 2, KernelSwSyncGetDeadline));
}

}  // namespace
}  // namespace zbuf::uapi
