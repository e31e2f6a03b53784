// Kernel-style code against the IIO fd interface: the ioctl numbers, GET_FD, ATTACH, DETACH,
// ENQUEUE through zbuf::iio::ioctl, and the errnos of the dispatcher.
#include "zbuf/devices/iio/iio_ioctl.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <chrono>
#include <vector>

#include "zbuf/base/sys.h"
#include "zbuf/core/resv.h"
#include "zbuf/heaps/system_heap.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/dma_buf.h"

namespace zbuf::iio {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<IioDevice> makeAdc() {
  IioDeviceConfig config;
  config.name = "cf-ad9361-lpc";
  config.length = 4096;
  return std::move(IioDevice::create(config).value());
}

TEST(IioIoctl, NumbersAndStructMatchTheKernel) {
  EXPECT_EQ(IIO_BUFFER_GET_FD_IOCTL, 0xC0046991UL);
  EXPECT_EQ(IIO_BUFFER_DMABUF_ATTACH_IOCTL, 0x40046992UL);
  EXPECT_EQ(IIO_BUFFER_DMABUF_DETACH_IOCTL, 0x40046993UL);
  EXPECT_EQ(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, 0x40106994UL);
  EXPECT_EQ(IIO_BUFFER_DMABUF_CYCLIC, 1U);
  EXPECT_EQ(IIO_BUFFER_DMABUF_SUPPORTED_FLAGS, 1U);
  EXPECT_EQ(sizeof(iio_dmabuf), 16U);
}

// The libiio local-dmabuf flow, written as against the kernel.
TEST(IioIoctl, KernelStyleDmabufStreaming) {
  auto adc = makeAdc();
  UniqueFd dev = std::move(openDeviceFd(adc).value());
  int fd = 0;
  ASSERT_TRUE(ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &fd).ok());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE((sys::getFdFlags(fd).value() & FD_CLOEXEC) != 0);

  constexpr std::uint64_t kSize = 64 * 1024;
  std::vector<BufferPtr> blocks;
  std::vector<sys::Mapping> maps;
  for (int i = 0; i < 4; ++i) {
    blocks.push_back(std::move(SystemHeap::instance()->allocate(kSize).value()));
    maps.push_back(
        std::move(blocks.back()->mmap(0, kSize, PROT_READ | PROT_WRITE, MAP_SHARED).value()));
    int dmabuf = blocks.back()->fd().get();
    ASSERT_TRUE(ioctl(fd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &dmabuf).ok());
  }
  ASSERT_TRUE(adc->buffer(0).value()->enable().ok());
  PatternChecker checker(adc->format(), PatternKind::Ramp);
  std::uint64_t offset = 0;
  for (int round = 0; round < 3; ++round) {
    for (auto& b : blocks) {
      iio_dmabuf req{static_cast<std::uint32_t>(b->fd().get()), 0, kSize};
      auto r = ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req);
      ASSERT_TRUE(r.ok()) << r.error().describe();
    }
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      const int bfd = blocks[i]->fd().get();
      auto ready = uapi::pollBuffer(bfd, POLLIN, std::chrono::milliseconds(5000));
      ASSERT_TRUE(ready.ok());
      ASSERT_TRUE((*ready & POLLIN) != 0);
      ASSERT_TRUE(uapi::sync(bfd, uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRead).ok());
      EXPECT_EQ(checker.countMismatches(maps[i].bytes(), offset), 0U);
      ASSERT_TRUE(uapi::sync(bfd, uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRead).ok());
      offset += kSize;
    }
  }
  int dmabuf = blocks[0]->fd().get();
  ASSERT_TRUE(ioctl(fd, IIO_BUFFER_DMABUF_DETACH_IOCTL, &dmabuf).ok());
  EXPECT_EQ(ioctl(fd, IIO_BUFFER_DMABUF_DETACH_IOCTL, &dmabuf).code(), EPERM);
  ASSERT_TRUE(close(fd).ok());  // detaches the other three
  for (auto& b : blocks) {
    EXPECT_EQ(b->attachments().size(), 0U);
  }
}

