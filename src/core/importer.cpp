// Importer: ImportedBuffer, FenceSlot and ResvLock::acquire (importer.h has the contract and
// the lock policy).
#include "zbuf/core/importer.h"

#include <fmt/format.h>

#include <utility>

namespace zbuf {

Result<ResvLock> ResvLock::acquire(Resv& resv, bool nonblock, const char* op) {
  if (nonblock) {
    if (!resv.trylock()) {
      return Error(EBUSY, op, "the buffer's reservation is locked (non-blocking)");
    }
  } else {
    ZBUF_TRY(resv.lock());
  }
  return ResvLock(resv, Adopt{});
}

// --- ImportedBuffer ----------------------------------------------------------------------------

Result<ImportedBuffer> ImportedBuffer::create(const BufferPtr& buffer,
                                              std::shared_ptr<Device> device, DmaDirection dir,
                                              bool nonblock, const char* op) {
  if (!buffer) {
    return Error(EINVAL, op, "no buffer");
  }
  ImportedBuffer out;
  ZBUF_ASSIGN_OR_RETURN(out.attachment_, buffer->attach(std::move(device)));
  out.buffer_ = buffer;
  // From here `out` detaches on every failure: it is not mapped yet.
  // The mapping is kept until release: a non-coherent device needs begin/end device access.
  ZBUF_TRY(out.attachment_->checkDeviceAccessBracketing());
  ZBUF_ASSIGN_OR_RETURN(auto locked, ResvLock::acquire(buffer->resv(), nonblock, op));
  ZBUF_ASSIGN_OR_RETURN(out.mapped_, MappedAttachment::createLocked(out.attachment_, dir));
  return out;
}

ImportedBuffer& ImportedBuffer::operator=(ImportedBuffer&& other) noexcept {
  if (this != &other) {
    release();
    buffer_ = std::move(other.buffer_);
    attachment_ = std::move(other.attachment_);
    mapped_ = std::move(other.mapped_);
  }
  return *this;
}

void ImportedBuffer::release() noexcept {
  if (!attachment_) {
    return;
  }
  mapped_.reset();  // unmaps, taking the lock
  buffer_->detach(attachment_);
  attachment_.reset();
  buffer_.reset();
}

Result<void> ImportedBuffer::beginDeviceAccess() const {
  return attachment_->beginDeviceAccess(table(), direction());
}

Result<void> ImportedBuffer::endDeviceAccess() const {
  return attachment_->endDeviceAccess(table(), direction());
}

// --- FenceSlot ---------------------------------------------------------------------------------

Result<FenceSlot> FenceSlot::reserve(Resv& resv, ResvUsage conflicts,
                                     std::chrono::milliseconds timeout, bool nonblock,
                                     const char* op) {
  ZBUF_ASSIGN_OR_RETURN(auto locked, ResvLock::acquire(resv, nonblock, op));
  FenceSlot slot(std::move(locked));
  const auto budget = nonblock ? std::chrono::milliseconds(0) : timeout;
  // dma_resv_wait_timeout with the lock held (importer.h: the lock policy).
  ZBUF_ASSIGN_OR_RETURN(const auto left, resv.waitTimeout(conflicts, budget));
  if (left.count() == 0) {
    return Error(EBUSY, op,
                 fmt::format("pending fences on the buffer ({} usage) did not signal in {} ms",
                             toString(conflicts), budget.count()));
  }
  ZBUF_TRY(resv.reserveFencesLocked(1));
  return slot;
}

void FenceSlot::publish(FencePtr fence, ResvUsage usage) {
  lock_.resv().addFenceLocked(std::move(fence), usage);
  lock_.unlock();
}

}  // namespace zbuf
