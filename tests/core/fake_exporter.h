// A test exporter: a memfd-backed buffer whose operations count their calls and can be told
// to fail. Shared by the buffer and attachment tests.
#pragma once

#include <fcntl.h>
#include <linux/memfd.h>
#include <sys/mman.h>

#include <atomic>
#include <memory>
#include <vector>

#include "zbuf/base/sys.h"
#include "zbuf/core/buffer.h"

namespace zbuf::test {

struct FakeCounters {
  std::atomic<int> map{0}, unmap{0}, release{0}, attach{0}, detach{0}, pin{0}, unpin{0}, begin{0},
      end{0}, mmap{0}, vmap{0}, vunmap{0};
  int attachError = 0;  // errno returned by attach, 0: succeed
  int pinError = 0;
  int mapError = 0;
  std::atomic<int> mapWithoutLock{0};  // map or unmap ran without the resv lock held
};

struct FakePriv {
  std::shared_ptr<FakeCounters> counters;
  std::vector<std::byte> memory;
  std::uint64_t physBase = 1ULL << 20;  // low memory: inside a 32-bit DMA mask
};

inline ExporterOps fakeOps(bool dynamic) {
  ExporterOps ops;
  auto priv = [](Buffer& b) -> FakePriv& { return *static_cast<FakePriv*>(b.priv()); };
  ops.map = [priv](Attachment& a, DmaDirection dir) -> Result<SgTable> {
    FakePriv& p = priv(a.buffer());
    ++p.counters->map;
    if (!a.buffer().resv().mutex().heldByCurrentThread()) {
      ++p.counters->mapWithoutLock;
    }
    if (p.counters->mapError != 0) {
      return Error(p.counters->mapError, "fake_map");
    }
    auto runs = scatteredPageRuns(p.memory, 4096, p.physBase);
    return mapPageRuns(a.device(), runs, dir);
  };
  ops.unmap = [priv](Attachment& a, SgTable& t, DmaDirection) {
    ++priv(a.buffer()).counters->unmap;
    if (!a.buffer().resv().mutex().heldByCurrentThread()) {
      ++priv(a.buffer()).counters->mapWithoutLock;
    }
    unmapSgTable(a.device(), t);
  };
  ops.release = [priv](Buffer& b) { ++priv(b).counters->release; };
  ops.attach = [priv](Buffer& b, Attachment&) -> Result<void> {
    ++priv(b).counters->attach;
    if (priv(b).counters->attachError != 0) {
      return Error(priv(b).counters->attachError, "fake_attach");
    }
    return {};
  };
  ops.detach = [priv](Buffer& b, Attachment&) { ++priv(b).counters->detach; };
  if (dynamic) {
    ops.pin = [priv](Attachment& a) -> Result<void> {
      ++priv(a.buffer()).counters->pin;
      if (priv(a.buffer()).counters->pinError != 0) {
        return Error(priv(a.buffer()).counters->pinError, "fake_pin");
      }
      return {};
    };
    ops.unpin = [priv](Attachment& a) { ++priv(a.buffer()).counters->unpin; };
  }
  ops.beginCpuAccess = [priv](Buffer& b, DmaDirection) -> Result<void> {
    ++priv(b).counters->begin;
    return {};
  };
  ops.endCpuAccess = [priv](Buffer& b, DmaDirection) -> Result<void> {
    ++priv(b).counters->end;
    return {};
  };
  ops.mmap = [priv](Buffer& b, std::uint64_t pgoff, std::uint64_t len, int prot,
                    int flags) -> Result<sys::Mapping> {
    ++priv(b).counters->mmap;
    return sys::mmap(len, prot, flags, b.fd().get(), static_cast<off_t>(pgoff * 4096));
  };
  ops.vmap = [priv](Buffer& b) -> Result<std::span<std::byte>> {
    ++priv(b).counters->vmap;
    return std::span<std::byte>(priv(b).memory);
  };
  ops.vunmap = [priv](Buffer& b, std::span<std::byte>) { ++priv(b).counters->vunmap; };
  return ops;
}

inline SharedFd fakeMemfd(std::uint64_t size) {
  auto fd = sys::memfdCreate("zbuf-test", MFD_CLOEXEC);
  if (!fd.ok() || !sys::ftruncate(fd->get(), static_cast<off_t>(size)).ok()) {
    return {};
  }
  return SharedFd::adopt(std::move(*fd));
}

inline ExportInfo fakeInfo(std::shared_ptr<FakeCounters> counters, std::uint64_t size = 16384,
                           bool dynamic = false) {
  ExportInfo info;
  info.exporterName = "fake";
  info.ops = std::make_shared<const ExporterOps>(fakeOps(dynamic));
  info.size = size;
  info.flags = O_RDWR;
  info.fd = fakeMemfd(size);
  auto priv = std::make_shared<FakePriv>();
  priv->counters = std::move(counters);
  priv->memory.resize(size);
  info.priv = priv;
  return info;
}

inline BufferPtr fakeBuffer(std::shared_ptr<FakeCounters> counters, std::uint64_t size = 16384,
                            bool dynamic = false) {
  auto b = Buffer::exportBuffer(fakeInfo(std::move(counters), size, dynamic));
  return b.ok() ? std::move(*b) : nullptr;
}

}  // namespace zbuf::test
