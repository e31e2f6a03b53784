// Test rig for the FunctionFS tests: a context with a function mounted at /dev/usb-ffs/<name>,
// a link and a host, fd-level helpers, buffers installed in the context, and builders for the
// descriptors and strings blobs an application writes to ep0.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/fd_calls.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/resv.h"
#include "zbuf/devices/usb/functionfs.h"
#include "zbuf/devices/usb/functionfs_files.h"
#include "zbuf/devices/usb/functionfs_uapi.h"
#include "zbuf/devices/usb/host.h"
#include "zbuf/heaps/system_heap.h"
#include "zbuf/uapi/context.h"

namespace zbuf::usb::testing {

using namespace std::chrono_literals;
using Bytes = std::vector<std::byte>;

// --- blobs
// ----------------------------------------------------------------------------------------

inline void put8(Bytes& b, unsigned v) {
  b.push_back(static_cast<std::byte>(v & 0xff));
}
inline void put16(Bytes& b, unsigned v) {
  put8(b, v);
  put8(b, v >> 8);
}
inline void put32(Bytes& b, std::uint32_t v) {
  put16(b, v & 0xffff);
  put16(b, v >> 16);
}
inline void set32(Bytes& b, std::size_t at, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) {
    b[at + i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
  }
}

inline Bytes interfaceDesc(unsigned number = 0, unsigned eps = 2, unsigned iInterface = 1,
                           unsigned cls = 0xff) {
  Bytes d;
  for (unsigned v : {9U, unsigned{kUsbDtInterface}, number, 0U, eps, cls, 0U, 0U, iInterface}) {
    put8(d, v);
  }
  return d;
}

inline Bytes endpointDesc(unsigned address, unsigned maxPacket = 512, unsigned length = 7) {
  Bytes d;
  put8(d, length);
  put8(d, kUsbDtEndpoint);
  put8(d, address);
  put8(d, kUsbEndpointXferBulk);
  put16(d, maxPacket);
  put8(d, 0);
  for (unsigned i = 7; i < length; ++i) {
    put8(d, 0);
  }
  return d;
}

inline Bytes ssCompDesc() {
  return Bytes{std::byte{6}, std::byte{kUsbDtSsEndpointComp},
               std::byte{0}, std::byte{0},
               std::byte{0}, std::byte{0}};
}

using Speed = std::vector<Bytes>;

// A FUNCTIONFS_DESCRIPTORS_MAGIC_V2 blob: the header, the eventfd (FUNCTIONFS_EVENTFD), one count
// per speed flag, the descriptors.
inline Bytes descriptorsBlob(std::uint32_t flags, const std::vector<Speed>& speeds,
                             int eventfd = -1) {
  Bytes b;
  put32(b, kFfsDescriptorsMagicV2);
  put32(b, 0);  // length, below
  put32(b, flags);
  if ((flags & kFfsEventfd) != 0) {
    put32(b, static_cast<std::uint32_t>(eventfd));
  }
  for (const Speed& s : speeds) {
    put32(b, static_cast<std::uint32_t>(s.size()));
  }
  for (const Speed& s : speeds) {
    for (const Bytes& d : s) {
      b.insert(b.end(), d.begin(), d.end());
    }
  }
  set32(b, 4, static_cast<std::uint32_t>(b.size()));
  return b;
}

// What ffs-test.c writes: one interface with a bulk IN (0x81) and a bulk OUT (0x02) endpoint at
// full, high and super speed.
inline Bytes defaultDescriptors(std::uint32_t extraFlags = 0, int eventfd = -1) {
  const Speed fs{interfaceDesc(), endpointDesc(0x81, 64), endpointDesc(0x02, 64)};
  const Speed hs{interfaceDesc(), endpointDesc(0x81, 512), endpointDesc(0x02, 512)};
  const Speed ss{interfaceDesc(), endpointDesc(0x81, 1024), ssCompDesc(), endpointDesc(0x02, 1024),
                 ssCompDesc()};
  return descriptorsBlob(kFfsHasFsDesc | kFfsHasHsDesc | kFfsHasSsDesc | extraFlags, {fs, hs, ss},
                         eventfd);
}

inline Bytes stringsBlob(const std::vector<std::string>& strings = {"zbuf source/sink"},
                         unsigned languages = 1) {
  Bytes b;
  put32(b, kFfsStringsMagic);
  put32(b, 0);
  put32(b, static_cast<std::uint32_t>(strings.size()));
  put32(b, languages);
  for (unsigned l = 0; l < languages; ++l) {
    put16(b, 0x0409 + l);
    for (const std::string& s : strings) {
      for (char c : s) {
        put8(b, static_cast<unsigned char>(c));
      }
      put8(b, 0);
    }
  }
  set32(b, 4, static_cast<std::uint32_t>(b.size()));
  return b;
}

// --- the rig
// ---------------------------------------------------------------------------------------

struct RigOptions {
  LinkConfig link{};
  bool configure = true;  // the host configures the function (built-in endpoints only)
  bool descriptorsFromEp0 = false;
  bool enumerate = false;  // the host configures on connect
  bool bind = true;
  std::string name = "test";
};

struct Rig : testing_support::FdCalls {
  explicit Rig(RigOptions o = {})
      : FdCalls(uapi::Context::create()),
        options(o),
        link(UsbLink::create(o.link)),
        host(link, HostConfig{.enumerate = o.enumerate}),
        function(FunctionFs::create(FunctionConfig{
            .name = o.name, .descriptorsFromEp0 = o.descriptorsFromEp0, .transferTimeout = 200ms})),
        mount("/dev/usb-ffs/" + o.name) {
    EXPECT_TRUE(mountFunctionFs(*ctx, function, mount).ok());
    if (o.bind) {
      EXPECT_TRUE(function->bind(link).ok());
    }
    if (o.configure && !o.descriptorsFromEp0 && o.bind) {
      EXPECT_TRUE(host.configure().ok());
    }
  }

