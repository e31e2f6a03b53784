// Target core_ops: operation sequences on the core, decoded from the input: fences of a few
// timelines (signal, error, callbacks added and removed, waits that do not sleep), arrays (all
// and any), chains, merges and unwraps, reservation objects (reserve, add, replace, test,
// singleton, fences by usage), buffers with CPU access brackets, sync files made, merged and
// queried. After every step the rules of docs/fences.md are checked; at the end every fence
// signals exactly once.
#include <array>
#include <cstring>

#include "common_ops.h"
#include "zbuf/core/fence_array.h"
#include "zbuf/core/fence_chain.h"
#include "zbuf/core/fence_unwrap.h"
#include "zbuf/core/sync_file.h"

namespace zbuf::fuzz {
namespace {

using namespace std::chrono_literals;

struct Core {
  std::vector<FencePtr> fences;  // every fence made (leaves, arrays, chains, merges)
  std::vector<std::shared_ptr<Resv>> resvs;
  std::vector<BufferPtr> buffers;
  std::vector<std::unique_ptr<FenceCallbackFn<std::function<void(Fence&)>>>> extraCbs;
  std::vector<std::unique_ptr<int>> extraCounts;
  std::array<std::shared_ptr<Timeline>, 3> timelines{Timeline::create("fuzz", "t0"),
                                                     Timeline::create("fuzz", "t1"),
                                                     Timeline::create("fuzz", "t2")};
};

FencePtr pickFence(Core& c, Input& in) {
  const std::uint8_t b = in.u8();
  if (c.fences.empty()) {
    return nullptr;
  }
  return c.fences[b % c.fences.size()];
}

void checkFence(const FencePtr& f) {
  // Chains signal on a worker thread, so the state may move between the reads: read the flag,
  // the status, the flag again; each read must agree with the ones before it.
  const bool before = f->isSignaledFlag();
  const int status = f->status();
  const bool after = f->isSignaledFlag();
  if ((before && status == 0) || (status != 0 && !after)) {
    fail("fence {} seqno {}: signalled {}/{} but status {}", f->driverName(), f->seqno(), before,
         after, status);
  }
  if (before && f->error() != 0 && status != f->error()) {
    fail("fence {}: error {} but status {}", f->driverName(), f->error(), status);
  }
  if (before && f->timestampNs() == 0) {
    fail("fence {}: signalled with no timestamp", f->driverName());
  }
}

void addFence(Session& s, Core& c, FencePtr f, bool harness) {
  if (c.fences.size() >= 64) {
    return;
  }
  s.watchFence(f, harness);
  c.fences.push_back(std::move(f));
}

void step(Session& s, Core& c, Input& in) {
  const std::uint8_t op = in.u8() % 16;
  switch (op) {
    case 0: {  // a new leaf
      const std::uint8_t how = in.u8();
      auto& tl = c.timelines[how % c.timelines.size()];
      FencePtr f = (how & 0x10) != 0 ? tl->createFence(in.u64()) : tl->createFence();
      addFence(s, c, f, true);
      return;
    }
    case 1: {  // signal, maybe with an error first
      FencePtr f = pickFence(c, in);
      const std::uint8_t how = in.u8();
      if (!f || FenceArray::isArray(*f) || FenceChain::isChain(*f)) {
        return;
      }
      const bool was = f->isSignaledFlag();
      if ((how & 1) != 0) {
        f->setError(-static_cast<int>(how % 130 + 1));
      }
      if (f->signal() == was) {
        fail("signal() on a fence {}signalled returned {}", was ? "" : "not ", !was);
      }
      return;
    }
    case 2: {  // an array of 1..4 members, all or any
      std::vector<FencePtr> members;
      const unsigned n = in.u8() % 4 + 1;
      for (unsigned i = 0; i < n; ++i) {
        if (FencePtr f = pickFence(c, in)) {
          members.push_back(f);
        }
      }
      const bool any = (in.u8() & 1) != 0;
      auto a = FenceArray::create(members, Timeline::allocateContexts(1), 1, any);
      bool leaves = !members.empty();
      for (const FencePtr& m : members) {
        leaves = leaves && !FenceArray::isArray(*m) && !FenceChain::isChain(*m);
      }
      if (a.ok() != leaves) {
        fail("FenceArray::create of {} members (leaves: {}) gave {}", members.size(), leaves,
             a.ok() ? "an array" : a.error().describe());
      }
      if (a.ok()) {
        addFence(s, c, *a, false);
      }
      return;
    }
    case 3: {  // a chain link
      FencePtr prev = (in.u8() & 1) != 0 ? pickFence(c, in) : nullptr;
      FencePtr f = pickFence(c, in);
      const std::uint64_t seqno = in.u64();
      if (!f) {
        return;
      }
      auto ch = FenceChain::create(prev, f, seqno);
      if (ch.ok() == FenceChain::isChain(*f)) {
        fail("FenceChain::create with a {} fence gave {}",
             FenceChain::isChain(*f) ? "chain" : "leaf",
             ch.ok() ? "a chain" : ch.error().describe());
      }
      if (ch.ok()) {
        addFence(s, c, *ch, false);
      }
      return;
    }
    case 4: {  // merge
      std::vector<FencePtr> in2;
      const unsigned n = in.u8() % 4 + 1;
      for (unsigned i = 0; i < n; ++i) {
        if (FencePtr f = pickFence(c, in)) {
          in2.push_back(f);
        }
      }
      if (in2.empty()) {
        return;
      }
      auto m = mergeFences(in2);
      if (!m.ok() || !*m) {
        fail("mergeFences of {} fences: {}", in2.size(), m.ok() ? "null" : m.error().describe());
      }
      bool allSignalled = true;
      for (const FencePtr& f : in2) {
        for (const FencePtr& leaf : unwrapFences(f)) {
          allSignalled = allSignalled && leaf->isSignaledFlag();
        }
      }
      if (allSignalled && !(*m)->isSignaled()) {
        fail("mergeFences of signalled fences is pending");
      }
      for (const FencePtr& leaf : unwrapFences(*m)) {
        if (FenceArray::isArray(*leaf) || FenceChain::isChain(*leaf)) {
          fail("unwrapFences gave a container");
        }
      }
      addFence(s, c, *m, false);
      return;
    }
    case 5: {  // a callback added and maybe removed at once
      FencePtr f = pickFence(c, in);
      const bool remove = (in.u8() & 1) != 0;
      if (!f || c.extraCbs.size() >= 32) {
        return;
      }
      auto count = std::make_unique<int>(0);
      int* n = count.get();
      auto cb = std::make_unique<FenceCallbackFn<std::function<void(Fence&)>>>(
          std::function<void(Fence&)>([n](Fence&) { ++*n; }));
      const bool was = f->isSignaledFlag();
      auto added = f->addCallback(*cb);
      if (added.ok() == was && !(added.ok() && !was)) {
        if (was && added.ok()) {
          fail("addCallback on a signalled fence succeeded; the kernel says ENOENT");
        }
      }
      if (!added.ok() && added.code() != ENOENT) {
        fail("addCallback: errno {}", added.code());
      }
      if (added.ok() && remove) {
        if (!f->removeCallback(*cb) && *n != 1) {
          fail("removeCallback returned false but the callback ran {} times", *n);
        }
      }
      c.extraCbs.push_back(std::move(cb));
      c.extraCounts.push_back(std::move(count));
      return;
    }
    case 6: {  // wait without sleeping
      FencePtr f = pickFence(c, in);
      if (!f) {
        return;
      }
      auto r = f->waitTimeout(0ns);
      if (!r.ok() && r.code() != ETIME && r.code() != ETIMEDOUT) {
        fail("waitTimeout(0): errno {}", r.code());
      }
      return;
    }
    case 7: {  // a new reservation object
      if (c.resvs.size() < 4) {
        c.resvs.push_back(std::make_shared<Resv>());
      }
      return;
    }
    case 8: {  // add a fence to a resv
      FencePtr f = pickFence(c, in);
      const std::uint8_t how = in.u8();
      if (!f || c.resvs.empty()) {
        return;
      }
      static constexpr std::array<ResvUsage, 4> kUsages{ResvUsage::Kernel, ResvUsage::Write,
                                                        ResvUsage::Read, ResvUsage::Bookkeep};
      Resv& r = *c.resvs[how % c.resvs.size()];
      const ResvLock lock(r);
      if (!r.reserveFencesLocked(1 + how % 3).ok()) {
        fail("reserveFencesLocked failed");
      }
      if ((how & 0x80) != 0) {
        r.replaceFencesLocked(f->context(), f, kUsages[(how >> 4) % 4]);
      } else {
        r.addFenceLocked(f, kUsages[(how >> 4) % 4]);
      }
      return;
    }
    case 9: {  // test, fences and singleton agree
      if (c.resvs.empty()) {
        return;
      }
      const std::uint8_t how = in.u8();
      static constexpr std::array<ResvUsage, 4> kUsages{ResvUsage::Kernel, ResvUsage::Write,
                                                        ResvUsage::Read, ResvUsage::Bookkeep};
      const ResvUsage usage = kUsages[(how >> 2) % 4];
      Resv& r = *c.resvs[how % c.resvs.size()];
      const auto fences = r.getFences(usage);
      bool all = true;
      for (const FencePtr& f : fences) {
        all = all && f->isSignaled();
      }
      if (r.testSignaled(usage) != all) {
        fail("Resv::testSignaled({}) is {} but the fences say {}", toString(usage), !all, all);
      }
      auto single = r.getSingleton(usage);
      if (!single.ok()) {
        fail("getSingleton: {}", single.error().describe());
      }
      if ((*single == nullptr) != fences.empty()) {
        fail("getSingleton({}) with {} fences gave {}", toString(usage), fences.size(),
             *single ? "a fence" : "none");
      }
      if (fences.size() == 1 && *single != fences[0]) {
        fail("getSingleton of one fence is not that fence");
      }
      if (*single) {
        addFence(s, c, *single, false);
      }
      return;
    }
    case 10: {  // a buffer
      if (c.buffers.size() >= 4) {
        return;
      }
      auto b = SystemHeap::instance()->allocate((in.u8() % 4 + 1) * sys::pageSize());
      if (!b.ok()) {
        fail("system heap: {}", b.error().describe());
      }
      c.buffers.push_back(std::move(*b));
      return;
    }
    case 11: {  // CPU access: begin waits on the implicit fences, so the harness signals first
      if (c.buffers.empty()) {
        return;
      }
      const std::uint8_t how = in.u8();
      static constexpr std::array<DmaDirection, 3> kDirs{
          DmaDirection::ToDevice, DmaDirection::FromDevice, DmaDirection::Bidirectional};
      Buffer& b = *c.buffers[how % c.buffers.size()];
      const DmaDirection dir = kDirs[(how >> 2) % 3];
      if ((how & 0x80) != 0) {
        (void)b.endCpuAccess(dir);
      } else {
        s.signalAll();
        auto r = b.beginCpuAccess(dir);
        if (!r.ok()) {
          fail("beginCpuAccess: {}", r.error().describe());
        }
      }
      return;
    }
    case 12: {  // a buffer fence, as a device adds one
      FencePtr f = pickFence(c, in);
      const std::uint8_t how = in.u8();
      if (!f || c.buffers.empty()) {
        return;
      }
      Resv& r = c.buffers[how % c.buffers.size()]->resv();
      const ResvLock lock(r);
      if (!r.reserveFencesLocked(1).ok()) {
        fail("reserveFencesLocked failed");
      }
      r.addFenceLocked(f, (how & 1) != 0 ? ResvUsage::Write : ResvUsage::Read);
      return;
    }
    case 13: {  // a sync file of a fence, merged and queried through the file layer
      FencePtr f = pickFence(c, in);
      if (!f || s.pool().size() >= kMaxPool) {
        return;
      }
      auto fd = s.ctx().installSyncFile(f, "fuzz");
      if (!fd.ok()) {
        fail("installSyncFile: {}", fd.error().describe());
      }
      s.track(std::move(*fd), Kind::SyncFile);
      return;
    }
    case 14: {  // SyncFile::merge and info
      auto a = s.pickKind(in, Kind::SyncFile);
      auto b = s.pickKind(in, Kind::SyncFile);
      if (!a || !b) {
        return;
      }
      auto fa = s.ctx().lookup(a->fd);
      auto fb = s.ctx().lookup(b->fd);
      if (!fa.ok() || !*fa || !fb.ok() || !*fb) {
        fail("a pool sync file is not in the context");
      }
      const SyncFile& sa = (*fa)->data<SyncFile>();
      auto merged = sa.merge("m", (*fb)->data<SyncFile>());
      if (!merged.ok()) {
        fail("SyncFile::merge: {}", merged.error().describe());
      }
      const SyncFile::Info info = merged->file->info(true);
      if (info.numFences != info.fences.size() || info.numFences == 0) {
        fail("SyncFile::info: {} fences counted, {} listed", info.numFences, info.fences.size());
      }
      addFence(s, c, merged->file->fence(), false);
      return;
    }
    default: {  // checks on every fence
      for (const FencePtr& f : c.fences) {
        checkFence(f);
      }
      return;
    }
  }
}

}  // namespace
}  // namespace zbuf::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace zbuf::fuzz;
  Rules rules;
  rules.ioctlErrnos = kernelIoctlErrnos;
  rules.rwErrnos = kernelRwErrnos;
  Session s(std::move(rules));
  {
    Core c;
    Input in(data, size);
    for (int i = 0; !in.done() && i < 512; ++i) {
      step(s, c, in);
    }
    s.signalAll();
    for (const zbuf::FencePtr& f : c.fences) {
      if (!f->waitTimeout(std::chrono::seconds(10)).ok()) {
        fail("a fence ({}) did not signal within 10 s of its leaves", f->driverName());
      }
      checkFence(f);
    }
    for (const auto& n : c.extraCounts) {
      if (*n > 1) {
        fail("a callback ran {} times", *n);
      }
    }
    // Buffers end their CPU access by going away; sync files are closed by finish().
  }
  s.finish();
  return 0;
}
