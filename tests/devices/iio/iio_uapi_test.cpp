// The IIO buffer uAPI as the emulation uses it (devices/iio/iio_uapi.h): the kernel's request
// numbers and struct iio_dmabuf's layout (include/uapi/linux/iio/buffer.h, v6.9+), the flags
// and the enqueue timeout, checked against the system's header where it has them.
#include "zbuf/devices/iio/iio_uapi.h"

#include <gtest/gtest.h>

#include <cstddef>

namespace zbuf::iio {
namespace {

TEST(IioUapi, TheRequestNumbersAreTheKernels) {
  // _IOWR('i', 0x91, int), _IOW('i', 0x92, int), _IOW('i', 0x93, int),
  // _IOW('i', 0x94, struct iio_dmabuf): the values of Linux 6.12's header.
  EXPECT_EQ(kGetFdIoctl, 0xC0046991UL);
  EXPECT_EQ(kDmabufAttachIoctl, 0x40046992UL);
  EXPECT_EQ(kDmabufDetachIoctl, 0x40046993UL);
  EXPECT_EQ(kDmabufEnqueueIoctl, 0x40106994UL);
#ifdef IIO_BUFFER_DMABUF_ENQUEUE_IOCTL
  EXPECT_EQ(kDmabufEnqueueIoctl, static_cast<unsigned long>(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL));
#endif
#ifdef IIO_BUFFER_GET_FD_IOCTL
  EXPECT_EQ(kGetFdIoctl, static_cast<unsigned long>(IIO_BUFFER_GET_FD_IOCTL));
#endif
}

TEST(IioUapi, StructIioDmabufHasTheKernelsLayout) {
  EXPECT_EQ(sizeof(iio_dmabuf), 16U);
  EXPECT_EQ(offsetof(iio_dmabuf, fd), 0U);
  EXPECT_EQ(offsetof(iio_dmabuf, flags), 4U);
  EXPECT_EQ(offsetof(iio_dmabuf, bytes_used), 8U);
}

TEST(IioUapi, CyclicIsTheOnlyFlagAndTheTimeoutIsTheKernels) {
  EXPECT_EQ(kDmabufCyclic, 1U);                     // IIO_BUFFER_DMABUF_CYCLIC
  EXPECT_EQ(kDmabufSupportedFlags, kDmabufCyclic);  // IIO_BUFFER_DMABUF_SUPPORTED_FLAGS
  EXPECT_EQ(kEnqueueTimeoutMs, 5000U);              // DMABUF_ENQUEUE_TIMEOUT_MS
}

}  // namespace
}  // namespace zbuf::iio