  [[nodiscard]] std::string path(const std::string& file) const { return mount + "/" + file; }
  Result<UniqueFd> open(const std::string& file, int flags = O_RDWR) {
    return ctx->open(path(file), flags);
  }
  UniqueFd mustOpen(const std::string& file, int flags = O_RDWR) {
    auto fd = open(file, flags);
    EXPECT_TRUE(fd.ok()) << file << ": " << (fd.ok() ? "" : fd.error().describe());
    return fd.ok() ? std::move(*fd) : UniqueFd();
  }
  long transfer(int fd, int bufferFd, std::uint64_t length, std::uint32_t flags = 0) {
    DmabufTransferReq req{bufferFd, flags, length};
    return ioctl(fd, kFunctionfsDmabufTransfer, &req);
  }
  // Writes the default descriptors and strings to `ep0`.
  void writeDescriptors(int ep0) {
    const Bytes d = defaultDescriptors();
    const Bytes s = stringsBlob();
    ASSERT_EQ(write(ep0, d), static_cast<long>(d.size()));
    ASSERT_EQ(write(ep0, s), static_cast<long>(s.size()));
  }
  // Reads the queued events from ep0 (non-blocking descriptions return what is there).
  std::vector<FfsEventType> events(int ep0, std::size_t max = 4) {
    std::vector<std::byte> buf(max * sizeof(UsbFunctionfsEvent));
    const long n = read(ep0, buf);
    std::vector<FfsEventType> out;
    for (long i = 0; i + static_cast<long>(sizeof(UsbFunctionfsEvent)) <= n;
         i += static_cast<long>(sizeof(UsbFunctionfsEvent))) {
      UsbFunctionfsEvent ev{};
      std::memcpy(&ev, buf.data() + i, sizeof ev);
      out.push_back(static_cast<FfsEventType>(ev.type));
    }
    return out;
  }

  RigOptions options;
  std::shared_ptr<UsbLink> link;
  UsbHost host;
  std::shared_ptr<FunctionFs> function;
  std::string mount;
};

// A system-heap buffer and an fd for it in `ctx`.
struct Buf {
  BufferPtr buffer;
  UniqueFd fd;
  [[nodiscard]] int get() const { return fd.get(); }
};

inline Buf allocate(uapi::Context& ctx, std::uint64_t size) {
  Buf b;
  b.buffer = SystemHeap::instance()->allocate(size).value();
  b.fd = ctx.installBuffer(b.buffer).value();
  return b;
}

// The newest FunctionFS fence in the buffer's reservation object (what the last TRANSFER added).
inline FencePtr lastTransferFence(const BufferPtr& b) {
  FencePtr last;
  for (const Resv::Entry& e : b->resv().entries(ResvUsage::Bookkeep)) {
    if (e.fence->driverName() == "functionfs") {
      last = e.fence;
    }
  }
  return last;
}

}  // namespace zbuf::usb::testing
