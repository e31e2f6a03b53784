// Target virtio: the virtio video pair as files (devices/virtio/virtio_video.h): the decoder's
// ALLOC, GET_UUID and DECODE and the display's IMPORT, DISPLAY and DETACH with every field
// fuzzed, on either device (the other's calls are ENOTTY), with the decoder's buffers, heap
// buffers, sync files, closed numbers and the devices themselves as the fd fields, and UUIDs
// that the host knows, knew, or never heard of.
#include <array>
#include <cstring>
#include <optional>

#include "common_ops.h"
#include "zbuf/core/virtio_dma_buf.h"
#include "zbuf/devices/virtio/virtio_video.h"

namespace zbuf::fuzz {
namespace {

using namespace zbuf::uapi;

std::shared_ptr<virtio::VideoDecoder> gDecoder;
std::vector<Uuid> gUuids;  // every UUID ALLOC handed out in this input

void check(Session& s, const IoctlCall& call, const Result<long>& r) {
  if (call.target.kind != Kind::VirtioVideo || !r.ok() || call.arg == nullptr) {
    return;
  }
  const auto isVirtio = [&](int fd) {
    auto buffer = s.ctx().bufferFromFd(fd);
    return buffer.ok() && isVirtioDmaBuf(**buffer);
  };
  if (call.cmd == kVirtioVideoAlloc) {
    VirtioVideoAlloc a{};
    std::memcpy(&a, call.arg, sizeof a);
    if (a.size == 0 || (a.flags & ~kVirtioVideoAllocUuid) != 0 || a.pad != 0) {
      fail("ALLOC of size {} flags {:#x} pad {} succeeded; it is EINVAL", a.size, a.flags, a.pad);
    }
    expectReturnedFd(s, static_cast<int>(a.fd), Kind::DmaBuf, (a.fdFlags & O_CLOEXEC) != 0,
                     "ZBUF_VIRTIO_VIDEO_ALLOC");
    if (!isVirtio(static_cast<int>(a.fd))) {
      fail("ALLOC made a buffer that is not a virtio buffer");
    }
    Uuid u{};
    std::memcpy(u.data(), a.uuid, u.size());
    gUuids.push_back(u);
  } else if (call.cmd == kVirtioVideoImport) {
    VirtioVideoImport imp{};
    std::memcpy(&imp, call.arg, sizeof imp);
    expectReturnedFd(s, static_cast<int>(imp.fd), Kind::DmaBuf, (imp.fdFlags & O_CLOEXEC) != 0,
                     "ZBUF_VIRTIO_VIDEO_IMPORT");
    if (!isVirtio(static_cast<int>(imp.fd))) {
      fail("IMPORT gave a buffer that is not a virtio buffer");
    }
  } else if (call.cmd == kVirtioVideoGetUuid || call.cmd == kVirtioVideoDecode) {
    if (!isVirtio(readI32(call.arg))) {
      fail("virtio call {:#x} on fd {} succeeded; a buffer that is not virtio is EINVAL", call.cmd,
           readI32(call.arg));
    }
  } else if (call.cmd != kVirtioVideoDisplay && call.cmd != kVirtioVideoDetach) {
    fail("virtio-video ioctl {:#x} succeeded; it is ENOTTY", call.cmd);
  }
}

Rules rules() {
  Rules r;
  r.requests = {{kVirtioVideoAlloc, sizeof(VirtioVideoAlloc)},
                {kVirtioVideoGetUuid, sizeof(VirtioVideoUuid)},
                {kVirtioVideoDecode, sizeof(VirtioVideoFrame)},
                {kVirtioVideoImport, sizeof(VirtioVideoImport)},
                {kVirtioVideoDisplay, sizeof(VirtioVideoFrame)},
                {kVirtioVideoDetach, sizeof(int)},
                {kDmaBufIoctlSync, sizeof(DmaBufSync)}};
  r.ioctlErrnos = kernelIoctlErrnos;
  r.rwErrnos = kernelRwErrnos;
  r.returnedFd = kernelReturnedFd;
  r.ioctlCheck = check;
  r.fixUp = [](Session& s, IoctlCall& call, Input& in) {
    if (call.cmd == kVirtioVideoAlloc) {
      // Sizes up to 1 MiB: the allocation's limits are the heap target's.
      std::uint64_t size = 0;
      std::memcpy(&size, call.arg, sizeof size);
      size %= (1U << 20) + 1;
      std::memcpy(call.arg, &size, sizeof size);
      const std::uint8_t how = in.u8();
      if ((how & 2) != 0) {  // fd and pad as the call wants them on input: 0
        std::memset(call.arg + offsetof(VirtioVideoAlloc, fd), 0, 8);
      }
      if ((how & 1) != 0 && !gUuids.empty()) {  // a UUID already taken: a duplicate
        const Uuid& u = gUuids[in.u8() % gUuids.size()];
        std::memcpy(call.arg + offsetof(VirtioVideoAlloc, uuid), u.data(), u.size());
        const std::uint32_t flags = kVirtioVideoAllocUuid;
        std::memcpy(call.arg + offsetof(VirtioVideoAlloc, flags), &flags, sizeof flags);
      }
    } else if (call.cmd == kVirtioVideoImport) {
      if ((in.u8() & 1) != 0 && !gUuids.empty()) {  // a UUID the host knows (or knew)
        const Uuid& u = gUuids[in.u8() % gUuids.size()];
        std::memcpy(call.arg, u.data(), u.size());
        std::memset(call.arg + offsetof(VirtioVideoImport, fd), 0, 4);
      }
    } else if (call.cmd == kVirtioVideoGetUuid || call.cmd == kVirtioVideoDecode ||
               call.cmd == kVirtioVideoDisplay || call.cmd == kVirtioVideoDetach) {
      setFdField(s, call, 0, in);
    }
  };
  r.before = [](Session& s, IoctlCall& call) {
    if (call.cmd == kVirtioVideoDecode || call.cmd == kVirtioVideoDisplay) {
      // They wait for the buffer's fences (5 s, then EBUSY): the harness's are signalled first,
      // the devices' own signal by themselves.
      s.signalAll();
      return true;
    }
    return beforeSync(s, call);
  };
  r.extraOps = 3;
  r.extra = [](Session& s, std::uint8_t op, Input& in) {
    static constexpr std::array<std::pair<const char*, Kind>, 2> kNodes{
        {{virtio::kDecoderPath, Kind::VirtioVideo}, {virtio::kDisplayPath, Kind::VirtioVideo}}};
    switch (op) {
      case 0:
        openNode(s, in, kNodes);
        return;
      case 1:
        newBuffer(s, in);
        return;
      default:
        deviceFence(s, in);
        return;
    }
  };
  return r;
}

}  // namespace
}  // namespace zbuf::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace zbuf::fuzz;
  gUuids.clear();
  auto host = zbuf::virtio::VirtioHost::create({});
  gDecoder = zbuf::virtio::VideoDecoder::create(host);
  auto display = zbuf::virtio::VideoDisplay::create(host);
  {
    Session s(rules());
    if (!zbuf::virtio::addToContext(s.ctx(), host, gDecoder, display).ok()) {
      fail("the virtio devices could not be added");
    }
    for (const char* path : {zbuf::virtio::kDecoderPath, zbuf::virtio::kDisplayPath}) {
      auto fd = s.ctx().open(path, O_RDWR);
      if (!fd.ok()) {
        fail("open {}: {}", path, fd.error().describe());
      }
      s.track(std::move(*fd), Kind::VirtioVideo);
    }
    Input in(data, size);
    Input setup(data, size);
    newBuffer(s, setup);
    s.run(in);
    s.finish();
  }
  gDecoder.reset();
  return 0;
}
