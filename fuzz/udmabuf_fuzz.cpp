// Target udmabuf: /dev/udmabuf's UDMABUF_CREATE and UDMABUF_CREATE_LIST with every field fuzzed
// (memfds sealed and not, of several sizes, pipes, zbuf's own files and closed numbers as the
// memfd), any other number; the buffers it makes are then used as dma-bufs.
#include <array>
#include <cstring>

#include "common_ops.h"

namespace zbuf::fuzz {
namespace {

using namespace zbuf::uapi;

UdmabufCreate gCreate{};

void check(Session& s, const IoctlCall& call, const Result<long>& r) {
  if (call.target.kind != Kind::Udmabuf || !r.ok()) {
    return;
  }
  if (call.cmd != kUdmabufCreate && call.cmd != kUdmabufCreateList) {
    fail("udmabuf ioctl {:#x} succeeded; the kernel says ENOTTY", call.cmd);
  }
  const std::uint64_t page = sys::pageSize();
  if (call.cmd == kUdmabufCreate &&
      (gCreate.size == 0 || gCreate.size % page != 0 || gCreate.offset % page != 0)) {
    fail("UDMABUF_CREATE offset {} size {} succeeded; the kernel says EINVAL", gCreate.offset,
         gCreate.size);
  }
  std::uint32_t flags = 0;
  std::memcpy(&flags, call.arg + (call.cmd == kUdmabufCreate ? 4 : 0), sizeof flags);
  expectReturnedFd(s, *r, Kind::DmaBuf, (flags & kUdmabufFlagsCloexec) != 0, "UDMABUF_CREATE");
  ;
  if (call.cmd == kUdmabufCreate) {
    auto size = s.ctx().lseek(static_cast<int>(*r), 0, SEEK_END);
    if (!size.ok() || static_cast<std::uint64_t>(*size) != gCreate.size) {
      fail("UDMABUF_CREATE of {} bytes made a buffer of {}", gCreate.size, size.ok() ? *size : -1);
    }
  }
}

Rules rules() {
  Rules r;
  r.requests = {{kUdmabufCreate, sizeof(UdmabufCreate)},
                {kUdmabufCreateList, sizeof(UdmabufCreateList) + 8 * sizeof(UdmabufCreateItem)},
                {kDmaBufIoctlSync, sizeof(DmaBufSync)}};
  r.ioctlErrnos = kernelIoctlErrnos;
  r.rwErrnos = kernelRwErrnos;
  r.returnedFd = kernelReturnedFd;
  r.ioctlCheck = check;
  r.fixUp = [](Session& s, IoctlCall& call, Input& in) {
    if (call.cmd == kUdmabufCreate) {
      setFdField(s, call, 0, in);
    } else if (call.cmd == kUdmabufCreateList) {
      std::uint32_t count = 0;
      std::memcpy(&count, call.arg + 4, sizeof count);
      // The items must be in the argument buffer (a bad pointer is a fault, not a rule).
      const std::uint32_t room = (Session::kArgMax - 8) / sizeof(UdmabufCreateItem);
      if (count > room) {
        count = count % room;
        std::memcpy(call.arg + 4, &count, sizeof count);
      }
      for (std::uint32_t i = 0; i < std::min<std::uint32_t>(count, 8); ++i) {
        setFdField(s, call, 8 + i * sizeof(UdmabufCreateItem), in);
      }
    }
  };
  r.before = [](Session& s, IoctlCall& call) {
    gCreate = UdmabufCreate{};
    if (call.arg != nullptr) {
      std::memcpy(&gCreate, call.arg, sizeof gCreate);
    }
    return beforeSync(s, call);
  };
  r.extraOps = 2;
  r.extra = [](Session& s, std::uint8_t op, Input& in) {
    if (op == 0) {
      newForeign(s, in);
    } else {
      static constexpr std::array<std::pair<const char*, Kind>, 1> kNodes{
          {{"/dev/udmabuf", Kind::Udmabuf}}};
      openNode(s, in, kNodes);
    }
  };
  return r;
}

}  // namespace
}  // namespace zbuf::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace zbuf::fuzz;
  Session s(rules());
  auto dev = s.ctx().open("/dev/udmabuf", O_RDWR | O_NONBLOCK);
  if (!dev.ok()) {
    fail("open /dev/udmabuf: {}", dev.error().describe());
  }
  s.track(std::move(*dev), Kind::Udmabuf);
  Input in(data, size);
  Input setup(data, size);
  newForeign(s, setup);
  s.run(in);
  s.finish();
  return 0;
}
