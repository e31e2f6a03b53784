// ResvLock: a reservation object's lock as a scope object (dma_resv_lock(obj, NULL) ...
// dma_resv_unlock), for code that locks one Resv without an acquire context: such a lock
// cannot fail with EDEADLK or EALREADY, so there is nothing to return.
//
// Thread-safety: as Resv::lock.
#pragma once

#include "zbuf/core/resv.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class ResvLock {
 public:
  explicit ResvLock(Resv& resv) : resv_(resv) { (void)resv_.lock(); }
  ~ResvLock() { resv_.unlock(); }
  ResvLock(const ResvLock&) = delete;
  ResvLock& operator=(const ResvLock&) = delete;
  ResvLock(ResvLock&&) = delete;
  ResvLock& operator=(ResvLock&&) = delete;

 private:
  Resv& resv_;
};

}  // namespace zbuf
#pragma GCC visibility pop