TEST(IioIoctl, KernelStyleFileio) {
  auto adc = makeAdc();
  UniqueFd dev = std::move(openDeviceFd(adc).value());
  int fd = 0;
  ASSERT_TRUE(ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &fd).ok());
  ASSERT_TRUE(adc->buffer(0).value()->enable().ok());
  std::vector<std::byte> out(8 * 1024);
  auto r = read(fd, out);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(*r, 0U);
  PatternChecker checker(adc->format(), PatternKind::Ramp);
  EXPECT_EQ(checker.countMismatches(std::span(out).first(*r), 0), 0U);
  EXPECT_EQ(write(fd, out).code(), EPERM);
  EXPECT_EQ(read(dev.get(), out).code(), EINVAL);  // the device fd has no buffer ops here
  ASSERT_TRUE(close(fd).ok());
}

TEST(IioIoctl, NonBlockingComesFromTheFileFlags) {
  IioDeviceConfig config;
  config.length = 4096;
  config.sampleRate = 1;  // nothing arrives
  auto adc = std::move(IioDevice::create(config).value());
  UniqueFd dev = std::move(openDeviceFd(adc).value());
  int fd = 0;
  ASSERT_TRUE(ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &fd).ok());
  int one = 1;
  ASSERT_TRUE(sys::ioctl(fd, FIONBIO, &one).ok());  // sets O_NONBLOCK, like fcntl(F_SETFL)
  ASSERT_TRUE(adc->buffer(0).value()->enable().ok());
  std::vector<std::byte> out(64);
  EXPECT_EQ(read(fd, out).code(), EAGAIN);
  ASSERT_TRUE(close(fd).ok());
}

TEST(IioIoctl, GetFdErrors) {
  auto adc = makeAdc();
  UniqueFd dev = std::move(openDeviceFd(adc).value());
  int idx = 1;
  EXPECT_EQ(ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &idx).code(), ENODEV);
  idx = -1;
  EXPECT_EQ(ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &idx).code(), ENODEV);
  int fd = 0;
  ASSERT_TRUE(ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &fd).ok());
  int again = 0;
  EXPECT_EQ(ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &again).code(), EBUSY);
  EXPECT_EQ(ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, nullptr).code(), EFAULT);
  EXPECT_EQ(ioctl(dev.get(), 0x1234, &again).code(), ENODEV);  // unhandled on the device
  ASSERT_TRUE(close(fd).ok());
  EXPECT_TRUE(ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &again).ok());  // free again
  ASSERT_TRUE(close(again).ok());
}

TEST(IioIoctl, BufferFdErrors) {
  auto adc = makeAdc();
  UniqueFd dev = std::move(openDeviceFd(adc).value());
  int fd = 0;
  ASSERT_TRUE(ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &fd).ok());
  int arg = 0;
  EXPECT_EQ(ioctl(fd, 0x1234, &arg).code(), EINVAL);  // unknown ioctl on the buffer fd
  EXPECT_EQ(ioctl(fd, 0x40086200UL /* DMA_BUF_IOCTL_SYNC */, &arg).code(), EINVAL);
  int bad = -1;
  EXPECT_EQ(ioctl(fd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &bad).code(), EBADF);
  int notBuffer = dev.get();  // an open fd that is not a DMABUF
  EXPECT_EQ(ioctl(fd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &notBuffer).code(), EINVAL);
  EXPECT_EQ(ioctl(fd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, nullptr).code(), EFAULT);
  auto b = std::move(SystemHeap::instance()->allocate(4096).value());
  iio_dmabuf req{static_cast<std::uint32_t>(b->fd().get()), 0x4, 4096};
  EXPECT_EQ(ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req).code(), EINVAL);  // flags
  req.flags = IIO_BUFFER_DMABUF_CYCLIC;
  EXPECT_EQ(ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req).code(), EINVAL);  // input
  req.flags = 0;
  req.fd = static_cast<std::uint32_t>(-1);
  EXPECT_EQ(ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req).code(), EBADF);
  req.fd = static_cast<std::uint32_t>(b->fd().get());
  EXPECT_EQ(ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req).code(), EPERM);  // not attached
  req.bytes_used = 0;
  EXPECT_EQ(ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req).code(), EINVAL);
  // Not an IIO fd at all.
  auto pipe = std::move(sys::pipe().value());
  EXPECT_EQ(ioctl(pipe.first.get(), IIO_BUFFER_GET_FD_IOCTL, &arg).code(), ENOTTY);
  EXPECT_EQ(ioctl(-1, IIO_BUFFER_GET_FD_IOCTL, &arg).code(), EBADF);
  ASSERT_TRUE(close(fd).ok());
  EXPECT_EQ(close(fd).code(), EBADF);
}

}  // namespace
}  // namespace zbuf::iio
