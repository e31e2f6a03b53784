// Kernel-style code against the IIO files of a context: the character device and its sysfs
// attributes opened by path, GET_FD, ATTACH, DETACH, ENQUEUE, read, poll and close through the
// fd-level calls only, with the kernel's errnos.
// ctest-labels: concurrency
#include "zbuf/devices/iio/iio_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <string>
#include <vector>

#include "support/iio_rig.h"
#include "zbuf/base/sys.h"
#include "zbuf/core/buffer.h"
#include "zbuf/devices/iio/iio_uapi.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"

namespace zbuf::iio {
namespace {

using testing::IioRig;
using testing::kDevPath;

// The board of these tests: an AD9361's ADC, buffer 0 not opened yet.
struct Machine : IioRig {
  explicit Machine(IioDeviceConfig config = defaultConfig()) : IioRig(config, false) {}
  static IioDeviceConfig defaultConfig() {
    IioDeviceConfig config;
    config.name = "cf-ad9361-lpc";
    config.length = 4096;
    return config;
  }
  int getFd() {
    const long fd = getBufferFd();
    EXPECT_GE(fd, 0) << "GET_FD: " << -fd;
    return static_cast<int>(fd);
  }
};

TEST(IioFiles, NumbersAndStructMatchTheKernel) {
  EXPECT_EQ(IIO_BUFFER_GET_FD_IOCTL, 0xC0046991UL);
  EXPECT_EQ(IIO_BUFFER_DMABUF_ATTACH_IOCTL, 0x40046992UL);
  EXPECT_EQ(IIO_BUFFER_DMABUF_DETACH_IOCTL, 0x40046993UL);
  EXPECT_EQ(IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, 0x40106994UL);
  EXPECT_EQ(IIO_BUFFER_DMABUF_CYCLIC, 1U);
  EXPECT_EQ(IIO_BUFFER_DMABUF_SUPPORTED_FLAGS, 1U);
  EXPECT_EQ(sizeof(iio_dmabuf), 16U);
}

// The libiio local-dmabuf flow, written as against the kernel: paths, sysfs, ioctls, poll.
TEST(IioFiles, KernelStyleDmabufStreaming) {
  Machine m;
  auto& k = *m.ctx;
  const int fd = m.getFd();
  ASSERT_GE(fd, 0);
  EXPECT_TRUE((sys::getFdFlags(fd).value() & FD_CLOEXEC) != 0);
  EXPECT_EQ(k.fdPath(fd).value(), "anon_inode:iio:buffer");

  constexpr std::uint64_t kSize = 64 * 1024;
  std::vector<UniqueFd> blocks;
  std::vector<sys::Mapping> maps;
  for (int i = 0; i < 4; ++i) {
    blocks.push_back(m.allocate(kSize));
    maps.push_back(std::move(k.mmap(blocks.back().get(), kSize, PROT_READ, MAP_SHARED).value()));
    int dmabuf = blocks.back().get();
    ASSERT_TRUE(k.ioctl(fd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &dmabuf).ok());
  }
  ASSERT_EQ(m.writeAttr("buffer0/enable", "1\n"), 0);
  EXPECT_EQ(m.readAttr("buffer0/enable"), "1\n");
  PatternChecker checker(m.device->format(), PatternKind::Ramp);
  std::uint64_t offset = 0;
  uapi::DmaBufSync start{uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRead};
  uapi::DmaBufSync end{uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRead};
  for (int round = 0; round < 3; ++round) {
    for (auto& b : blocks) {
      iio_dmabuf req{static_cast<std::uint32_t>(b.get()), 0, kSize};
      auto r = k.ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req);
      ASSERT_TRUE(r.ok()) << r.error().describe();
    }
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      std::array<struct pollfd, 1> p{{{blocks[i].get(), POLLIN, 0}}};
      ASSERT_EQ(k.poll(p, 5000).value(), 1);
      ASSERT_TRUE(k.ioctl(blocks[i].get(), uapi::kDmaBufIoctlSync, &start).ok());
      EXPECT_EQ(checker.countMismatches(maps[i].bytes(), offset), 0U);
      ASSERT_TRUE(k.ioctl(blocks[i].get(), uapi::kDmaBufIoctlSync, &end).ok());
      offset += kSize;
    }
  }
  int dmabuf = blocks[0].get();
  ASSERT_TRUE(k.ioctl(fd, IIO_BUFFER_DMABUF_DETACH_IOCTL, &dmabuf).ok());
  EXPECT_EQ(k.ioctl(fd, IIO_BUFFER_DMABUF_DETACH_IOCTL, &dmabuf).code(), EPERM);
  ASSERT_TRUE(k.close(fd).ok());  // detaches the other three
  for (auto& b : blocks) {
    EXPECT_EQ(k.bufferFromFd(b.get()).value()->attachments().size(), 0U);
  }
}

