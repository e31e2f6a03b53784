// Reservation object. Writers (lock held) change a fixed-capacity slot array in place and
// replace the whole array only when reserving needs more room; readers never lock:
//
//  - State::list holds the current FenceList in a SharedSlot (a shared_ptr copied and swapped
//    under a one-byte spinlock held for one reference-count increment); a reader holds a
//    reference to the list it walks, so a replaced list stays alive until its last reader lets
//    go.
//  - Each slot is a SharedSlot<Fence> and an atomic usage, so a reader can always take a
//    reference to the fence it reads, even while the writer replaces it.
//  - State::seq is a sequence count (even: stable, odd: a writer is changing the set). A reader
//    notes it before reading and checks it after: if it changed, the read may mix two versions
//    of the set and the reader starts over (the kernel's dma_resv_iter_restart_unlocked).
//
// Adding never allocates: appending writes into a slot that reserveFencesLocked() made room
// for, replacing stores into an existing slot.
#include "zbuf/core/resv.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <thread>

#include "zbuf/base/log.h"
#include "zbuf/core/fence_array.h"
#include "zbuf/core/fence_chain.h"

namespace zbuf {

ZBUF_LOG_CATEGORY(Resv);

const char* toString(ResvUsage usage) noexcept {
  switch (usage) {
    case ResvUsage::Kernel:
      return "kernel";
    case ResvUsage::Write:
      return "write";
    case ResvUsage::Read:
      return "read";
    case ResvUsage::Bookkeep:
      return "bookkeep";
  }
  return "?";
}

WwClass& reservationWwClass() noexcept {
  static WwClass cls("reservation_ww_class");
  return cls;
}

namespace {

// A shared_ptr that one writer replaces while readers copy it: the copy (one reference-count
// increment) and the swap happen under a one-byte spinlock. This is what libstdc++'s
// std::atomic<std::shared_ptr> does, except that GCC 12's load() drops its lock with relaxed
// order (a real race that ThreadSanitizer reports), so zbuf keeps its own.
template <typename T>
class SharedSlot {
 public:
  SharedSlot() = default;
  SharedSlot(const SharedSlot&) = delete;
  SharedSlot& operator=(const SharedSlot&) = delete;
  ~SharedSlot() = default;

  [[nodiscard]] std::shared_ptr<T> load() const noexcept {
    lock();
    std::shared_ptr<T> copy = ptr_;
    unlock();
    return copy;
  }
  // Returns the previous value, which the caller releases outside the lock.
  [[nodiscard]] std::shared_ptr<T> exchange(std::shared_ptr<T> value) noexcept {
    lock();
    ptr_.swap(value);
    unlock();
    return value;
  }
  // For the only writer (the reservation lock's holder): reads without the spinlock, which is
  // safe because nobody else writes.
  [[nodiscard]] const std::shared_ptr<T>& peekLocked() const noexcept { return ptr_; }

 private:
  void lock() const noexcept {
    for (unsigned spins = 0; busy_.test_and_set(std::memory_order_acquire); ++spins) {
      if (spins > 64) {
        std::this_thread::yield();
      }
    }
  }
  void unlock() const noexcept { busy_.clear(std::memory_order_release); }

  mutable std::atomic_flag busy_;  // guards ptr_ for copies and swaps
  std::shared_ptr<T> ptr_;
};

}  // namespace

struct Resv::FenceList {
  struct Slot {
    SharedSlot<Fence> fence;
    std::atomic<ResvUsage> usage{ResvUsage::Kernel};
  };

  explicit FenceList(unsigned cap) : capacity(cap), slots(std::make_unique<Slot[]>(cap)) {}

  const unsigned capacity;
  std::atomic<unsigned> count{0};  // slots [0, count) are in use; grows under the lock
  std::unique_ptr<Slot[]> slots;
};

struct Resv::State {
  WwMutex mutex{reservationWwClass()};
  // The current list (null until the first reservation). Stored under the lock, loaded by all.
  SharedSlot<FenceList> list;
  // Sequence count of the set: odd while a writer (lock held) changes it.
  std::atomic<std::uint64_t> seq{0};
  unsigned reserved = 0;  // slots reserved and not yet used; guarded by mutex

