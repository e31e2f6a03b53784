// The DMABUF interface of an endpoint file (the kernel's ffs_dmabuf_attach/detach/transfer),
// with the final upstream directions and three deliberate differences (functionfs.h). The
// attachments are the endpoint's (EndpointState), shared by all its open files.
//
// TRANSFER waits for conflicting fences without holding the reservation lock (take the lock,
// test; if busy, drop it, wait with the time left, and test again under the lock), so that a
// signaller that needs the lock can never be stalled by a waiting transfer; the result is the
// kernel's: EBUSY once the 5 s (or 0 s) budget is spent with a conflict still pending.
#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>

#include "devices/usb/endpoint_state.h"
#include "zbuf/base/log.h"
#include "zbuf/core/fence_signalling.h"
#include "zbuf/devices/usb/functionfs.h"
#include "zbuf/uapi/context.h"

namespace zbuf {
ZBUF_DECLARE_LOG_CATEGORY(Usb);  // link.cpp
}  // namespace zbuf

namespace zbuf::usb {

void DmabufRecord::removePending(const DmabufRequest* r) noexcept {
  {
    const std::lock_guard lock(m_);
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [&](const std::shared_ptr<DmabufRequest>& p) { return p.get() == r; });
    if (it != pending_.end()) {
      pending_.erase(it);  // moves the tail down; never allocates
    }
  }
  cv_.notify_all();
}

void DmabufRequest::complete(int status, std::uint64_t /*actual*/) noexcept {
  // Keep ourselves alive: the pending list may hold the last other reference.
  FencePtr f = fence;
  std::shared_ptr<DmabufRecord> rec = record;
  {
    const FenceSignallingSection section(f.get());
    // ffs_dmabuf_signal_done: end the device access before the fence signals.
    if (auto r = rec->attachment->endDeviceAccess(rec->sgt, rec->dir); !r.ok() && status >= 0) {
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

// Takes the reservation lock: trylock (EBUSY) when non-blocking.
Result<void> lockResv(Resv& resv, bool nonblock, const char* op) {
  if (nonblock) {
    if (!resv.trylock()) {
      return Error(EBUSY, op, "the buffer's reservation is locked (non-blocking)");
    }
    return {};
  }
  return resv.lock(nullptr);
}

// Unlocks a reservation lock taken by the caller unless already unlocked.
class ResvGuard {
 public:
  explicit ResvGuard(Resv& resv) noexcept : resv_(resv) {}
  ~ResvGuard() { unlock(); }
  ResvGuard(const ResvGuard&) = delete;
  ResvGuard& operator=(const ResvGuard&) = delete;
  void unlock() noexcept {
    if (held_) {
      resv_.unlock();
      held_ = false;
    }
  }
  void adopt() noexcept { held_ = true; }  // the caller took the lock again

 private:
  Resv& resv_;
  bool held_ = true;
};

}  // namespace

namespace {

std::shared_ptr<DmabufRecord> findLocked(const EndpointState& ep, const Buffer& buffer) {
  // The newest attachment first, as the kernel's list_add/list_for_each_entry finds it.
  for (std::size_t i = ep.records.size(); i-- > 0;) {
    if (ep.records[i]->buffer.get() == &buffer) {
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
  record->attachment->unmapUnlocked(record->sgt, record->dir);
  record->buffer->detach(record->attachment);
}

}  // namespace

std::size_t EndpointFile::attachedCount() const {
  const std::lock_guard lock(state_->dmabufMutex);
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
  record->buffer = buffer;
  record->dir = isIn() ? DmaDirection::ToDevice : DmaDirection::FromDevice;
  auto att = buffer->attach(link->controller());
  ZBUF_TRY(att);
  record->attachment = *att;
  // The mapping is kept until DETACH: a non-coherent controller needs begin/end access.
  if (auto r = record->attachment->checkDeviceAccessBracketing(); !r.ok()) {
    buffer->detach(record->attachment);
    return std::move(r).error();
  }
  {
    auto locked = lockResv(buffer->resv(), nonblocking(), "ffs_dmabuf_attach");
    if (!locked.ok()) {
      buffer->detach(record->attachment);
      return std::move(locked).error();
    }
    auto sgt = record->attachment->mapLocked(record->dir);
    buffer->resv().unlock();
    if (!sgt.ok()) {
      buffer->detach(record->attachment);
      return std::move(sgt).error();
    }
    record->sgt = std::move(*sgt);
  }
  record->timeline = Timeline::create("functionfs", "");
  const std::lock_guard lock(state_->dmabufMutex);
  state_->records.push_back(std::move(record));
  return {};
}

// --- DETACH ------------------------------------------------------------------------------------

Result<void> EndpointFile::detach(const BufferPtr& buffer) {
  std::shared_ptr<DmabufRecord> record;
  {
    const std::lock_guard lock(state_->dmabufMutex);
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
    const std::lock_guard lock(state_->dmabufMutex);
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
    const std::lock_guard lock(state_->dmabufMutex);
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
  Resv& resv = buffer->resv();
  const ResvUsage conflicts = usageRw(/*write=*/!in);
  const auto deadline =
      std::chrono::steady_clock::now() +
      (nonblock ? std::chrono::milliseconds(0) : function_->config_.transferTimeout);
  ZBUF_TRY(lockResv(resv, nonblock, kOp));
  ResvGuard unlocker(resv);
  while (!resv.testSignaled(conflicts)) {
    unlocker.unlock();
    const auto left = std::max(deadline - std::chrono::steady_clock::now(),
                               std::chrono::steady_clock::duration::zero());
    auto waited = resv.waitTimeout(conflicts, left);
    ZBUF_TRY(waited);
    if (*waited == Resv::Duration::zero()) {
      return Error(EBUSY, kOp,
                   fmt::format("pending fences on the buffer ({} usage) did not signal in {} ms",
                               toString(conflicts),
                               nonblock ? 0 : function_->config_.transferTimeout.count()));
    }
    ZBUF_TRY(lockResv(resv, nonblock, kOp));
    unlocker.adopt();
  }
  ZBUF_TRY(resv.reserveFencesLocked(1));
  if (!function_->stillEnabled(enabled->generation)) {
    return Error(ESHUTDOWN, kOp, fmt::format("ep{} was disabled meanwhile", index_));
  }
  // dma_buf_begin_access, once no conflicting access is pending (the v5 patch calls it before
  // the fence wait, which would sync before the previous writer finished). The request's
  // completion ends the access.
  ZBUF_TRY(record->attachment->beginDeviceAccess(record->sgt, record->dir));

  // Everything that can fail or allocate is done: publish.
  auto req = std::make_shared<DmabufRequest>();
  req->owner = function_->id_;
  req->endpoint = index_;
  req->in = in;
  req->length = length;
  req->sg = &record->sgt;
  req->dmaDevice = &record->attachment->device();
  req->record = record;
  // usb_ep_queue keeps transfers in order, so one counter per endpoint orders the fences.
  req->fence = record->timeline->createFence(state_->seqno.fetch_add(1) + 1);
  FencePtr fence = req->fence;
  record->addPending(req);
  resv.addFenceLocked(fence, in ? ResvUsage::Read : ResvUsage::Write);
  unlocker.unlock();

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