TEST(IioFiles, KernelStyleFileioAndTheLegacyDeviceRead) {
  Machine m;
  auto& k = *m.ctx;
  ASSERT_EQ(m.writeAttr("buffer/enable", "1"), 0);
  std::vector<std::byte> out(8 * 1024);
  // The character device's read is buffer 0's (the legacy interface libiio still uses).
  auto r = k.read(m.dev.get(), out);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_GT(*r, 0U);
  PatternChecker checker(m.device->format(), PatternKind::Ramp);
  EXPECT_EQ(checker.countMismatches(std::span(out).first(*r), 0), 0U);
  EXPECT_EQ(k.write(m.dev.get(), out).code(), EPERM);  // an input buffer
}

TEST(IioFiles, TheTestModeSelectsThePattern) {
  Machine m;
  auto& k = *m.ctx;
  EXPECT_EQ(m.readAttr("test_mode"), "ramp\n");
  EXPECT_EQ(m.readAttr("test_mode_available"), "ramp prbs\n");
  EXPECT_EQ(m.writeAttr("test_mode", "sine\n"), EINVAL);
  EXPECT_EQ(m.writeAttr("test_mode_available", "ramp"), EACCES);  // read-only
  ASSERT_EQ(m.writeAttr("test_mode", "prbs\n"), 0);
  EXPECT_EQ(m.readAttr("test_mode"), "prbs\n");
  ASSERT_EQ(m.writeAttr("buffer/enable", "1"), 0);
  EXPECT_EQ(m.writeAttr("test_mode", "ramp"), EBUSY);  // not while streaming
  std::vector<std::byte> out(8 * 1024);
  auto r = k.read(m.dev.get(), out);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  ASSERT_GT(*r, 0U);
  PatternChecker prbs(m.device->format(), PatternKind::Prbs);
  EXPECT_EQ(prbs.countMismatches(std::span(out).first(*r), 0), 0U);
  PatternChecker ramp(m.device->format(), PatternKind::Ramp);
  EXPECT_GT(ramp.countMismatches(std::span(out).first(*r), 0), 0U);
  ASSERT_EQ(m.writeAttr("buffer/enable", "0"), 0);
  EXPECT_EQ(m.writeAttr("test_mode", "ramp"), 0);
}

