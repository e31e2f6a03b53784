// Test rig for the IIO tests: a context with one emulated IIO device registered as iio:device0,
// its character device open and buffer 0's file got with IIO_BUFFER_GET_FD_IOCTL, and fd-level
// helpers with the kernel's names: the sysfs attributes, the DMABUF ioctls, dma-heap buffers,
// poll, and the sync files a buffer's fences are seen through (EXPORT_SYNC_FILE, FILE_INFO).
// Calls return what the kernel's return: a value, or minus the errno.
//
// The device object stays with the rig as the test bench, as a logic analyser on the board
// (devices/board.h): what the hardware counted (IioBufferStats), the DMA engine's fault
// injection and idleness. Nothing drives the buffer through it.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "support/fd_calls.h"
#include "zbuf/base/sys.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/core/fence.h"
#include "zbuf/core/resv.h"
#include "zbuf/devices/iio/iio_device.h"
#include "zbuf/devices/iio/iio_files.h"
#include "zbuf/devices/iio/iio_uapi.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"

namespace zbuf::iio::testing {

constexpr const char* kDevPath = "/dev/iio:device0";
constexpr const char* kSysfsPath = "/sys/bus/iio/devices/iio:device0";

// What SYNC_IOC_FILE_INFO tells of a sync file.
struct SyncInfo {
  std::string name;  // "<driver>-<timeline><context>-<seqno>" for a single fence
  int status = 0;    // 1 signalled, 0 active, or the first error
  std::vector<uapi::SyncFenceInfo> fences;
};

struct IioRig : testing_support::FdCalls {
  // An ADC ("adc") or a DAC ("dac") of 4096 frames of 8 bytes (4 fileio blocks of 8 KiB).
  static IioDeviceConfig config(IioDirection dir = IioDirection::Input) {
    IioDeviceConfig c;
    c.name = dir == IioDirection::Input ? "adc" : "dac";
    c.direction = dir;
    c.length = 4096;
    return c;
  }

  // `getFd`: whether buffer 0 is opened (IIO_BUFFER_GET_FD_IOCTL) into `buf`.
  explicit IioRig(const IioDeviceConfig& c = config(), bool getFd = true)
      : FdCalls(uapi::Context::create()), device(IioDevice::create(c).value()) {
    EXPECT_TRUE(addToContext(*ctx, device, 0).ok());
    dev = mustOpen(kDevPath);
    if (getFd) {
      const long fd = getBufferFd();
      EXPECT_GE(fd, 0) << "GET_FD: " << -fd;
      buf = UniqueFd::adopt(static_cast<int>(fd));
    }
  }
  ~IioRig() {
    if (buf) {
      (void)ctx->close(std::move(buf));
    }
  }
  IioRig(const IioRig&) = delete;
  IioRig& operator=(const IioRig&) = delete;
  IioRig(IioRig&&) = delete;
  IioRig& operator=(IioRig&&) = delete;

  // --- the test bench ---------------------------------------------------------------------------
  // The hardware's buffer 0: its counters, its DMA engine's fault injection and idleness.
  [[nodiscard]] IioBuffer& bench() const { return *device->buffer(0).value(); }
  [[nodiscard]] IioBufferStats stats() const { return bench().stats(); }
  // How many devices the buffer behind `dmabuf` is attached to.
  std::size_t attachments(int dmabuf) {
    auto b = ctx->bufferFromFd(dmabuf);
    EXPECT_TRUE(b.ok());
    return b.ok() ? (*b)->attachments().size() : 0;
  }

