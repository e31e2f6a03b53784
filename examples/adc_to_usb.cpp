// adc_to_usb: stream 64 MiB from the emulated ADC to the USB host, zero-copy, written the way a
// program for the kernel is written: paths, request numbers and structs of the kernel's uAPI,
// and zbuf's fd-level calls in place of the libc ones (open, ioctl, read, write, poll, close).
// The host at the far end of the cable checks every byte it receives.
//
// Only main()'s first lines are not kernel code: they set up the machine (the board), as a
// device tree and a configfs gadget would on real hardware.
#include <fcntl.h>
#include <poll.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "zbuf/devices/board.h"    // the machine (set-up only)
#include "zbuf/uapi/calls.h"       // zbuf::uapi::open, ioctl, write, poll, close
#include "zbuf/uapi/linux_uapi.h"  // the kernel's <linux/dma-heap.h>, <linux/iio/buffer.h>, ...

namespace k = zbuf::uapi;

namespace {

constexpr std::uint64_t kTotal = 64ULL << 20;
constexpr std::uint64_t kBlock = 1ULL << 20;
constexpr int kBuffers = 4;

int fail(const char* what, const zbuf::Error& e) {
  std::fprintf(stderr, "adc_to_usb: %s: %s\n", what, e.describe().c_str());
  return 1;
}

// echo VALUE > PATH
bool writeAttr(const std::string& path, const std::string& value) {
  auto fd = k::open(path, O_WRONLY);
  if (!fd.ok()) {
    return false;
  }
  const bool ok = k::write(fd->get(), std::as_bytes(std::span(value))).ok();
  (void)k::close(std::move(*fd));
  return ok;
}

}  // namespace

int main() {
  // --- the machine -----------------------------------------------------------------------------
  auto board = zbuf::Board::create(zbuf::uapi::Context::current(), {});
  if (!board.ok()) {
    return fail("board", board.error());
  }

  // --- the application: kernel names only ------------------------------------------------------
  auto iio = k::open("/dev/iio:device0", O_RDWR);
  auto usb = k::open("/dev/usb-ffs/zbuf/ep1", O_RDWR);  // the IN endpoint
  auto heap = k::open("/dev/dma_heap/system", O_RDONLY);
  if (!iio.ok() || !usb.ok() || !heap.ok()) {
    return fail("open", !iio.ok() ? iio.error() : !usb.ok() ? usb.error() : heap.error());
  }
  const std::string sys = "/sys/bus/iio/devices/iio:device0/buffer0/";
  writeAttr(sys + "enable", "0");
  writeAttr(sys + "length", std::to_string(kBlock * kBuffers / 8));  // 4 x 16-bit channels
  int buffer = 0;  // IIO_BUFFER_GET_FD_IOCTL: buffer index in, fd out
  if (auto r = k::ioctl(iio->get(), IIO_BUFFER_GET_FD_IOCTL, &buffer); !r.ok()) {
    return fail("IIO_BUFFER_GET_FD_IOCTL", r.error());
  }

  std::vector<int> dmabufs;
  for (int i = 0; i < kBuffers; ++i) {
    dma_heap_allocation_data alloc{};
    alloc.len = kBlock;
    alloc.fd_flags = O_RDWR | O_CLOEXEC;
    if (auto r = k::ioctl(heap->get(), DMA_HEAP_IOCTL_ALLOC, &alloc); !r.ok()) {
      return fail("DMA_HEAP_IOCTL_ALLOC", r.error());
    }
    int fd = static_cast<int>(alloc.fd);
    if (auto r = k::ioctl(buffer, IIO_BUFFER_DMABUF_ATTACH_IOCTL, &fd); !r.ok()) {
      return fail("IIO_BUFFER_DMABUF_ATTACH_IOCTL", r.error());
    }
    if (auto r = k::ioctl(usb->get(), FUNCTIONFS_DMABUF_ATTACH, &fd); !r.ok()) {
      return fail("FUNCTIONFS_DMABUF_ATTACH", r.error());
    }
    dmabufs.push_back(fd);
  }
  writeAttr(sys + "enable", "1");

  // Each block: ADC fills it (ENQUEUE), poll until no writer is pending, hand it to the USB
  // endpoint (TRANSFER), poll until nothing is pending, and give it back to the ADC.
  std::uint64_t sent = 0;
  std::uint64_t queued = 0;
  std::array<struct pollfd, 1> p{};
  for (int i = 0; queued < kTotal && i < kBuffers; ++i, queued += kBlock) {
    iio_dmabuf req{static_cast<std::uint32_t>(dmabufs[i]), 0, kBlock};
    (void)k::ioctl(buffer, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req);
  }
  for (int i = 0; sent < kTotal; i = (i + 1) % kBuffers) {
    p[0] = {dmabufs[i], POLLIN, 0};  // the ADC's write fence signalled
    if (auto r = k::poll(p, 5000); !r.ok() || *r == 0) {
      return fail("poll (ADC)", r.ok() ? zbuf::Error(ETIMEDOUT, "poll") : r.error());
    }
    usb_ffs_dmabuf_transfer_req xfer{dmabufs[i], 0, kBlock};
    if (auto r = k::ioctl(usb->get(), FUNCTIONFS_DMABUF_TRANSFER, &xfer); !r.ok()) {
      return fail("FUNCTIONFS_DMABUF_TRANSFER", r.error());
    }
    p[0] = {dmabufs[i], POLLOUT, 0};  // the USB controller's read fence signalled
    if (auto r = k::poll(p, 5000); !r.ok() || *r == 0) {
      return fail("poll (USB)", r.ok() ? zbuf::Error(ETIMEDOUT, "poll") : r.error());
    }
    sent += kBlock;
    if (queued < kTotal) {
      iio_dmabuf req{static_cast<std::uint32_t>(dmabufs[i]), 0, kBlock};
      (void)k::ioctl(buffer, IIO_BUFFER_DMABUF_ENQUEUE_IOCTL, &req);
      queued += kBlock;
    }
  }
  writeAttr(sys + "enable", "0");
  for (int fd : dmabufs) {
    (void)k::close(fd);
  }
  (void)k::close(buffer);
  (void)k::close(std::move(*usb));

  // --- the far end ---------------------------------------------------------------------------
  const auto stats = (*board)->host().stats(zbuf::Board::kUsbIn);
  std::printf(
      "adc_to_usb: %llu bytes sent zero-copy, host received %llu, verified %llu, "
      "mismatched %llu\n",
      static_cast<unsigned long long>(sent), static_cast<unsigned long long>(stats.bytes),
      static_cast<unsigned long long>(stats.verifiedBytes),
      static_cast<unsigned long long>(stats.mismatches));
  return stats.bytes == kTotal && stats.verifiedBytes == kTotal && stats.mismatches == 0 ? 0 : 1;
}
