// Targets functionfs_ep0 and functionfs_ep (this file, built twice): a FunctionFS function as
// files, bound to an emulated controller with a host at the far end.
//  - functionfs_ep0 (ZBUF_FUZZ_EP0=1): the descriptors come from ep0: the input's writes to ep0
//    are the descriptors and strings blobs (every header, count, length and descriptor field),
//    then the events read from it, its ioctl (INTERFACE_REVMAP, any other number), the endpoint
//    files that appear, and the reset when every file closes.
//  - functionfs_ep: built-in endpoints, configured by the host: the endpoint files' ioctls
//    (DMABUF_ATTACH, DETACH, TRANSFER, ENDPOINT_REVMAP, ENDPOINT_DESC, FIFO_*, any other number),
//    read/write (fileio), while the host configures, disconnects, suspends and resumes.
#include <array>
#include <cstring>

#include "common_ops.h"
#include "zbuf/devices/usb/functionfs.h"
#include "zbuf/devices/usb/functionfs_files.h"
#include "zbuf/devices/usb/host.h"
#include "zbuf/devices/usb/link.h"

#ifndef ZBUF_FUZZ_EP0
#define ZBUF_FUZZ_EP0 0
#endif

namespace zbuf::fuzz {
namespace {

using namespace zbuf::uapi;
using Bytes = std::vector<std::byte>;

void put32(Bytes& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    b.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
  }
}
void putBytes(Bytes& b, std::initializer_list<unsigned> v) {
  for (unsigned x : v) {
    b.push_back(static_cast<std::byte>(x));
  }
}

// ffs-test.c's descriptors (full and high speed; one interface, bulk IN 0x81 and OUT 0x02) and
// its strings: what a well-behaved application writes first.
Bytes goodDescriptors() {
  Bytes b;
  put32(b, kFfsDescriptorsMagicV2);
  put32(b, 0);
  put32(b, kFfsHasFsDesc | kFfsHasHsDesc);
  put32(b, 3);
  put32(b, 3);
  for (unsigned mps : {64U, 512U}) {
    putBytes(b, {9, kUsbDtInterface, 0, 0, 2, 0xff, 0, 0, 1});
    putBytes(b, {7, kUsbDtEndpoint, 0x81, kUsbEndpointXferBulk, mps & 0xff, mps >> 8, 0});
    putBytes(b, {7, kUsbDtEndpoint, 0x02, kUsbEndpointXferBulk, mps & 0xff, mps >> 8, 0});
  }
  const auto n = static_cast<std::uint32_t>(b.size());
  std::memcpy(b.data() + 4, &n, sizeof n);
  return b;
}
Bytes goodStrings() {
  Bytes b;
  put32(b, kFfsStringsMagic);
  put32(b, 0);
  put32(b, 1);
  put32(b, 1);
  putBytes(b, {0x09, 0x04});
  for (char c : std::string_view("zbuf fuzz")) {
    b.push_back(static_cast<std::byte>(c));
  }
  b.push_back(std::byte{0});
  const auto n = static_cast<std::uint32_t>(b.size());
  std::memcpy(b.data() + 4, &n, sizeof n);
  return b;
}

struct Machine {
  std::shared_ptr<usb::UsbLink> link;
  std::unique_ptr<usb::UsbHost> host;
  std::shared_ptr<usb::FunctionFs> function;
};
Machine* gMachine = nullptr;

constexpr std::array<std::pair<const char*, Kind>, 6> kNodes{{
    {"/dev/usb-ffs/fuzz/ep0", Kind::Ep0},
    {"/dev/usb-ffs/fuzz/ep1", Kind::Endpoint},
    {"/dev/usb-ffs/fuzz/ep2", Kind::Endpoint},
    {"/dev/usb-ffs/fuzz/ep3", Kind::Endpoint},
    {"/dev/usb-ffs/fuzz/ep81", Kind::Endpoint},
    {"/dev/usb-ffs/fuzz/ep02", Kind::Endpoint},
}};

void check(Session& /*s*/, const IoctlCall& call, const Result<long>& r) {
  if (!r.ok()) {
    return;
  }
  if (call.target.kind == Kind::Ep0 && call.cmd != kFunctionfsInterfaceRevmap) {
    fail("ep0 ioctl {:#x} succeeded; ffs_ep0_ioctl says ENOTTY", call.cmd);
  }
  if (call.target.kind == Kind::Endpoint && call.cmd == kFunctionfsDmabufTransfer &&
      call.arg != nullptr) {
    UsbFfsDmabufTransferReq req{};
    std::memcpy(&req, call.arg, sizeof req);
    const std::uint32_t flags = req.flags;
    const std::uint64_t length = req.length;
    if (flags != 0 || length == 0) {
      fail("FUNCTIONFS_DMABUF_TRANSFER flags {:#x} length {} succeeded; the kernel says EINVAL",
           flags, length);
    }
  }
}

void writeBlob(Session& s, Input& in) {
  auto ep0 = s.pickKind(in, Kind::Ep0);
  const std::uint8_t which = in.u8();
  if (!ep0) {
    return;
  }
  const Bytes blob = (which & 1) != 0 ? goodStrings() : goodDescriptors();
  const std::size_t before = openFdCount();
  auto r = s.ctx().write(ep0->fd, blob);
  if (!r.ok()) {
    const auto allowed = kernelRwErrnos(Kind::Ep0, true);
    if (std::find(allowed.begin(), allowed.end(), r.code()) == allowed.end()) {
      fail("write of a valid blob to ep0: errno {} ({})", r.code(), r.error().describe());
    }
  } else if (*r != blob.size()) {
    fail("write of a {}-byte blob to ep0 returned {}", blob.size(), *r);
  }
  if (openFdCount() > before) {
    fail("write to ep0 left a new fd");
  }
}

void hostOp(Input& in) {
  switch (in.u8() % 4) {
    case 0:
      (void)gMachine->host->configure();
      return;
    case 1:
      gMachine->host->disconnect();
      return;
    case 2:
      gMachine->host->suspend();
      return;
    default:
      gMachine->host->resume();
      return;
  }
}

Rules rules() {
  Rules r;
  r.requests = {{kFunctionfsDmabufAttach, sizeof(int)},
                {kFunctionfsDmabufDetach, sizeof(int)},
                {kFunctionfsDmabufTransfer, sizeof(UsbFfsDmabufTransferReq)},
                {kFunctionfsEndpointRevmap, 0},
                {kFunctionfsEndpointDesc, sizeof(UsbEndpointDescriptor)},
                {kFunctionfsInterfaceRevmap, 0},
                {kFunctionfsFifoStatus, 0},
                {kFunctionfsFifoFlush, 0},
                {kFunctionfsClearHalt, 0}};
  r.ioctlErrnos = kernelIoctlErrnos;
  r.rwErrnos = kernelRwErrnos;
  r.returnedFd = kernelReturnedFd;
  r.ioctlCheck = check;
  r.fixUp = [](Session& s, IoctlCall& call, Input& in) {
    if (call.cmd == kFunctionfsDmabufAttach || call.cmd == kFunctionfsDmabufDetach ||
        call.cmd == kFunctionfsDmabufTransfer) {
      setFdField(s, call, 0, in);
    } else if (call.cmd == kFunctionfsInterfaceRevmap) {
      call.arg = reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(in.u8() % 4));
    }
  };
  r.before = beforeSync;
  r.rwAllowed = [](Session& s, const Tracked& t, bool write) {
    if (t.kind != Kind::Endpoint) {
      return true;
    }
    // ffs_epfile_io waits for the transfer to complete even when the file is non-blocking
    // (only the wait for the endpoint and the mutex are non-blocking), so a read from an OUT
    // endpoint the host sends nothing to never returns. Only the calls that end before the
    // request is queued are made: the endpoint disabled, or the direction wrong (EBADMSG); an
    // IN endpoint's writes, which the host takes at once.
    // The direction from the endpoint's descriptor (ENDPOINT_REVMAP is 255 for every endpoint,
    // as the kernel's).
    UsbEndpointDescriptor desc{};
    if (!s.ctx().ioctl(t.fd, kFunctionfsEndpointDesc, &desc).ok()) {
      return true;
    }
    const bool in = (desc.bEndpointAddress & kUsbEndpointDirIn) != 0;
    return write || in;
  };
  r.extraOps = 6;
  r.extra = [](Session& s, std::uint8_t op, Input& in) {
    switch (op) {
      case 0:
      case 1:
        openNode(s, in, kNodes);
        return;
      case 2:
        if (ZBUF_FUZZ_EP0 != 0) {
          writeBlob(s, in);
        } else {
          deviceFence(s, in);
        }
        return;
      case 3:
        newBuffer(s, in);
        return;
      case 4:
        hostOp(in);
        return;
      default:
        signalOne(s, in);
        return;
    }
  };
  return r;
}

}  // namespace
}  // namespace zbuf::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace zbuf::fuzz;
  using namespace std::chrono_literals;
  Input in(data, size);
  const std::uint8_t shape = in.u8();
  // The hardware is made before the session counts the fds, and outlives its context.
  Machine m;
  m.link = zbuf::usb::UsbLink::create(zbuf::usb::LinkConfig{.scatterGather = (shape & 1) == 0});
  m.host = std::make_unique<zbuf::usb::UsbHost>(
      m.link, zbuf::usb::HostConfig{.enumerate = (shape & 2) != 0});
  m.function = zbuf::usb::FunctionFs::create(zbuf::usb::FunctionConfig{
      .name = "fuzz", .descriptorsFromEp0 = ZBUF_FUZZ_EP0 != 0, .transferTimeout = 50ms});
  gMachine = &m;
  {
    Session s(rules());
    if (!zbuf::usb::mountFunctionFs(s.ctx(), m.function, "/dev/usb-ffs/fuzz").ok() ||
        !m.function->bind(m.link).ok()) {
      fail("the FunctionFS function could not be mounted and bound");
    }
    if (ZBUF_FUZZ_EP0 == 0 && !m.host->configure().ok()) {
      fail("the host could not configure the function");
    }
    auto ep0 = s.ctx().open("/dev/usb-ffs/fuzz/ep0", O_RDWR | O_NONBLOCK);
    if (!ep0.ok()) {
      fail("open ep0: {}", ep0.error().describe());
    }
    s.track(std::move(*ep0), Kind::Ep0);
    newBuffer(s, in);
    s.run(in);
    s.finish();
  }
  m.function->unbind();
  gMachine = nullptr;
  return 0;
}
