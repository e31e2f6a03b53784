// Target iio: an emulated IIO device (input or output, with or without DMABUF support, one or two
// buffers, chosen by the input's first byte) as files: the character device's ioctl
// (GET_FD, any other number), the buffer file's ATTACH, DETACH, ENQUEUE and any other number,
// read/write of both (fileio), the sysfs attributes (enable, length, watermark, ...), poll, close
// while the DMA runs.
#include <array>
#include <cstring>

#include "common_ops.h"
#include "zbuf/devices/iio/iio_files.h"

namespace zbuf::fuzz {
namespace {

using namespace zbuf::uapi;

iio::IioDeviceConfig gConfig;

void check(Session& s, const IoctlCall& call, const Result<long>& r) {
  if (!r.ok() || call.arg == nullptr) {
    return;
  }
  if (call.target.kind == Kind::IioDevice) {
    if (call.cmd != kIioBufferGetFdIoctl) {
      fail("iio device ioctl {:#x} succeeded; iio_ioctl says ENODEV", call.cmd);
    }
    expectReturnedFd(s, readI32(call.arg), Kind::IioBuffer, true, "IIO_BUFFER_GET_FD_IOCTL");
  } else if (call.target.kind == Kind::IioBuffer) {
    if (call.cmd == kIioBufferDmabufAttachIoctl && !gConfig.dmabuf) {
      fail("IIO_BUFFER_DMABUF_ATTACH_IOCTL succeeded on a buffer without DMABUF support");
    }
    if (call.cmd == kIioBufferDmabufEnqueueIoctl) {
      IioDmabuf req{};
      std::memcpy(&req, call.arg, sizeof req);
      auto buffer = s.ctx().bufferFromFd(static_cast<int>(req.fd));
      if ((req.flags & ~kIioBufferDmabufSupportedFlags) != 0 || !buffer.ok() ||
          req.bytesUsed == 0 || req.bytesUsed > (*buffer)->size() ||
          ((req.flags & kIioBufferDmabufCyclic) != 0 &&
           gConfig.direction == iio::IioDirection::Input)) {
        fail(
            "IIO_BUFFER_DMABUF_ENQUEUE_IOCTL fd {} flags {:#x} bytes_used {} succeeded; the "
            "kernel says EINVAL",
            req.fd, req.flags, req.bytesUsed);
      }
    }
  }
}

constexpr std::array<std::pair<const char*, Kind>, 9> kNodes{{
    {"/dev/iio:device0", Kind::IioDevice},
    {"/sys/bus/iio/devices/iio:device0/buffer0/enable", Kind::SysfsAttr},
    {"/sys/bus/iio/devices/iio:device0/buffer0/length", Kind::SysfsAttr},
    {"/sys/bus/iio/devices/iio:device0/buffer0/watermark", Kind::SysfsAttr},
    {"/sys/bus/iio/devices/iio:device0/buffer/enable", Kind::SysfsAttr},
    {"/sys/bus/iio/devices/iio:device0/buffer1/enable", Kind::SysfsAttr},
    {"/sys/bus/iio/devices/iio:device0/sampling_frequency", Kind::SysfsAttr},
    {"/sys/bus/iio/devices/iio:device0/name", Kind::SysfsAttr},
    {"/sys/bus/iio/devices/iio:device0/scan_elements/in_voltage0_en", Kind::SysfsAttr},
}};

Rules rules() {
  Rules r;
  r.requests = {{kIioBufferGetFdIoctl, sizeof(int)},
                {kIioBufferDmabufAttachIoctl, sizeof(int)},
                {kIioBufferDmabufDetachIoctl, sizeof(int)},
                {kIioBufferDmabufEnqueueIoctl, sizeof(IioDmabuf)},
                {kDmaBufIoctlSync, sizeof(DmaBufSync)}};
  r.ioctlErrnos = kernelIoctlErrnos;
  r.rwErrnos = kernelRwErrnos;
  r.returnedFd = kernelReturnedFd;
  r.ioctlCheck = check;
  r.fixUp = [](Session& s, IoctlCall& call, Input& in) {
    if (call.cmd == kIioBufferGetFdIoctl) {
      int index = readI32(call.arg) % 4;
      std::memcpy(call.arg, &index, sizeof index);
    } else if (call.cmd == kIioBufferDmabufAttachIoctl || call.cmd == kIioBufferDmabufDetachIoctl ||
               call.cmd == kIioBufferDmabufEnqueueIoctl) {
      setFdField(s, call, 0, in);
    }
  };
  r.before = beforeSync;
  r.extraOps = 4;
  r.extra = [](Session& s, std::uint8_t op, Input& in) {
    switch (op) {
      case 0:
      case 1:
        openNode(s, in, kNodes);
        return;
      case 2:
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
  Session s(rules());
  Input in(data, size);
  const std::uint8_t shape = in.u8();
  gConfig = zbuf::iio::IioDeviceConfig{};
  gConfig.name = "fuzz-adc";
  gConfig.direction =
      (shape & 1) != 0 ? zbuf::iio::IioDirection::Output : zbuf::iio::IioDirection::Input;
  gConfig.dmabuf = (shape & 2) == 0;
  gConfig.buffers = (shape & 4) != 0 ? 2 : 1;
  gConfig.length = 1024;
  gConfig.enqueueTimeout = std::chrono::milliseconds(50);
  auto device = zbuf::iio::IioDevice::create(gConfig);
  if (!device.ok() || !zbuf::iio::addToContext(s.ctx(), std::move(*device), 0).ok()) {
    fail("the IIO device could not be made");
  }
  newBuffer(s, in);
  s.run(in);
  s.finish();
  return 0;
}
