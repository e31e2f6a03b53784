// The kernel's uAPI under the kernel's names (uapi/linux_uapi.h): what Debian 12's Linux 6.1
// headers lack (SYNC_IOC_SET_DEADLINE, the IIO and FunctionFS DMABUF ioctls, sw_sync's requests,
// which have no uapi header at all) is filled in with the kernel's values, checked here against
// the kernel's own _IO/_IOW/_IOWR formulae on the kernel-named structs, and the structs have the
// kernel's layout; a program written with these names alone runs against zbuf.
#include "zbuf/uapi/linux_uapi.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/ioctl.h>

#include <cstddef>
#include <cstring>

#include "zbuf/uapi/calls.h"
#include "zbuf/uapi/context.h"

namespace zbuf::uapi {
namespace {

// include/uapi/linux/sync_file.h (6.4+), drivers/dma-buf/sync_debug.h (sw_sync),
// include/uapi/linux/iio/buffer.h (6.9+), include/uapi/linux/usb/functionfs.h (6.9+).
static_assert(SYNC_IOC_SET_DEADLINE == _IOW('>', 5, struct sync_set_deadline));
static_assert(SW_SYNC_IOC_CREATE_FENCE == _IOWR('W', 0, struct sw_sync_create_fence_data));
static_assert(SW_SYNC_IOC_INC == _IOW('W', 1, __u32));
static_assert(SW_SYNC_GET_DEADLINE == _IOWR('W', 2, struct sw_sync_get_deadline));
static_assert(IIO_BUFFER_DMABUF_ATTACH_IOCTL == _IOW('i', 0x92, int));
static_assert(IIO_BUFFER_DMABUF_DETACH_IOCTL == _IOW('i', 0x93, int));
static_assert(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL == _IOW('i', 0x94, struct iio_dmabuf));
static_assert(IIO_BUFFER_DMABUF_CYCLIC == (1U << 0));
static_assert(IIO_BUFFER_DMABUF_SUPPORTED_FLAGS == 0x00000001U);
static_assert(FUNCTIONFS_DMABUF_ATTACH == _IOW('g', 131, int));
static_assert(FUNCTIONFS_DMABUF_DETACH == _IOW('g', 132, int));
static_assert(FUNCTIONFS_DMABUF_TRANSFER == _IOW('g', 133, struct usb_ffs_dmabuf_transfer_req));
static_assert(USB_FFS_DMABUF_TRANSFER_MASK == 0x0);

// The layouts: iio_dmabuf's bytes_used after two u32; the FunctionFS request packed (no padding
// after the int fd); sync_set_deadline two u64.
static_assert(sizeof(iio_dmabuf) == 16 && offsetof(iio_dmabuf, flags) == 4 &&
              offsetof(iio_dmabuf, bytes_used) == 8);
static_assert(sizeof(usb_ffs_dmabuf_transfer_req) == 16 &&
              offsetof(usb_ffs_dmabuf_transfer_req, flags) == 4 &&
              offsetof(usb_ffs_dmabuf_transfer_req, length) == 8);
static_assert(sizeof(sync_set_deadline) == 16 && offsetof(sync_set_deadline, pad) == 8);
static_assert(sizeof(sw_sync_create_fence_data) == 40 &&
              offsetof(sw_sync_create_fence_data, fence) == 36);
static_assert(sizeof(sw_sync_get_deadline) == 16 && offsetof(sw_sync_get_deadline, fence_fd) == 12);

// A deadline's round trip written with the kernel's names only: a sw_sync timeline and fence,
// SYNC_IOC_SET_DEADLINE on the fence's sync file, SW_SYNC_GET_DEADLINE reading it back, INC
// signalling it, SYNC_IOC_FILE_INFO seeing it signalled.
TEST(LinuxUapi, ADeadlineRoundTripWithTheKernelsNamesOnly) {
  auto ctx = Context::create();
  const Context::Scope scope(*ctx);
  auto timeline = uapi::open("/sys/kernel/debug/sync/sw_sync", O_RDWR | O_CLOEXEC);
  ASSERT_TRUE(timeline.ok()) << timeline.error().describe();
  struct sw_sync_create_fence_data create {};
  create.value = 1;
  std::strncpy(create.name, "deadline", sizeof(create.name) - 1);
  ASSERT_TRUE(uapi::ioctl(timeline->get(), SW_SYNC_IOC_CREATE_FENCE, &create).ok());
  const UniqueFd fence = UniqueFd::adopt(create.fence);

  struct sw_sync_get_deadline get {};
  get.fence_fd = fence.get();
  EXPECT_EQ(uapi::ioctl(timeline->get(), SW_SYNC_GET_DEADLINE, &get).code(), ENOENT);  // none set

  struct sync_set_deadline set {};
  set.deadline_ns = 123456789;
  set.pad = 1;
  EXPECT_EQ(uapi::ioctl(fence.get(), SYNC_IOC_SET_DEADLINE, &set).code(), EINVAL);  // pad != 0
  set.pad = 0;
  ASSERT_TRUE(uapi::ioctl(fence.get(), SYNC_IOC_SET_DEADLINE, &set).ok());
  ASSERT_TRUE(uapi::ioctl(timeline->get(), SW_SYNC_GET_DEADLINE, &get).ok());
  EXPECT_EQ(get.deadline_ns, 123456789U);

  struct sync_file_info info {};
  ASSERT_TRUE(uapi::ioctl(fence.get(), SYNC_IOC_FILE_INFO, &info).ok());
  EXPECT_EQ(info.status, 0);  // pending
  __u32 step = 1;
  ASSERT_TRUE(uapi::ioctl(timeline->get(), SW_SYNC_IOC_INC, &step).ok());
  info = {};
  ASSERT_TRUE(uapi::ioctl(fence.get(), SYNC_IOC_FILE_INFO, &info).ok());
  EXPECT_EQ(info.status, 1);  // signalled
  EXPECT_EQ(info.num_fences, 1U);
}

}  // namespace
}  // namespace zbuf::uapi
