// Resv: the reservation object (the kernel's dma_resv). It holds the fences of every
// outstanding access to a buffer, each tagged with a usage, and a wait-die lock.
//
// Usages are ordered KERNEL < WRITE < READ < BOOKKEEP; a query for usage U covers every fence
// whose usage is <= U (so waiting for READ waits for kernel, write and read fences).
//
// Modifying the set needs the lock: reserve slots first (can fail), then add (cannot fail,
// never allocates, and consumes a reserved slot). Reserved slots are only valid until the
// unlock: unlock() drops the unused ones (the kernel's debug builds do the same). Adding a
// fence replaces an existing entry of the same context when the old entry's usage is >= the
// new one and the new fence is later or the same, and replaces any entry that has already
// signalled; otherwise it appends. So a usage can be promoted (BOOKKEEP -> READ -> WRITE) by
// re-adding, never degraded.
//
// Queries (test, wait, snapshot, singleton, unlocked iteration) need no lock and see a
// consistent set while fences are added and signalled concurrently: the fence list is a
// fixed-capacity array published through an atomic shared_ptr (replaced when it grows), each
// slot an atomic shared_ptr plus its usage, and a sequence count that writers make odd while
// they change the set; a reader that sees the count change starts over (the kernel's
// dma_resv_iter_restart_unlocked). See docs/locking.md.
//
// Like the kernel's unlocked iterator, the unlocked queries (UnlockedIter, testSignaled,
// waitTimeout, getFences, getSingleton) only see fences that are not yet signalled; the locked
// walk (forEachLocked) and entries() see every entry, signalled or not.
//
// Thread-safety: thread-safe. Functions ending in Locked require the caller to hold the lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/base/source_location.h"
#include "zbuf/core/fence.h"
#include "zbuf/core/ww_mutex.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

enum class ResvUsage : std::uint8_t { Kernel = 0, Write = 1, Read = 2, Bookkeep = 3 };

[[nodiscard]] const char* toString(ResvUsage usage) noexcept;

// dma_resv_usage_rw: the usage a new access must wait for. A writer waits for everyone (READ),
// a reader waits for writers (WRITE).
[[nodiscard]] constexpr ResvUsage usageRw(bool write) noexcept {
  return write ? ResvUsage::Read : ResvUsage::Write;
}

// The wait-die class of every reservation lock (reservation_ww_class).
[[nodiscard]] WwClass& reservationWwClass() noexcept;

class Resv {
 public:
  using Duration = std::chrono::nanoseconds;

  struct Entry {
    FencePtr fence;
    ResvUsage usage;
  };

  Resv();
  // Destroying a locked Resv is a bug of its owner (logged).
  ~Resv();
  Resv(const Resv&) = delete;
  Resv& operator=(const Resv&) = delete;

  // --- locking (see ww_mutex.h for the wait-die rules) ---------------------------------------
  // dma_resv_lock: EDEADLK (back off), EALREADY (ctx holds it already). Without ctx: a plain
  // lock that cannot fail. Reported inside a fence signalling section (checked builds).
  [[nodiscard]] Result<void> lock(WwAcquireCtx* ctx = nullptr,
                                  SourceLocation where = SourceLocation::current());
  // As lock(), giving up with ETIMEDOUT (the explicit form of dma_resv_lock_interruptible).
  [[nodiscard]] Result<void> lockTimeout(WwAcquireCtx* ctx, Duration timeout,
                                         SourceLocation where = SourceLocation::current());
  // dma_resv_lock_slow: after EDEADLK, with no other lock held under ctx; cannot fail.
  void lockSlow(WwAcquireCtx& ctx, SourceLocation where = SourceLocation::current());
  [[nodiscard]] bool trylock();
  // Unlocking drops every reserved but unused slot.
  void unlock() noexcept;
  void assertHeld(SourceLocation where = SourceLocation::current()) const noexcept;
  // The lock itself. Lock and unlock through Resv (unlock() drops the reserved slots).
  [[nodiscard]] WwMutex& mutex() noexcept;

  // --- changing the fences (lock held) -------------------------------------------------------
  // dma_resv_reserve_fences: afterwards at least `count` more fences can be added before the
  // unlock (reserving is not cumulative: reserve(1) twice still allows one add, as in the
  // kernel). EINVAL for 0, ENOMEM if the slots cannot be had. Growing compacts out signalled
  // fences.
  [[nodiscard]] Result<void> reserveFencesLocked(unsigned count);
  // dma_resv_add_fence: needs the lock and a reserved slot; every add consumes one, even one
  // that replaces an entry (stricter than the kernel, which only notices a missing slot when it
  // appends). A missing slot is a bug: logged, then abort() (the kernel's BUG_ON). Containers
  // (arrays, chains) and null fences are refused as a bug: logged, nothing added (the kernel
  // WARNs). Never allocates, never fails.
  void addFenceLocked(FencePtr fence, ResvUsage usage);
  // dma_resv_replace_fences: every fence of `context` becomes `replacement` with `usage`.
  // Needs no reserved slot. A null replacement is a bug (logged, nothing changed).
  void replaceFencesLocked(std::uint64_t context, const FencePtr& replacement, ResvUsage usage);

