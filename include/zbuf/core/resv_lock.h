// ResvLock: a reservation object's lock as a scope object (dma_resv_lock ... dma_resv_unlock),
// for code that locks one Resv without an acquire context. Every exit unlocks; unlock() ends
// it early (the importer's "unlock, then queue the transfer").
//
// - The constructor takes the lock blocking (dma_resv_lock(obj, NULL)): without an acquire
//   context it cannot fail with EDEADLK or EALREADY, so there is nothing to return.
// - acquire() is the importing drivers' form (IIO's iio_dma_resv_lock, FunctionFS's
//   ffs_dma_resv_lock): dma_resv_trylock when the file is non-blocking, EBUSY when contended;
//   otherwise the blocking lock.
//
// Thread-safety: as Resv::lock. A ResvLock belongs to the thread that took it.
#pragma once

#include <utility>

#include "zbuf/base/result.h"
#include "zbuf/core/resv.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class ResvLock {
 public:
  explicit ResvLock(Resv& resv) : resv_(&resv) { held_ = resv_->lock().ok(); }
  // Non-blocking: trylock, EBUSY (for `op`) if the lock is held elsewhere. Blocking: lock.
  [[nodiscard]] static Result<ResvLock> acquire(Resv& resv, bool nonblock, const char* op);
  ~ResvLock() { unlock(); }
  ResvLock(ResvLock&& other) noexcept
      : resv_(other.resv_), held_(std::exchange(other.held_, false)) {}
  ResvLock& operator=(ResvLock&&) = delete;
  ResvLock(const ResvLock&) = delete;
  ResvLock& operator=(const ResvLock&) = delete;

  // Unlocks now; the destructor then does nothing. Idempotent.
  void unlock() noexcept {
    if (held_) {
      held_ = false;
      resv_->unlock();
    }
  }
  [[nodiscard]] bool ownsLock() const noexcept { return held_; }
  [[nodiscard]] Resv& resv() const noexcept { return *resv_; }

 private:
  struct Adopt {};
  ResvLock(Resv& resv, Adopt /*already locked*/) noexcept : resv_(&resv), held_(true) {}

  Resv* resv_;
  bool held_ = false;
};

}  // namespace zbuf
#pragma GCC visibility pop
