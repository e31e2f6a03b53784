// DmabufQueue: the DMABUF interface of an IIO buffer (industrialio-buffer.c's
// iio_buffer_attach_dmabuf / detach / enqueue plus buffer-dma's block handling).
//
// One Block per attached buffer (the kernel's iio_dmabuf_priv with its iio_dma_buffer_block):
// the attachment, the SgTable mapped once at attach in the buffer's direction, a Timeline (one
// fence context per attachment, driver and timeline "iio"), and a DmaDescriptor whose vecs are
// the mapping's segments, built at attach so that queueing a block never allocates.
//
// Enqueue follows the kernel step by step: flag, size and attachment checks; the resv lock
// (trylock when non-blocking: EBUSY); a wait for conflicting fences (input: usage READ, output:
// usage WRITE; 5 s, or 0 when non-blocking; timeout: EBUSY); the queue lock; reserve a slot,
// add the new fence (WRITE usage on input, READ on output), unlock the resv; then, inside a
// fence signalling section, hand the block to the engine (or park it until enable). If the
// hardware refuses it, the fence signals with that error and enqueue returns it.
//
// Coherency (docs/coherency.md): the block keeps its mapping, so each transfer is bracketed
// with begin device access (at enqueue, just before the block reaches the hardware) and end
// device access (in the completion, before the fence signals), as the FunctionFS v5 series
// does; attach refuses (EINVAL) a non-coherent device whose exporter cannot bracket.
//
// Completion (engine worker) marks the block idle and signals its fence with the transfer's
// status, under the queue lock and inside a signalling section: it never allocates and never
// takes a reservation lock. A block whose buffer was detached while in flight stays alive (and
// mapped: the device may still write) until its transfer completes; it is then unmapped and
// released by the next application-side call (reap()), never on the engine's thread, because
// unmapping takes the reservation lock, which an enqueue may hold while waiting for a fence
// this engine has yet to signal.
//
// Locks: mutex_ guards the block list, every block's state and fence, the incoming list and
// the counters. Order: resv lock, then mutex_; the engine's lock is taken under mutex_ (submit)
// but the engine never holds it while calling back.
//
// Thread-safety: thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/fence.h"
#include "zbuf/devices/dma/dma_engine.h"

namespace zbuf::iio {

struct DmabufStats {
  std::uint64_t enqueued = 0;   // fences published
  std::uint64_t completed = 0;  // fences signalled without error
  std::uint64_t failed = 0;     // fences signalled with an error
};

class DmabufQueue {
 public:
  // `input`: an ADC buffer (device writes memory). The engine must outlive the queue.
  DmabufQueue(dma::DmaEngine& engine, bool input, std::chrono::milliseconds enqueueTimeout);
  // The engine must have been terminated: no block is in flight.
  ~DmabufQueue();
  DmabufQueue(const DmabufQueue&) = delete;
  DmabufQueue& operator=(const DmabufQueue&) = delete;

  // ATTACH. EBUSY if `buffer` is attached already, or (non-blocking) its resv is contended;
  // the core's attach and map errors otherwise.
  [[nodiscard]] Result<void> attach(const BufferPtr& buffer, bool nonblock);
  // DETACH. EPERM if `buffer` is not attached.
  [[nodiscard]] Result<void> detach(const Buffer& buffer);
  // Detaches every buffer (closing the buffer file).
  void detachAll();
  // ENQUEUE after the flag checks (done by IioBuffer). EINVAL for bytesUsed 0 or beyond the
  // buffer; EPERM if not attached; EBUSY for a contended resv (non-blocking), conflicting
  // fences still pending after the timeout, or a block already in flight (EPERM if it is
  // parked waiting for enable); the engine's error if it refuses the block. Returns the fence.
  [[nodiscard]] Result<FencePtr> enqueue(const Buffer& buffer, bool cyclic, std::uint64_t bytesUsed,
                                         bool nonblock);

  // Submits the blocks parked while disabled, in order.
  void enable();
  // After the engine was terminated (fences got -EINTR) new blocks park again.
  void disable();

  // Releases detached blocks whose transfers have completed (unmap, detach).
  void reap();
  [[nodiscard]] std::size_t attachedCount() const;
  // Detached blocks still waiting for their transfer to finish.
  [[nodiscard]] std::size_t zombieCount() const;
  [[nodiscard]] DmabufStats stats() const;

 private:
  enum class State : std::uint8_t { Idle, Parked, Active };
  struct Block;

  void complete(Block& block, int status);
  // Unmaps and detaches; no lock held.
  static void release(Block& block);
  [[nodiscard]] std::shared_ptr<Block> findLocked(const Buffer& buffer) const ZBUF_REQUIRES(mutex_);

  dma::DmaEngine& engine_;
  const bool input_;
  const std::chrono::milliseconds enqueueTimeout_;  // for conflicting fences (blocking)

  mutable Mutex mutex_;
  std::vector<std::shared_ptr<Block>> blocks_ ZBUF_GUARDED_BY(mutex_);   // attached
  std::vector<std::shared_ptr<Block>> zombies_ ZBUF_GUARDED_BY(mutex_);  // detached, in flight
  Block* parkedHead_ ZBUF_GUARDED_BY(mutex_) = nullptr;                  // enqueued while disabled
  Block* parkedTail_ ZBUF_GUARDED_BY(mutex_) = nullptr;
  bool enabled_ ZBUF_GUARDED_BY(mutex_) = false;
  DmabufStats stats_ ZBUF_GUARDED_BY(mutex_);
};

}  // namespace zbuf::iio
