// The DMABUF interface of an endpoint file (the kernel's ffs_dmabuf_attach/detach/transfer),
// with the final upstream directions and three deliberate differences (functionfs.h). The
// attachments are the endpoint's (EndpointState), shared by all its open files. The import
// mechanics and the lock policy are core's (zbuf/core/importer.h), shared with IIO: TRANSFER
// waits for conflicting fences with the reservation lock held, as the kernel's does, and gives
// EBUSY once the 5 s (or 0 s) budget is spent with a conflict still pending.
#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>

#include "devices/usb/endpoint_state.h"
#include "zbuf/base/log.h"
#include "zbuf/core/fence_signalling.h"
#include "zbuf/core/importer.h"
#include "zbuf/devices/usb/functionfs.h"
#include "zbuf/uapi/context.h"

namespace zbuf {
ZBUF_DECLARE_LOG_CATEGORY(Usb);  // link.cpp
}  // namespace zbuf

namespace zbuf::usb {

void DmabufRecord::removePending(const DmabufRequest* r) noexcept {
  {
    const MutexLocker lock(mutex_);
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [&](const std::shared_ptr<DmabufRequest>& p) { return p.get() == r; });
    if (it != pending_.end()) {
      pending_.erase(it);  // moves the tail down; never allocates
    }
  }
  cv_.notifyAll();
}

void DmabufRequest::complete(int status, std::uint64_t /*actual*/) noexcept {
  // Keep ourselves alive: the pending list may hold the last other reference.
  FencePtr f = fence;
  std::shared_ptr<DmabufRecord> rec = record;
  {
    const FenceSignallingSection section(f.get());
    // ffs_dmabuf_signal_done: end the device access before the fence signals.
    if (auto r = rec->import.endDeviceAccess(); !r.ok() && status >= 0) {
      status = r.error().negative();
    }
    if (status < 0) {
      f->setError(status);
    }
    f->signal();
  }
  rec->removePending(this);
}

namespace {

std::shared_ptr<DmabufRecord> findLocked(const EndpointState& ep, const Buffer& buffer)
    ZBUF_REQUIRES(ep.dmabufMutex) {
  // The newest attachment first, as the kernel's list_add/list_for_each_entry finds it.
  for (std::size_t i = ep.records.size(); i-- > 0;) {
    if (ep.records[i]->import.buffer().get() == &buffer) {
      return ep.records[i];
    }
  }
  return nullptr;
}

// Cancels what is pending first (fences signal -ECONNRESET), then waits for a transfer the link
// is executing, so that nothing uses the mapping when it goes.
void releaseRecord(const std::shared_ptr<UsbLink>& link,
                   const std::shared_ptr<DmabufRecord>& record) {
  if (link) {
    for (const auto& r : record->pending()) {
      link->dequeue(*r);
    }
  }
  record->waitIdle();
  record->import.release();
}

}  // namespace

std::size_t EndpointFile::attachedCount() const {
  const MutexLocker lock(state_->dmabufMutex);
  return state_->records.size();
}

// --- ATTACH ------------------------------------------------------------------------------------

Result<void> EndpointFile::checkControllerSg() const {
  auto link = function_->link();
  if (!link) {
    return Error(EPERM, "ffs_dmabuf_attach",
                 fmt::format("function '{}' is not bound to a controller", function_->name()));
  }
  if (!link->config().scatterGather) {
    return Error(EPERM, "ffs_dmabuf_attach",
                 "the device controller does not support scatter-gather requests");
  }
  return {};
}

Result<void> EndpointFile::attach(const BufferPtr& buffer) {
  ZBUF_TRY(checkControllerSg());
  if (!buffer) {
    return Error(EINVAL, "ffs_dmabuf_attach", "no buffer");
  }
  auto link = function_->link();
  if (!link) {
    return Error(EPERM, "ffs_dmabuf_attach", "function unbound meanwhile");
  }
  auto record = std::make_shared<DmabufRecord>();
  auto imported = ImportedBuffer::create(buffer, link->controller(),
                                         isIn() ? DmaDirection::ToDevice : DmaDirection::FromDevice,
                                         nonblocking(), "ffs_dmabuf_attach");
  if (!imported.ok()) {
    return std::move(imported).error();
  }
  record->import = std::move(*imported);
  record->timeline = Timeline::create("functionfs", "");
  const MutexLocker lock(state_->dmabufMutex);
  state_->records.push_back(std::move(record));
  return {};
}

// --- DETACH ------------------------------------------------------------------------------------

Result<void> EndpointFile::detach(const BufferPtr& buffer) {
  std::shared_ptr<DmabufRecord> record;
  {
    const MutexLocker lock(state_->dmabufMutex);
    record = buffer ? findLocked(*state_, *buffer) : nullptr;
    if (!record) {
      return Error(EPERM, "ffs_dmabuf_detach",
                   fmt::format("the buffer is not attached to ep{}", index_));
    }
    auto& records = state_->records;
    records.erase(std::find(records.begin(), records.end(), record));
  }
  releaseRecord(function_->link(), record);
  return {};
}