  // The sequence count without fences (ThreadSanitizer does not model them): writers store
  // every slot, usage and count with release semantics after making the count odd, readers
  // load them with acquire semantics, so a reader that sees any part of an update also sees the
  // odd (or later) count when it checks at the end.
  void writeBegin() noexcept {
    seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void writeEnd() noexcept {
    seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  // A stable (even) sequence value to validate a read against.
  [[nodiscard]] std::uint64_t readBegin() const noexcept {
    for (unsigned spins = 0;; ++spins) {
      const std::uint64_t s = seq.load(std::memory_order_acquire);
      if ((s & 1U) == 0) {
        return s;
      }
      if (spins > 64) {
        std::this_thread::yield();
      }
    }
  }
  [[nodiscard]] bool readValid(std::uint64_t begin) const noexcept {
    return seq.load(std::memory_order_acquire) == begin;
  }
};

namespace {

// Arrays and chains must not be added to a reservation object: their members must be.
bool isContainer(const Fence& fence) {
  return FenceArray::isArray(fence) || FenceChain::isChain(fence);
}

std::string describe(const Fence& f) {
  return fmt::format("{}:{} ctx {} seq {}", f.driverName(), f.timelineName(), f.context(),
                     f.seqno());
}

}  // namespace

Resv::Resv() : state_(std::make_unique<State>()) {}

Resv::~Resv() {
  if (state_->mutex.isLocked()) {
    log(LogResv, LogLevel::Error, "reservation object destroyed while locked");
  }
}

// --- locking ---------------------------------------------------------------------------------

Result<void> Resv::lock(WwAcquireCtx* ctx, SourceLocation where) {
  return state_->mutex.lock(ctx, where);
}

Result<void> Resv::lockTimeout(WwAcquireCtx* ctx, Duration timeout, SourceLocation where) {
  return state_->mutex.lockTimeout(ctx, timeout, where);
}

void Resv::lockSlow(WwAcquireCtx& ctx, SourceLocation where) {
  state_->mutex.lockSlow(ctx, where);
}

bool Resv::trylock() {
  return state_->mutex.trylock();
}

void Resv::unlock() noexcept {
  if (state_->mutex.heldByCurrentThread()) {
    state_->reserved = 0;  // dma_resv_reset_max_fences
  }
  state_->mutex.unlock();
}

void Resv::assertHeld(SourceLocation where) const noexcept {
  state_->mutex.assertHeld(where);
}

WwMutex& Resv::mutex() noexcept {
  return state_->mutex;
}

// --- changing the fences -----------------------------------------------------------------------

Result<void> Resv::reserveFencesLocked(unsigned count) {
  assertHeld();
  if (count == 0) {
    return Error(EINVAL, "dma_resv_reserve_fences", "reserving 0 fence slots is a bug");
  }
  State& s = *state_;
  const std::shared_ptr<FenceList>& old = s.list.peekLocked();
  const unsigned used = old ? old->count.load(std::memory_order_relaxed) : 0;
  const unsigned capacity = old ? old->capacity : 0;
  if (count > UINT32_MAX / 2 - used) {
    return Error(ENOMEM, "dma_resv_reserve_fences",
                 fmt::format("{} more fence slots on top of {} do not fit", count, used));
  }
  if (used + count <= capacity) {
    s.reserved = std::max(s.reserved, count);
    return {};
  }
  // Grow: count the fences still pending (signalled ones are compacted out).
  std::vector<Entry> keep;
  std::shared_ptr<FenceList> grown;
  try {
    keep.reserve(used);
    for (unsigned i = 0; i < used; ++i) {
      FencePtr f = old->slots[i].fence.peekLocked();
      if (f && !f->isSignaled()) {
        keep.push_back({std::move(f), old->slots[i].usage.load(std::memory_order_relaxed)});
      }
    }
    const auto live = static_cast<unsigned>(keep.size());
    const unsigned newCapacity = std::max({live + count, capacity * 2, 4U});
    grown = std::make_shared<FenceList>(newCapacity);
  } catch (const std::bad_alloc&) {
    return Error(ENOMEM, "dma_resv_reserve_fences",
                 fmt::format("no memory for {} more fence slots", count));
  }
  for (std::size_t i = 0; i < keep.size(); ++i) {
    (void)grown->slots[i].fence.exchange(std::move(keep[i].fence));
    grown->slots[i].usage.store(keep[i].usage, std::memory_order_relaxed);
  }
  grown->count.store(static_cast<unsigned>(keep.size()), std::memory_order_relaxed);
  s.writeBegin();
  const std::shared_ptr<FenceList> previous = s.list.exchange(std::move(grown));
  s.writeEnd();
  s.reserved = std::max(s.reserved, count);
  return {};
}

void Resv::addFenceLocked(FencePtr fence, ResvUsage usage) {
  assertHeld();
  if (!fence) {
    log(LogResv, LogLevel::Error, "dma_resv_add_fence: a null fence is a bug (not added)");
    return;
  }
  if (isContainer(*fence)) {
    log(LogResv, LogLevel::Error,
        "dma_resv_add_fence: {} is a container; add its fences one by one (not added)",
        describe(*fence));
    return;
  }
  State& s = *state_;
  if (s.reserved == 0) {
    log(LogResv, LogLevel::Error,
        "dma_resv_add_fence: no reserved slot for {} (call reserveFencesLocked first): BUG",
        describe(*fence));
    std::abort();
  }
  --s.reserved;
  FenceList& list = *s.list.peekLocked();  // a reservation made one
  const unsigned count = list.count.load(std::memory_order_relaxed);
  unsigned i = 0;
  for (; i < count; ++i) {
    FenceList::Slot& slot = list.slots[i];
    const FencePtr& old = slot.fence.peekLocked();
    const ResvUsage oldUsage = slot.usage.load(std::memory_order_relaxed);
    if ((old->context() == fence->context() && oldUsage >= usage &&
         Fence::isLaterOrSame(*fence, *old)) ||
        old->isSignaled()) {
      break;
    }
  }
  s.writeBegin();
  list.slots[i].usage.store(usage, std::memory_order_release);
  FencePtr old = list.slots[i].fence.exchange(std::move(fence));
  if (i == count) {
    list.count.store(count + 1, std::memory_order_release);
  }
  s.writeEnd();
  // `old` (if any) is released here, after the update: its destructor may run fence code.
}

void Resv::replaceFencesLocked(std::uint64_t context, const FencePtr& replacement,
                               ResvUsage usage) {
  assertHeld();
  if (!replacement) {
    log(LogResv, LogLevel::Error,
        "dma_resv_replace_fences: a null replacement for context {} is a bug (nothing changed)",
        context);
    return;
  }
  State& s = *state_;
  const std::shared_ptr<FenceList>& list = s.list.peekLocked();
  if (!list) {
    return;
  }
  const unsigned count = list->count.load(std::memory_order_relaxed);
  for (unsigned i = 0; i < count; ++i) {
    FenceList::Slot& slot = list->slots[i];
    if (slot.fence.peekLocked()->context() != context) {
      continue;
    }
    s.writeBegin();
    slot.usage.store(usage, std::memory_order_release);
    FencePtr old = slot.fence.exchange(replacement);
    s.writeEnd();
  }
}

// --- queries -----------------------------------------------------------------------------------

std::vector<Resv::Entry> Resv::entriesLocked(ResvUsage usage) const {
  std::vector<Entry> out;
  const std::shared_ptr<FenceList>& list = state_->list.peekLocked();
  if (!list) {
    return out;
  }
  const unsigned count = list->count.load(std::memory_order_relaxed);
  for (unsigned i = 0; i < count; ++i) {
    const ResvUsage u = list->slots[i].usage.load(std::memory_order_relaxed);
    if (u <= usage) {
      out.push_back({list->slots[i].fence.peekLocked(), u});
    }
  }
  return out;
}

std::vector<Resv::Entry> Resv::entries(ResvUsage usage) const {
  const State& s = *state_;
  for (;;) {
    const std::uint64_t begin = s.readBegin();
    const std::shared_ptr<FenceList> list = s.list.load();
    std::vector<Entry> out;
    if (list) {
      const unsigned count = list->count.load(std::memory_order_acquire);
      out.reserve(count);
      for (unsigned i = 0; i < count; ++i) {
        const ResvUsage u = list->slots[i].usage.load(std::memory_order_acquire);
        FencePtr f = list->slots[i].fence.load();
        if (u <= usage && f) {
          out.push_back({std::move(f), u});
        }
      }
    }
    if (s.readValid(begin)) {
      return out;
    }
  }
}

std::size_t Resv::size() const {
  const std::shared_ptr<FenceList> list = state_->list.load();
  return list ? list->count.load(std::memory_order_acquire) : 0;
}

bool Resv::testSignaled(ResvUsage usage) const {
  UnlockedIter it(*this, usage);
  return it.first() == nullptr;
}

Result<Resv::Duration> Resv::waitTimeout(ResvUsage usage, Duration timeout) const {
  if (timeout.count() < 0) {
    return Error(EINVAL, "dma_resv_wait_timeout",
                 fmt::format("negative timeout {}ns", timeout.count()));
  }
  Duration left = timeout;
  UnlockedIter it(*this, usage);
  for (FencePtr f = it.first(); f; f = it.next()) {
    ZBUF_ASSIGN_OR_RETURN(Duration r, f->waitTimeout(left));
    if (r.count() == 0) {
      return Duration(0);
    }
    if (timeout.count() != 0) {
      left = r;
    }
  }
  return timeout.count() == 0 ? Duration(1) : left;
}

std::vector<FencePtr> Resv::getFences(ResvUsage usage) const {
  std::vector<FencePtr> out;
  UnlockedIter it(*this, usage);
  for (FencePtr f = it.first(); f; f = it.next()) {
    if (it.isRestarted()) {
      out.clear();
    }
    out.push_back(std::move(f));
  }
  return out;
}

Result<FencePtr> Resv::getSingleton(ResvUsage usage) const {
  std::vector<FencePtr> fences;
  try {
    fences = getFences(usage);
  } catch (const std::bad_alloc&) {
    return Error(ENOMEM, "dma_resv_get_singleton", "no memory for the fence snapshot");
  }
  if (fences.empty()) {
    return FencePtr{};
  }
  if (fences.size() == 1) {
    return std::move(fences.front());
  }
  ZBUF_ASSIGN_OR_RETURN(
      auto array, FenceArray::create(std::move(fences), Timeline::allocateContexts(1), 1, false));
  return FencePtr(std::move(array));
}

// --- unlocked iteration ------------------------------------------------------------------------

Resv::UnlockedIter::UnlockedIter(const Resv& resv, ResvUsage usage) noexcept
    : resv_(&resv), query_(usage) {}

Resv::UnlockedIter::~UnlockedIter() = default;

void Resv::UnlockedIter::restart() {
  const State& s = *resv_->state_;
  seq_ = s.readBegin();
  list_ = s.list.load();
  count_ = list_ ? list_->count.load(std::memory_order_acquire) : 0;
  index_ = 0;
  restarted_ = true;
  forceRestart_ = false;
}

FencePtr Resv::UnlockedIter::walk() {
  const State& s = *resv_->state_;
  for (;;) {
    if (forceRestart_) {
      restart();
    }
    if (index_ >= count_) {
      return nullptr;
    }
    const FenceList::Slot& slot = list_->slots[index_++];
    const ResvUsage u = slot.usage.load(std::memory_order_acquire);
    FencePtr f = slot.fence.load();
    if (!s.readValid(seq_)) {
      forceRestart_ = true;  // the set changed under us: start over
      continue;
    }
    if (f && u <= query_ && !f->isSignaled()) {
      fenceUsage_ = u;
      return f;
    }
  }
}

FencePtr Resv::UnlockedIter::first() {
  forceRestart_ = true;
  return walk();
}

FencePtr Resv::UnlockedIter::next() {
  restarted_ = false;
  return walk();
}

}  // namespace zbuf