  // --- files and the generic calls --------------------------------------------------------------
  UniqueFd mustOpen(const std::string& path, int flags = O_RDWR) {
    auto fd = ctx->open(path, flags);
    EXPECT_TRUE(fd.ok()) << path << ": " << (fd.ok() ? "" : fd.error().describe());
    return fd.ok() ? std::move(*fd) : UniqueFd();
  }
  using FdCalls::read;
  using FdCalls::write;
  // read and write on the buffer file.
  long read(std::span<std::byte> out) { return read(buf.get(), out); }
  long write(std::span<const std::byte> in) { return write(buf.get(), in); }
  // Reads exactly out.size() bytes from the buffer file.
  void readAll(std::span<std::byte> out) {
    std::size_t got = 0;
    while (got < out.size()) {
      const long r = read(out.subspan(got));
      ASSERT_GT(r, 0) << "read: " << r;
      got += static_cast<std::size_t>(r);
    }
  }
  // Writes all of `in` to the buffer file.
  void writeAll(std::span<const std::byte> in) {
    std::size_t put = 0;
    while (put < in.size()) {
      const long r = write(in.subspan(put));
      ASSERT_GT(r, 0) << "write: " << r;
      put += static_cast<std::size_t>(r);
    }
  }
  // FIONBIO on `fd` (the buffer file by default): O_NONBLOCK of its description.
  void setNonBlocking(bool on, int fd = -1) {
    int v = on ? 1 : 0;
    ASSERT_EQ(ioctl(fd < 0 ? buf.get() : fd, FIONBIO, &v), 0);
  }
  // poll(2) on one fd: its revents, 0 on timeout, or minus the errno.
  int poll(int fd, short events, int timeoutMs) {
    std::array<struct pollfd, 1> p{{{fd, events, 0}}};
    auto r = ctx->poll(p, timeoutMs);
    if (!r.ok()) {
      return -r.code();
    }
    return *r == 0 ? 0 : p[0].revents;
  }

  // --- sysfs
  // -------------------------------------------------------------------------------------- `attr`
  // is relative to /sys/bus/iio/devices/iio:device0 ("buffer0/enable").
  std::string readAttr(const std::string& attr) {
    UniqueFd fd = mustOpen(std::string(kSysfsPath) + "/" + attr, O_RDONLY);
    std::array<std::byte, 256> text{};
    auto n = ctx->read(fd.get(), text);
    EXPECT_TRUE(n.ok());
    return n.ok() ? std::string(reinterpret_cast<const char*>(text.data()), *n) : std::string();
  }
  // 0, or the errno of the open or the write.
  int writeAttr(const std::string& attr, const std::string& value) {
    auto fd = ctx->open(std::string(kSysfsPath) + "/" + attr, O_WRONLY);
    if (!fd.ok()) {
      return fd.code();
    }
    return ctx->write(fd->get(), std::as_bytes(std::span(value))).code();
  }
  int enable() { return writeAttr("buffer0/enable", "1\n"); }
  int disable() { return writeAttr("buffer0/enable", "0\n"); }
  bool enabled() { return readAttr("buffer0/enable") == "1\n"; }
  std::uint64_t attrValue(const std::string& attr) { return std::stoull(readAttr(attr)); }

  // --- the character device and the DMABUF ioctls ------------------------------------------------
  // IIO_BUFFER_GET_FD_IOCTL on the character device: the new fd, or minus the errno.
  long getBufferFd(int index = 0) {
    int arg = index;
    const long r = ioctl(dev.get(), IIO_BUFFER_GET_FD_IOCTL, &arg);
    return r < 0 ? r : arg;
  }
  long attach(int dmabuf) { return ioctlFd(buf.get(), IIO_BUFFER_DMABUF_ATTACH_IOCTL, dmabuf); }
  long detach(int dmabuf) { return ioctlFd(buf.get(), IIO_BUFFER_DMABUF_DETACH_IOCTL, dmabuf); }
  long enqueue(int dmabuf, std::uint64_t bytesUsed, std::uint32_t flags = 0) {
    iio_dmabuf req{static_cast<std::uint32_t>(dmabuf), flags, bytesUsed};
    return ioctl(buf.get(), IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req);
  }

