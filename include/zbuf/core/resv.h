// Resv: the reservation object (the kernel's dma_resv). It holds the fences of every
// outstanding access to a buffer, each tagged with a usage, and a wait-die lock.
//
// Usages are ordered KERNEL < WRITE < READ < BOOKKEEP; a query for usage U covers every fence
// whose usage is <= U (so waiting for READ waits for kernel, write and read fences).
//
// Modifying the set needs the lock: reserve slots first (can fail), then add (cannot fail, and
// consumes a reserved slot). Reserved slots are only valid until the unlock. Adding a fence
// replaces an existing entry of the same context when the old entry's usage is >= the new one
// and the new fence is later or the same, and replaces any entry that has already signalled;
// otherwise it appends. So a usage can be promoted (BOOKKEEP -> READ -> WRITE) by re-adding,
// never degraded.
//
// Queries (test, wait, snapshot, singleton, unlocked iteration) need no lock and see a
// consistent set while fences are added and signalled concurrently.
//
// Thread-safety: thread-safe. Functions ending in Locked require the caller to hold the lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/core/fence.h"
#include "zbuf/core/ww_mutex.h"

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
  ~Resv();
  Resv(const Resv&) = delete;
  Resv& operator=(const Resv&) = delete;

  // --- locking (see ww_mutex.h for the wait-die rules) ---------------------------------------
  [[nodiscard]] Result<void> lock(WwAcquireCtx* ctx = nullptr);
  [[nodiscard]] Result<void> lockTimeout(WwAcquireCtx* ctx, Duration timeout);
  void lockSlow(WwAcquireCtx& ctx);
  [[nodiscard]] bool trylock();
  // Unlocking drops every reserved but unused slot.
  void unlock() noexcept;
  void assertHeld() const noexcept;
  [[nodiscard]] WwMutex& mutex() noexcept;

  // --- changing the fences (lock held) -------------------------------------------------------
  // dma_resv_reserve_fences: EINVAL for 0, ENOMEM if the slots cannot be had.
  [[nodiscard]] Result<void> reserveFencesLocked(unsigned count);
  // dma_resv_add_fence: needs the lock and a reserved slot (a missing slot is a bug: reported
  // and aborts). Containers (arrays, chains) are refused as a bug, like the kernel's WARN.
  void addFenceLocked(FencePtr fence, ResvUsage usage);
  // dma_resv_replace_fences: every fence of `context` becomes `replacement` with `usage`.
  void replaceFencesLocked(std::uint64_t context, const FencePtr& replacement, ResvUsage usage);

  // --- queries (no lock needed) --------------------------------------------------------------
  // True if no unsignalled fence has a usage <= `usage`.
  [[nodiscard]] bool testSignaled(ResvUsage usage) const;
  // dma_resv_wait_timeout: the time left (>0; 1ns for timeout 0 when all signalled), 0 on
  // timeout, EINVAL for a negative timeout.
  [[nodiscard]] Result<Duration> waitTimeout(ResvUsage usage, Duration timeout) const;
  // A snapshot of the fences with usage <= `usage` (dma_resv_get_fences).
  [[nodiscard]] std::vector<FencePtr> getFences(ResvUsage usage) const;
  // The same with each fence's usage.
  [[nodiscard]] std::vector<Entry> entries(ResvUsage usage) const;
  // dma_resv_get_singleton: nullptr when there is none, the fence when there is one, a new
  // fence array otherwise.
  [[nodiscard]] Result<FencePtr> getSingleton(ResvUsage usage) const;
  // Number of fence entries (signalled ones included until compacted).
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

 private:
  [[nodiscard]] std::vector<Entry> entriesLocked(ResvUsage usage) const;

  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace zbuf
