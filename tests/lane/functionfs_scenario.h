// The kernel lane's FunctionFS scenario: a function whose descriptors and strings are written
// to ep0, bound to a controller without scatter-gather (the kernel's dummy_hcd; zbuf's link with
// LinkConfig::scatterGather = false), then every DMABUF ioctl on ep0 and on an endpoint
// (reference section 13), written only against FdCalls so the emulation and the kernel compare
// line by line. The function's creation and binding differ (configfs and a UDC on the kernel,
// zbuf's FunctionFs and link in the emulation): the caller passes them in.
#pragma once

#include <fcntl.h>
#include <linux/memfd.h>
#include <poll.h>

#include <chrono>
#include <functional>
#include <string>

#include "devices/usb/ffs_rig.h"
#include "lane/transcript.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/fd_calls.h"

namespace zbuf::lane {

inline void functionFsScenario(uapi::FdCalls& c, Transcript& t, const std::string& mount,
                               const std::function<Result<void>()>& bind) {
  using usb::testing::Bytes;
  auto ep0 = c.open(mount + "/ep0", O_RDWR);
  t.step("open ep0", ep0);
  if (!ep0.ok()) {
    return;
  }
  const int e0 = ep0->get();
  t.step("open ep1 before the descriptors", c.open(mount + "/ep1", O_RDWR));
  const usb::testing::Speed fs{usb::testing::interfaceDesc(), usb::testing::endpointDesc(0x81, 64),
                               usb::testing::endpointDesc(0x02, 64)};
  const usb::testing::Speed hs{usb::testing::interfaceDesc(), usb::testing::endpointDesc(0x81, 512),
                               usb::testing::endpointDesc(0x02, 512)};
  const Bytes d =
      usb::testing::descriptorsBlob(uapi::kFfsHasFsDesc | uapi::kFfsHasHsDesc, {fs, hs});
  const Bytes s = usb::testing::stringsBlob();
  t.step("write descriptors", c.write(e0, d));
  t.step("write strings", c.write(e0, s));
  t.step("bind to the controller", bind());
  // Wait (at most 20 s) for the host to configure the function: the ENABLE event.
  bool enabled = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!enabled && std::chrono::steady_clock::now() < deadline) {
    struct pollfd p {
      e0, POLLIN, 0
    };
    auto r = c.poll(std::span(&p, 1), 1000);
    if (!r.ok() || *r == 0) {
      continue;
    }
    std::array<uapi::UsbFunctionfsEvent, 4> events{};
    auto n = c.read(e0, std::as_writable_bytes(std::span(events)));
    for (std::size_t i = 0; n.ok() && i < *n / sizeof(uapi::UsbFunctionfsEvent); ++i) {
      enabled = enabled || events[i].type == static_cast<std::uint8_t>(uapi::FfsEventType::Enable);
    }
  }
  t.note("the host enabled the function", enabled ? "yes" : "no");
  auto ep1 = c.open(mount + "/ep1", O_RDWR);
  t.step("open ep1", ep1);
  if (!ep1.ok()) {
    return;
  }
  const int e1 = ep1->get();
  // A buffer to attach, from the same kernel's system heap.
  auto heap = c.open("/dev/dma_heap/system", O_RDONLY);
  uapi::DmaHeapAllocationData data{};
  data.len = 16384;
  data.fdFlags = O_RDWR | O_CLOEXEC;
  if (!heap.ok() || !c.ioctl(heap->get(), uapi::kDmaHeapIoctlAlloc, &data).ok()) {
    t.note("a heap buffer", "none");
    return;
  }
  int buf = static_cast<int>(data.fd);
  int minusOne = -1;
  auto memfd = sys::memfdCreate("lane-ffs", MFD_CLOEXEC);
  int mem = memfd.ok() ? memfd->get() : -1;
  uapi::UsbFfsDmabufTransferReq req{buf, 0, 4096};
  t.step("ep0 DMABUF_ATTACH", c.ioctl(e0, uapi::kFunctionfsDmabufAttach, &buf));
  t.step("ep0 DMABUF_DETACH", c.ioctl(e0, uapi::kFunctionfsDmabufDetach, &buf));
  t.step("ep0 DMABUF_TRANSFER", c.ioctl(e0, uapi::kFunctionfsDmabufTransfer, &req));
  t.step("ep0 DMABUF_ATTACH NULL", c.ioctl(e0, uapi::kFunctionfsDmabufAttach, nullptr));
  t.step("ep1 DMABUF_ATTACH a heap buffer", c.ioctl(e1, uapi::kFunctionfsDmabufAttach, &buf));
  t.step("ep1 DMABUF_ATTACH fd -1", c.ioctl(e1, uapi::kFunctionfsDmabufAttach, &minusOne));
  t.step("ep1 DMABUF_ATTACH a memfd", c.ioctl(e1, uapi::kFunctionfsDmabufAttach, &mem));
  t.step("ep1 DMABUF_ATTACH NULL", c.ioctl(e1, uapi::kFunctionfsDmabufAttach, nullptr));
  t.step("ep1 DMABUF_DETACH (never attached)", c.ioctl(e1, uapi::kFunctionfsDmabufDetach, &buf));
  req.flags = 1;
  t.step("ep1 DMABUF_TRANSFER flags 1", c.ioctl(e1, uapi::kFunctionfsDmabufTransfer, &req));
  req = {buf, 0, 0};
  t.step("ep1 DMABUF_TRANSFER length 0", c.ioctl(e1, uapi::kFunctionfsDmabufTransfer, &req));
  req = {buf, 0, 65536};
  t.step("ep1 DMABUF_TRANSFER past the end", c.ioctl(e1, uapi::kFunctionfsDmabufTransfer, &req));
  req = {buf, 0, 4096};
  t.step("ep1 DMABUF_TRANSFER (not attached)", c.ioctl(e1, uapi::kFunctionfsDmabufTransfer, &req));
  req = {-1, 0, 4096};
  t.step("ep1 DMABUF_TRANSFER fd -1", c.ioctl(e1, uapi::kFunctionfsDmabufTransfer, &req));
  uapi::UsbEndpointDescriptor desc{};
  t.step("ep1 ENDPOINT_DESC", c.ioctl(e1, uapi::kFunctionfsEndpointDesc, &desc));
  t.note("ep1 bEndpointAddress", std::to_string(desc.bEndpointAddress));
  t.step("ep1 ENDPOINT_REVMAP", c.ioctl(e1, uapi::kFunctionfsEndpointRevmap, nullptr));
  (void)c.close(buf);
  (void)c.close(ep1->release());
  (void)c.close(heap->release());
}

}  // namespace zbuf::lane