TEST(IioFiles, PollWakesWhenABlockCompletes) {
  IioDeviceConfig config = Machine::defaultConfig();
  config.sampleRate = 1'000'000;
  Machine m(config);
  auto& k = *m.ctx;
  const int fd = m.getFd();
  std::array<struct pollfd, 1> p{{{fd, POLLIN, 0}}};
  EXPECT_EQ(k.poll(p, 0).value(), 0);  // disabled: nothing to read
  ASSERT_EQ(m.writeAttr("buffer0/enable", "1"), 0);
  ASSERT_EQ(k.poll(p, 10'000).value(), 1);
  EXPECT_TRUE((p[0].revents & POLLIN) != 0);
  std::vector<std::byte> out(4096);
  EXPECT_TRUE(k.read(fd, out).ok());
  ASSERT_TRUE(k.close(fd).ok());
}

TEST(IioFiles, NonBlockingComesFromTheFileFlags) {
  IioDeviceConfig config = Machine::defaultConfig();
  config.sampleRate = 1;  // nothing arrives
  Machine m(config);
  auto& k = *m.ctx;
  const int fd = m.getFd();
  int one = 1;
  ASSERT_TRUE(k.ioctl(fd, FIONBIO, &one).ok());  // handled for every file, as do_vfs_ioctl
  EXPECT_TRUE((sys::getFileFlags(fd).value() & O_NONBLOCK) != 0);
  ASSERT_EQ(m.writeAttr("buffer0/enable", "1"), 0);
  std::vector<std::byte> out(64);
  EXPECT_EQ(k.read(fd, out).code(), EAGAIN);
  ASSERT_TRUE(k.close(fd).ok());
}

TEST(IioFiles, TheCharacterDeviceOpensOnceAtATime) {
  Machine m;
  EXPECT_EQ(m.ctx->open(kDevPath, O_RDWR).code(), EBUSY);  // iio_chrdev_open's busy bit
  ASSERT_TRUE(m.ctx->close(std::move(m.dev)).ok());
  EXPECT_TRUE(m.ctx->open(kDevPath, O_RDWR).ok());
}

TEST(IioFiles, GetFdErrors) {
  Machine m;
  auto& k = *m.ctx;
  int idx = 1;
  EXPECT_EQ(k.ioctl(m.dev.get(), IIO_BUFFER_GET_FD_IOCTL, &idx).code(), ENODEV);
  idx = -1;
  EXPECT_EQ(k.ioctl(m.dev.get(), IIO_BUFFER_GET_FD_IOCTL, &idx).code(), ENODEV);
  const int fd = m.getFd();
  int again = 0;
  EXPECT_EQ(k.ioctl(m.dev.get(), IIO_BUFFER_GET_FD_IOCTL, &again).code(), EBUSY);
  EXPECT_EQ(k.ioctl(m.dev.get(), IIO_BUFFER_GET_FD_IOCTL, nullptr).code(), EFAULT);
  EXPECT_EQ(k.ioctl(m.dev.get(), 0x1234, &again).code(), ENODEV);  // unhandled on the device
  ASSERT_TRUE(k.close(fd).ok());
  EXPECT_TRUE(k.ioctl(m.dev.get(), IIO_BUFFER_GET_FD_IOCTL, &again).ok());  // free again
  ASSERT_TRUE(k.close(again).ok());
}

// A buffer fd closed with close(2) behind zbuf's back is released too (the table notices the
// last close), so the next GET_FD is not EBUSY.
TEST(IioFiles, CloseWithPlainCloseReleasesTheBuffer) {
  Machine m;
  auto& k = *m.ctx;
  UniqueFd block = m.allocate(4096);
  const int fd = m.getFd();
  int dmabuf = block.get();
  ASSERT_TRUE(k.ioctl(fd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &dmabuf).ok());
  ASSERT_EQ(::close(fd), 0);
  k.files().reap();
  int again = 0;
  ASSERT_TRUE(k.ioctl(m.dev.get(), IIO_BUFFER_GET_FD_IOCTL, &again).ok());
  EXPECT_EQ(k.bufferFromFd(block.get()).value()->attachments().size(), 0U);
  ASSERT_TRUE(k.close(again).ok());
}

TEST(IioFiles, BufferFdErrors) {
  Machine m;
  auto& k = *m.ctx;
  const int fd = m.getFd();
  int arg = 0;
  EXPECT_EQ(k.ioctl(fd, 0x1234, &arg).code(), EINVAL);  // unknown ioctl on the buffer fd
  EXPECT_EQ(k.ioctl(fd, uapi::kDmaBufIoctlSync, &arg).code(), EINVAL);
  int bad = -1;
  EXPECT_EQ(k.ioctl(fd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &bad).code(), EBADF);
  int notBuffer = m.dev.get();  // an open fd that is not a DMABUF
  EXPECT_EQ(k.ioctl(fd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &notBuffer).code(), EINVAL);
  EXPECT_EQ(k.ioctl(fd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, nullptr).code(), EFAULT);
  UniqueFd b = m.allocate(4096);
  iio_dmabuf req{static_cast<std::uint32_t>(b.get()), 0x4, 4096};
  EXPECT_EQ(k.ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req).code(), EINVAL);  // flags
  req.flags = IIO_BUFFER_DMABUF_CYCLIC;
  EXPECT_EQ(k.ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req).code(), EINVAL);  // input
  req.flags = 0;
  req.fd = static_cast<std::uint32_t>(-1);
  EXPECT_EQ(k.ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req).code(), EBADF);
  req.fd = static_cast<std::uint32_t>(b.get());
  EXPECT_EQ(k.ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req).code(), EPERM);  // not attached
  req.bytes_used = 0;
  EXPECT_EQ(k.ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req).code(), EINVAL);
  EXPECT_EQ(k.ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, nullptr).code(), EFAULT);
  // Any alignment: the argument is copied in, never read through a typed pointer.
  alignas(8) std::array<std::byte, 32> raw{};
  iio_dmabuf unaligned{static_cast<std::uint32_t>(b.get()), 0, 0};
  std::memcpy(raw.data() + 1, &unaligned, sizeof unaligned);
  EXPECT_EQ(k.ioctl(fd, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, raw.data() + 1).code(), EINVAL);
  // Not an IIO fd at all: a pipe goes to the real ioctl(2).
  auto pipe = std::move(sys::pipe().value());
  EXPECT_EQ(k.ioctl(pipe.first.get(), IIO_BUFFER_GET_FD_IOCTL, &arg).code(), ENOTTY);
  EXPECT_EQ(k.ioctl(-1, IIO_BUFFER_GET_FD_IOCTL, &arg).code(), EBADF);
  ASSERT_TRUE(k.close(fd).ok());
  EXPECT_EQ(k.close(fd).code(), EBADF);
}