// ffs_epfile_release: every buffer attached to the endpoint, newest first.
void EndpointFile::detachAll() {
  std::vector<std::shared_ptr<DmabufRecord>> records;
  {
    const MutexLocker lock(state_->dmabufMutex);
    records.swap(state_->records);
  }
  const auto link = function_->link();
  for (std::size_t i = records.size(); i-- > 0;) {
    releaseRecord(link, records[i]);
  }
}

// --- TRANSFER ----------------------------------------------------------------------------------

Result<FencePtr> EndpointFile::transfer(const BufferPtr& buffer, std::uint64_t length,
                                        std::uint32_t flags) {
  constexpr const char* kOp = "ffs_dmabuf_transfer";
  if ((flags & ~kDmabufTransferMask) != 0) {
    return Error(EINVAL, kOp, fmt::format("unknown flags {:#x} (none are defined)", flags));
  }
  if (!buffer) {
    return Error(EINVAL, kOp, "no buffer");
  }
  return transferChecked(buffer, length);
}

Result<FencePtr> EndpointFile::transferChecked(const BufferPtr& buffer, std::uint64_t length) {
  constexpr const char* kOp = "ffs_dmabuf_transfer";
  if (length == 0 || length > buffer->size()) {
    return Error(
        EINVAL, kOp,
        fmt::format("length {} must be in 1..{} (the buffer's size)", length, buffer->size()));
  }
  std::shared_ptr<DmabufRecord> record;
  {
    const MutexLocker lock(state_->dmabufMutex);
    record = findLocked(*state_, *buffer);
  }
  if (!record) {
    return Error(EPERM, kOp, fmt::format("the buffer is not attached to ep{}", index_));
  }
  const bool nonblock = nonblocking();
  const bool in = isIn();
  auto enabled = function_->waitEnabled(nonblock);
  ZBUF_TRY(enabled);

  // Conflicts: an IN transfer reads memory (waits for writers), an OUT one writes it (waits for
  // everyone).
  auto slot = FenceSlot::reserve(buffer->resv(), usageRw(/*write=*/!in),
                                 function_->config_.transferTimeout, nonblock, kOp);
  if (!slot.ok()) {
    return std::move(slot).error();
  }
  if (!function_->stillEnabled(enabled->generation)) {
    return Error(ESHUTDOWN, kOp, fmt::format("ep{} was disabled meanwhile", index_));
  }
  // dma_buf_begin_access, once no conflicting access is pending (the v5 patch calls it before
  // the fence wait, which would sync before the previous writer finished). The request's
  // completion ends the access.
  ZBUF_TRY(record->import.beginDeviceAccess());

  // Everything that can fail or allocate is done: publish.
  auto req = std::make_shared<DmabufRequest>();
  req->owner = function_->id_;
  req->endpoint = index_;
  req->in = in;
  req->length = length;
  req->sg = &record->import.table();
  req->dmaDevice = &record->import.attachment()->device();
  req->record = record;
  // usb_ep_queue keeps transfers in order, so one counter per endpoint orders the fences.
  req->fence = record->timeline->createFence(state_->seqno.fetch_add(1) + 1);
  FencePtr fence = req->fence;
  record->addPending(req);
  slot->publish(fence, in ? ResvUsage::Read : ResvUsage::Write);

  Result<void> queued;
  {
    const FenceSignallingSection section(fence.get());
    queued = enabled->link->queue(req);
  }
  if (!queued.ok()) {
    log(LogUsb, LogLevel::Warn, "ffs: failed to queue DMABUF transfer on ep{}: {}", index_,
        queued.error().describe());
    req->complete(queued.error().negative(), 0);
    return std::move(queued).error();
  }
  return fence;
}

}  // namespace zbuf::usb

namespace zbuf::usb {

// --- the fd forms: the kernel's check order around dma_buf_get ---------------------------------

Result<void> EndpointFile::attachDmabuf(uapi::Context& context, int fd) {
  ZBUF_TRY(checkControllerSg());  // before the fd is even looked at
  auto buffer = context.bufferFromFd(fd);
  ZBUF_TRY(buffer);
  return attach(*buffer);
}

Result<void> EndpointFile::detachDmabuf(uapi::Context& context, int fd) {
  auto buffer = context.bufferFromFd(fd);
  ZBUF_TRY(buffer);
  return detach(*buffer);
}

Result<void> EndpointFile::transferDmabuf(uapi::Context& context, const DmabufTransferReq& req) {
  constexpr const char* kOp = "ffs_dmabuf_transfer";
  if ((req.flags & ~kDmabufTransferMask) != 0) {
    return Error(EINVAL, kOp, fmt::format("unknown flags {:#x} (none are defined)", req.flags));
  }
  auto buffer = context.bufferFromFd(req.fd);
  ZBUF_TRY(buffer);
  ZBUF_TRY(transferChecked(*buffer, req.length));
  return {};
}

}  // namespace zbuf::usb