  // --- buffers and fences ------------------------------------------------------------------------
  // A system-heap buffer (DMA_HEAP_IOCTL_ALLOC on /dev/dma_heap/system).
  UniqueFd allocate(std::uint64_t len) {
    UniqueFd heap = mustOpen("/dev/dma_heap/system", O_RDONLY);
    uapi::DmaHeapAllocationData data{};
    data.len = len;
    data.fdFlags = O_RDWR | O_CLOEXEC;
    EXPECT_EQ(ioctl(heap.get(), uapi::kDmaHeapIoctlAlloc, &data), 0);
    return UniqueFd::adopt(static_cast<int>(data.fd));
  }
  sys::Mapping map(int dmabuf, std::size_t len, int prot = PROT_READ | PROT_WRITE) {
    auto m = ctx->mmap(dmabuf, len, prot, MAP_SHARED);
    EXPECT_TRUE(m.ok());
    return m.ok() ? std::move(*m) : sys::Mapping();
  }
  // DMA_BUF_IOCTL_SYNC.
  long sync(int dmabuf, std::uint64_t flags) {
    uapi::DmaBufSync s{flags};
    return ioctl(dmabuf, uapi::kDmaBufIoctlSync, &s);
  }
  // DMA_BUF_IOCTL_EXPORT_SYNC_FILE: READ gives the writers' fences, WRITE every fence.
  UniqueFd exportSyncFile(int dmabuf, std::uint32_t flags) {
    uapi::DmaBufExportSyncFile data{flags, -1};
    EXPECT_EQ(ioctl(dmabuf, uapi::kDmaBufIoctlExportSyncFile, &data), 0);
    return UniqueFd::adopt(data.fd);
  }
  // SYNC_IOC_FILE_INFO, with every fence.
  SyncInfo info(int syncFile) {
    uapi::SyncFileInfo head{};
    EXPECT_EQ(ioctl(syncFile, uapi::kSyncIocFileInfo, &head), 0);
    SyncInfo out;
    out.fences.resize(head.numFences);
    uapi::SyncFileInfo all{};
    all.numFences = head.numFences;
    all.syncFenceInfo = reinterpret_cast<std::uintptr_t>(out.fences.data());
    EXPECT_EQ(ioctl(syncFile, uapi::kSyncIocFileInfo, &all), 0);
    out.name = std::string(all.name, ::strnlen(all.name, sizeof all.name));
    out.status = all.status;
    return out;
  }
  // Waits (poll POLLIN) until the sync file signals; its status, or 0 if it did not in time.
  int waitStatus(int syncFile, int timeoutMs = 10'000) {
    if ((poll(syncFile, POLLIN, timeoutMs) & POLLIN) == 0) {
      return 0;
    }
    return info(syncFile).status;
  }
  // The newest IIO fence on `dmabuf` (what the last ENQUEUE added), read from its reservation
  // object as debugfs bufinfo lists it; null if there is none. The test bench's view: a
  // signalled fence is no longer exported as a sync file.
  FencePtr lastFence(int dmabuf) {
    auto b = ctx->bufferFromFd(dmabuf);
    EXPECT_TRUE(b.ok());
    FencePtr last;
    if (b.ok()) {
      for (const Resv::Entry& e : (*b)->resv().entries(ResvUsage::Bookkeep)) {
        if (e.fence->driverName() == "iio") {
          last = e.fence;
        }
      }
    }
    return last;
  }
  // ENQUEUE, returning the fence it added (null if the enqueue failed).
  FencePtr enqueueFence(int dmabuf, std::uint64_t bytesUsed, std::uint32_t flags = 0) {
    const long r = enqueue(dmabuf, bytesUsed, flags);
    EXPECT_EQ(r, 0) << "ENQUEUE";
    return r == 0 ? lastFence(dmabuf) : nullptr;
  }
  // Another device's pending access to `dmabuf`: an unsignalled fence of its own, added with
  // DMA_BUF_IOCTL_IMPORT_SYNC_FILE as READ or WRITE. The test signals it as that device would.
  std::shared_ptr<TimelineFence> importForeignFence(int dmabuf, std::uint32_t usage) {
    static auto timeline = Timeline::create("test", "foreign");
    auto fence = timeline->createFence();
    auto sf = ctx->installSyncFile(fence);
    EXPECT_TRUE(sf.ok());
    uapi::DmaBufImportSyncFile data{usage, sf.ok() ? sf->get() : -1};
    EXPECT_EQ(ioctl(dmabuf, uapi::kDmaBufIoctlImportSyncFile, &data), 0);
    return fence;
  }

  std::shared_ptr<IioDevice> device;
  UniqueFd dev;  // /dev/iio:device0
  UniqueFd buf;  // buffer 0's file (GET_FD)
};

}  // namespace zbuf::iio::testing
