// Operations several targets share: the driver side of fences and buffers (what a device would do
// to the files the application holds), and the fds of the real kernel the pool also holds.
#pragma once

#include <fcntl.h>

#include <cstring>

#include "fuzz_support.h"
#include "kernel_rules.h"
#include "zbuf/core/resv.h"
#include "zbuf/core/resv_lock.h"
#include "zbuf/heaps/system_heap.h"

namespace zbuf::fuzz {

inline constexpr std::size_t kMaxPool = 40;

// A new fence of a harness timeline, as a sync file in the pool.
inline void newSyncFile(Session& s, Input& in) {
  static const auto kTimelines = [] {
    std::array<std::shared_ptr<Timeline>, 3> t{Timeline::create("fuzz", "a"),
                                               Timeline::create("fuzz", "b"),
                                               Timeline::create("gpu", "ring0")};
    return t;
  }();
  if (s.pool().size() >= kMaxPool) {
    return;
  }
  const std::uint8_t how = in.u8();
  auto fence = kTimelines[how % kTimelines.size()]->createFence();
  if ((how & 0x10) != 0) {
    fence->setError(-static_cast<int>(in.u8() % 130 + 1));
  }
  if ((how & 0x20) != 0) {
    (void)fence->signal();
  }
  s.watchFence(fence, true);
  auto fd = s.ctx().installSyncFile(fence);
  if (!fd.ok()) {
    fail("installSyncFile: {}", fd.error().describe());
  }
  s.track(std::move(*fd), Kind::SyncFile);
}

// Signals one pending harness fence (perhaps with an error first).
inline void signalOne(Session& s, Input& in) {
  const std::uint8_t how = in.u8();
  std::vector<CountedFence*> pending;
  for (CountedFence& c : s.fences()) {
    if (c.harness && !c.fence->isSignaledFlag()) {
      pending.push_back(&c);
    }
  }
  if (pending.empty()) {
    return;
  }
  Fence& f = *pending[how % pending.size()]->fence;
  if ((how & 0x80) != 0) {
    f.setError(-EIO);
  }
  if (!f.signal()) {
    fail("a pending fence did not signal");
  }
}

// A system-heap buffer installed in the context, by the driver API.
inline void newBuffer(Session& s, Input& in) {
  if (s.pool().size() >= kMaxPool) {
    return;
  }
  const std::uint64_t size = (in.u8() % 8 + 1) * sys::pageSize();
  auto buffer = SystemHeap::instance()->allocate(size);
  if (!buffer.ok()) {
    fail("system heap: {}", buffer.error().describe());
  }
  auto fd = s.ctx().installBuffer(std::move(*buffer), (in.u8() & 1) != 0 ? O_RDONLY : O_RDWR);
  if (!fd.ok()) {
    fail("installBuffer: {}", fd.error().describe());
  }
  s.track(std::move(*fd), Kind::DmaBuf);
}

// Before a call: SYNC START waits on the buffer's implicit fences with no time limit, so the
// harness signals its own fences first and skips the call if a device's fence is still pending
// (an IIO block queued on a disabled buffer waits for the enable). True: make the call.
inline bool beforeSync(Session& s, IoctlCall& call) {
  using namespace zbuf::uapi;
  if (call.cmd != kDmaBufIoctlSync || call.target.kind != Kind::DmaBuf || call.arg == nullptr) {
    return true;
  }
  s.signalAll();
  std::uint64_t flags = 0;
  std::memcpy(&flags, call.arg, sizeof flags);
  auto buffer = s.ctx().bufferFromFd(call.target.fd);
  if (!buffer.ok() || (flags & kDmaBufSyncEnd) != 0) {
    return true;
  }
  const ResvUsage waitsFor = (flags & kDmaBufSyncWrite) != 0 ? ResvUsage::Read : ResvUsage::Write;
  return (*buffer)->resv().testSignaled(waitsFor);
}

// A device adds a new harness fence to a buffer's reservation object (an implicit fence).
inline void deviceFence(Session& s, Input& in) {
  static const auto kTimeline = Timeline::create("fuzz-dev", "dma");
  auto t = s.pickKind(in, Kind::DmaBuf);
  const std::uint8_t how = in.u8();
  if (!t) {
    return;
  }
  auto buffer = s.ctx().bufferFromFd(t->fd);
  if (!buffer.ok()) {
    fail("bufferFromFd of a pool dma-buf: {}", buffer.error().describe());
  }
  auto fence = kTimeline->createFence();
  s.watchFence(fence, true);
  static constexpr std::array<ResvUsage, 4> kUsages{ResvUsage::Kernel, ResvUsage::Write,
                                                    ResvUsage::Read, ResvUsage::Bookkeep};
  Resv& resv = (*buffer)->resv();
  const ResvLock lock(resv);
  if (!resv.reserveFencesLocked(1).ok()) {
    fail("reserveFencesLocked(1) failed");
  }
  resv.addFenceLocked(fence, kUsages[how % kUsages.size()]);
}

// An fd of the real kernel: a pipe end or a plain memfd (sealed or not), for the calls to try on
// something that is not a zbuf file.
inline void newForeign(Session& s, Input& in) {
  if (s.pool().size() >= kMaxPool) {
    return;
  }
  const std::uint8_t how = in.u8();
  if ((how & 1) != 0) {
    auto p = sys::pipe();
    if (p.ok()) {
      // Non-blocking, as every fd of the harness: a read of an empty pipe must not sleep.
      (void)sys::setFileFlags(p->first.get(), O_NONBLOCK);
      (void)sys::setFileFlags(p->second.get(), O_NONBLOCK);
      s.track(std::move(p->first), Kind::Foreign);
      s.track(std::move(p->second), Kind::Foreign);
    }
    return;
  }
  auto fd = sys::memfdCreate("fuzz", MFD_ALLOW_SEALING | MFD_CLOEXEC);
  if (!fd.ok()) {
    return;
  }
  (void)sys::ftruncate(fd->get(), static_cast<off_t>((how >> 1) % 8) * 4096);
  if ((how & 0x10) != 0) {
    (void)sys::addSeals(fd->get(), F_SEAL_SHRINK);
  }
  if ((how & 0x20) != 0) {
    (void)sys::addSeals(fd->get(), F_SEAL_WRITE);
  }
  s.track(std::move(*fd), Kind::Foreign);
}

// Opens a node of the context (O_NONBLOCK always: the harness never sleeps on a file).
inline void openNode(Session& s, Input& in, std::span<const std::pair<const char*, Kind>> nodes) {
  if (s.pool().size() >= kMaxPool || nodes.empty()) {
    return;
  }
  const auto& [path, kind] = nodes[in.u8() % nodes.size()];
  static constexpr std::array<int, 3> kModes{O_RDONLY, O_WRONLY, O_RDWR};
  const int flags = kModes[in.u8() % kModes.size()] | O_NONBLOCK;
  const std::size_t before = openFdCount();
  auto fd = s.ctx().open(path, flags);
  if (fd.ok()) {
    s.track(std::move(*fd), kind);
  } else if (openFdCount() > before) {
    fail("open({}) failed with errno {} and left an fd", path, fd.code());
  }
}

}  // namespace zbuf::fuzz