// iio_buffer_attach_dmabuf: without DMABUF support it is EPERM before the argument is read.
TEST(IioFiles, AttachWithoutDmabufSupportIsEpermFirst) {
  IioDeviceConfig config = Machine::defaultConfig();
  config.dmabuf = false;
  Machine m(config);
  const int fd = m.getFd();
  int bad = -1;
  EXPECT_EQ(m.ctx->ioctl(fd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, nullptr).code(), EPERM);
  EXPECT_EQ(m.ctx->ioctl(fd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &bad).code(), EPERM);
  int notBuffer = m.dev.get();
  EXPECT_EQ(m.ctx->ioctl(fd, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &notBuffer).code(), EPERM);
  ASSERT_TRUE(m.ctx->close(fd).ok());
}

TEST(IioFiles, SysfsAttributes) {
  Machine m;
  const std::string sys(testing::kSysfsPath);
  EXPECT_EQ(m.readAttr("name"), "cf-ad9361-lpc\n");
  EXPECT_EQ(m.ctx->open(sys + "/name", O_WRONLY).code(), EACCES);  // read-only attribute
  EXPECT_EQ(m.readAttr("buffer0/length"), "4096\n");
  EXPECT_EQ(m.writeAttr("buffer0/length", "8192\n"), 0);
  EXPECT_EQ(m.readAttr("buffer0/length"), "8192\n");
  EXPECT_EQ(m.readAttr("buffer/length"), "8192\n");  // buffer/ is buffer0
  EXPECT_EQ(m.writeAttr("buffer0/length", "lots"), EINVAL);
  EXPECT_EQ(m.writeAttr("buffer0/watermark", "0"), EINVAL);
  EXPECT_EQ(m.writeAttr("buffer0/watermark", "1024"), 0);
  EXPECT_EQ(m.readAttr("buffer0/watermark"), "1024\n");
  EXPECT_EQ(m.writeAttr("buffer0/enable", "maybe"), EINVAL);
  EXPECT_EQ(m.writeAttr("buffer0/enable", "1"), 0);
  EXPECT_EQ(m.writeAttr("buffer0/length", "4096"), EBUSY);  // while enabled
  EXPECT_EQ(m.writeAttr("buffer0/enable", "0"), 0);
  EXPECT_EQ(m.writeAttr("sampling_frequency", "30720000"), 0);
  EXPECT_EQ(m.readAttr("sampling_frequency"), "30720000\n");
  EXPECT_EQ(m.readAttr("scan_elements/in_voltage0_en"), "1\n");
  EXPECT_EQ(m.readAttr("scan_elements/in_voltage3_index"), "3\n");
  EXPECT_EQ(m.readAttr("scan_elements/in_voltage1_type"), "le:s16/16>>0\n");
  EXPECT_EQ(m.readAttr("buffer0/in_voltage2_en"), "1\n");
  EXPECT_EQ(m.writeAttr("scan_elements/in_voltage0_en", "0"), EINVAL);  // documented
  EXPECT_EQ(m.ctx->open(sys + "/scan_elements/in_voltage4_en", O_RDONLY).code(), ENOENT);
  auto st = m.ctx->fstat(m.mustOpen(sys + "/name", O_RDONLY).get());
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, 4096U);
}

TEST(IioFiles, AnAttributeReadsToItsEndAndSeeksBack) {
  Machine m;
  UniqueFd fd = m.mustOpen(std::string(testing::kSysfsPath) + "/name", O_RDONLY);
  std::array<std::byte, 4> small{};
  std::string got;
  for (;;) {
    auto n = m.ctx->read(fd.get(), small);
    ASSERT_TRUE(n.ok());
    if (*n == 0) {
      break;
    }
    got.append(reinterpret_cast<const char*>(small.data()), *n);
  }
  EXPECT_EQ(got, "cf-ad9361-lpc\n");
  EXPECT_EQ(m.ctx->lseek(fd.get(), 0, SEEK_SET).value(), 0);
  EXPECT_EQ(m.ctx->read(fd.get(), small).value(), 4U);
}

}  // namespace
}  // namespace zbuf::iio
