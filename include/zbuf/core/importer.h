// Importer: the mechanics that every DMA-BUF importing driver of zbuf shares (IIO's buffer
// DMABUF interface, FunctionFS's endpoint DMABUF interface, and the virtio devices to come),
// as the kernel shares them in drivers/dma-buf:
//
//   ATTACH    ImportedBuffer::create: dma_buf_attach; for a device that keeps its mapping, the
//             begin/end device access check; dma_buf_map_attachment under the reservation
//             lock (trylock when non-blocking: EBUSY). Every failure undoes what was done.
//   TRANSFER  FenceSlot::reserve: the reservation lock (ResvLock::acquire), then the wait for
//             the conflicting fences, then dma_resv_reserve_fences(1); the driver checks its own
//             state (still enabled? already queued?) with the lock held, and FenceSlot::publish
//             adds the transfer's fence and unlocks (dma_resv_add_fence, dma_resv_unlock).
//   DETACH    ImportedBuffer::release (or its destructor): unmap under the lock, then detach.
//
// The lock policy, one for every driver, as the kernel's IIO and FunctionFS have it: the
// conflicting fences are waited for WITH the reservation lock held (dma_resv_wait_timeout
// inside dma_resv_lock), for `timeout` (0 when the file is non-blocking); fences still pending
// then give EBUSY. That never stalls a signaller: fence signalling must not take a reservation
// lock (fence_signalling.h checks it in checked builds), so whoever will signal the awaited
// fence needs nothing the waiter holds. It does make another importer of the same buffer, or
// a CPU mmap-and-sync user taking the lock, wait behind a waiting transfer, as on the kernel.
//
// Thread-safety: an ImportedBuffer is owned by one driver object that serialises its own
// attach/detach; its accessors and device-access calls may run concurrently. A FenceSlot is
// used on the thread that reserved it.
#pragma once

#include <chrono>
#include <memory>

#include "zbuf/base/result.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/device.h"
#include "zbuf/core/fence.h"
#include "zbuf/core/resv.h"
#include "zbuf/core/resv_lock.h"
#include "zbuf/core/sg_table.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

// A buffer attached to one device and mapped for it until released. Move-only.
class ImportedBuffer {
 public:
  ImportedBuffer() = default;
  // `op` names the call in errors (e.g. "iio_buffer_attach_dmabuf"). EINVAL without a buffer;
  // the attach, bracketing, lock (EBUSY when non-blocking and contended) and map errors.
  [[nodiscard]] static Result<ImportedBuffer> create(const BufferPtr& buffer,
                                                     std::shared_ptr<Device> device,
                                                     DmaDirection dir, bool nonblock,
                                                     const char* op);
  ~ImportedBuffer() { release(); }
  ImportedBuffer(ImportedBuffer&& other) noexcept = default;
  ImportedBuffer& operator=(ImportedBuffer&& other) noexcept;
  ImportedBuffer(const ImportedBuffer&) = delete;
  ImportedBuffer& operator=(const ImportedBuffer&) = delete;

  // Unmaps (taking the reservation lock) and detaches; then empty. Idempotent.
  void release() noexcept;
  [[nodiscard]] bool isImported() const noexcept { return attachment_ != nullptr; }

  [[nodiscard]] const BufferPtr& buffer() const noexcept { return buffer_; }
  [[nodiscard]] const AttachmentPtr& attachment() const noexcept { return attachment_; }
  [[nodiscard]] const SgTable& table() const noexcept { return mapped_.table(); }
  [[nodiscard]] DmaDirection direction() const noexcept { return mapped_.direction(); }
  // dma_buf_begin_access / dma_buf_end_access around one device access through the mapping.
  [[nodiscard]] Result<void> beginDeviceAccess() const;
  [[nodiscard]] Result<void> endDeviceAccess() const;

 private:
  BufferPtr buffer_;
  AttachmentPtr attachment_;  // attached (detached by release), mapped once mapped_ is
  MappedAttachment mapped_;
};

// One transfer's place among a buffer's fences: the reservation lock, held from the conflict
// wait until the fence is published or the slot is given up (destruction unlocks).
class FenceSlot {
 public:
  // Locks `resv` (EBUSY when non-blocking and contended), waits with the lock held for every
  // unsignalled fence of usage up to `conflicts` (for `timeout`; 0 when non-blocking), EBUSY
  // if one is still pending then, and reserves room for one fence (ENOMEM).
  [[nodiscard]] static Result<FenceSlot> reserve(Resv& resv, ResvUsage conflicts,
                                                 std::chrono::milliseconds timeout, bool nonblock,
                                                 const char* op);
  ~FenceSlot() = default;
  FenceSlot(FenceSlot&&) noexcept = default;
  FenceSlot& operator=(FenceSlot&&) = delete;
  FenceSlot(const FenceSlot&) = delete;
  FenceSlot& operator=(const FenceSlot&) = delete;

  // dma_resv_add_fence then dma_resv_unlock: from here the fence is visible to every waiter,
  // so the caller must not allocate, wait or take a reservation lock before it signals.
  void publish(FencePtr fence, ResvUsage usage);
  // Gives the slot up without a fence (unlocks). Idempotent; destruction does it too.
  void abandon() noexcept { lock_.unlock(); }
  [[nodiscard]] Resv& resv() const noexcept { return lock_.resv(); }

 private:
  explicit FenceSlot(ResvLock lock) noexcept : lock_(std::move(lock)) {}
  ResvLock lock_;
};

}  // namespace zbuf
#pragma GCC visibility pop