  // --- queries (no lock needed) --------------------------------------------------------------
  // True if no unsignalled fence has a usage <= `usage`.
  [[nodiscard]] bool testSignaled(ResvUsage usage) const;
  // dma_resv_wait_timeout: the time left (>0; 1ns for timeout 0 when all signalled), 0 on
  // timeout, EINVAL for a negative timeout. Fence::kWaitForever waits without limit.
  [[nodiscard]] Result<Duration> waitTimeout(ResvUsage usage, Duration timeout) const;
  // A snapshot of the unsignalled fences with usage <= `usage` (dma_resv_get_fences).
  [[nodiscard]] std::vector<FencePtr> getFences(ResvUsage usage) const;
  // A consistent snapshot of every entry (signalled ones included) with usage <= `usage`, with
  // each fence's usage, in list order (what dma_resv_describe prints).
  [[nodiscard]] std::vector<Entry> entries(ResvUsage usage) const;
  // dma_resv_get_singleton: nullptr when no unsignalled fence, the fence when there is one, a
  // new fence array (all-signalled, fresh context, seqno 1) otherwise. ENOMEM if it cannot be
  // built.
  [[nodiscard]] Result<FencePtr> getSingleton(ResvUsage usage) const;
  // Number of fence entries (signalled ones included until compacted by a growth).
  [[nodiscard]] std::size_t size() const;

  // Calls fn(fence, usage) for every fence with usage <= `usage`, lock held
  // (dma_resv_for_each_fence). Fences added by fn are not visited.
  template <typename F>
  void forEachLocked(ResvUsage usage, F&& fn) const {
    assertHeld();
    for (const Entry& e : entriesLocked(usage)) {
      fn(e.fence, e.usage);
    }
  }

  struct FenceList;

  // The unlocked walk (dma_resv_iter_first_unlocked / dma_resv_for_each_fence_unlocked):
  //
  //   Resv::UnlockedIter it(resv, ResvUsage::Read);
  //   for (FencePtr f = it.first(); f; f = it.next()) {
  //     if (it.isRestarted()) { /* forget what was gathered so far */ }
  //     ... f, it.usage() ...
  //   }
  //
  // Visits the unsignalled fences with usage <= the query usage. When the set changes during
  // the walk (an add, a replacement, a growth), the walk starts over from the first fence and
  // isRestarted() is true for the first fence after the restart: a caller that accumulates
  // state must drop it then. Holds a reference to each fence it returns. Needs no lock; takes
  // no lock; never blocks (a reader spins only while a writer is inside its short update).
  // One iterator belongs to one thread.
  class UnlockedIter {
   public:
    UnlockedIter(const Resv& resv, ResvUsage usage) noexcept;
    ~UnlockedIter();
    UnlockedIter(const UnlockedIter&) = delete;
    UnlockedIter& operator=(const UnlockedIter&) = delete;

    // Starts (over) and returns the first fence, or nullptr.
    [[nodiscard]] FencePtr first();
    // The next fence, or nullptr at the end.
    [[nodiscard]] FencePtr next();
    // True if the walk started over before returning the current fence (first() counts).
    [[nodiscard]] bool isRestarted() const noexcept { return restarted_; }
    // The usage of the current fence (dma_resv_iter_usage).
    [[nodiscard]] ResvUsage usage() const noexcept { return fenceUsage_; }
    // Makes the next step start over as if the set had changed (what st-dma-resv provokes by
    // corrupting the cursor; also for a caller that wants to start again).
    void forceRestart() noexcept { forceRestart_ = true; }

   private:
    FencePtr walk();
    void restart();

    const Resv* resv_;
    ResvUsage query_;
    std::shared_ptr<const FenceList> list_;
    std::uint64_t seq_ = 0;
    unsigned index_ = 0;
    unsigned count_ = 0;
    ResvUsage fenceUsage_ = ResvUsage::Kernel;
    bool restarted_ = false;
    bool forceRestart_ = true;
  };

  // Calls fn(fence, usage, restarted) for each fence of an UnlockedIter walk; `restarted` is
  // true on the first fence after the walk started over.
  template <typename F>
  void forEachUnlocked(ResvUsage usage, F&& fn) const {
    UnlockedIter it(*this, usage);
    for (FencePtr f = it.first(); f; f = it.next()) {
      fn(f, it.usage(), it.isRestarted());
    }
  }

 private:
  [[nodiscard]] std::vector<Entry> entriesLocked(ResvUsage usage) const;

  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace zbuf
#pragma GCC visibility pop
