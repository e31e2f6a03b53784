// Attachment: map/unmap with the kernel's rules for static and dynamic importers, pin/unpin,
// and the MappedAttachment scope object.
//
// dma_buf_map_attachment for a static importer of a dynamic (pinnable) exporter: pin, map,
// then wait for KERNEL fences (the exporter's pending moves/clears); each failing step undoes
// the earlier ones. Dynamic importers get the table at once and handle fences themselves.
#include <fmt/format.h>

#include "buffer_state.h"
#include "zbuf/base/log.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/fence.h"

namespace zbuf {

ZBUF_LOG_CATEGORY(Attachment);

Attachment::Attachment(Private /*key*/, BufferPtr buffer, std::shared_ptr<Device> device,
                       const ImporterOps* importerOps)
    : state_(std::make_unique<State>()) {
  state_->buffer = std::move(buffer);
  state_->device = std::move(device);
  if (importerOps != nullptr) {
    state_->importer = *importerOps;
  }
}

Attachment::~Attachment() {
  bool detached = false;
  {
    const MutexLocker lock(state_->buffer->state_->attachMutex);
    detached = state_->detached;
  }
  if (!detached) {
    log(LogAttachment, LogLevel::Debug,
        "attachment of device {} to buffer {} dropped without detach: detaching it",
        state_->device->name(), state_->buffer->inode());
    state_->buffer->state_->detach(*state_->buffer, *this);
  }
}

Buffer& Attachment::buffer() const noexcept {
  return *state_->buffer;
}
BufferPtr Attachment::bufferPtr() const {
  return state_->buffer;
}
Device& Attachment::device() const noexcept {
  return *state_->device;
}
const std::shared_ptr<Device>& Attachment::devicePtr() const noexcept {
  return state_->device;
}
bool Attachment::isDynamic() const noexcept {
  return state_->importer.has_value();
}
bool Attachment::peer2peer() const noexcept {
  return state_->importer.has_value() && state_->importer->allowPeer2peer;
}
bool Attachment::pinned() const noexcept {
  return state_->pinCount.load() > 0 || state_->pinnedForMap.load() > 0;
}
unsigned Attachment::mapCount() const noexcept {
  return state_->mapCount.load();
}
const ImporterOps* Attachment::importerOps() const noexcept {
  return state_->importer ? &*state_->importer : nullptr;
}

Result<SgTable> Attachment::mapLocked(DmaDirection dir) {
  Buffer& buf = buffer();
  buf.resv().assertHeld();
  {
    const MutexLocker lock(buf.state_->attachMutex);
    if (state_->detached) {
      return Error(EINVAL, "dma_buf_map_attachment",
                   fmt::format("buffer {}, device {}: the attachment was detached", buf.inode(),
                               device().name()));
    }
  }
  const ExporterOps& ops = buf.ops();
  const bool pinOnMap = buf.isDynamic() && !isDynamic();
  if (pinOnMap) {
    ZBUF_TRY(ops.pin(*this));
  }
  auto table = ops.map(*this, dir);
  if (!table.ok()) {
    if (pinOnMap) {
      ops.unpin(*this);
    }
    return std::move(table).error();
  }
  if (!isDynamic()) {
    auto waited = buf.resv().waitTimeout(ResvUsage::Kernel, Fence::kWaitForever);
    if (!waited.ok()) {
      ops.unmap(*this, *table, dir);
      if (pinOnMap) {
        ops.unpin(*this);
      }
      return std::move(waited).error();
    }
  }
  if (pinOnMap) {
    state_->pinnedForMap.fetch_add(1);
  }
  state_->mapCount.fetch_add(1);
  return table;
}

void Attachment::unmapLocked(SgTable& table, DmaDirection dir) {
  Buffer& buf = buffer();
  buf.resv().assertHeld();
  if (state_->mapCount.load() == 0) {
    log(LogAttachment, LogLevel::Warn, "buffer {}, device {}: unmap without a mapping", buf.inode(),
        device().name());
    return;
  }
  const ExporterOps& ops = buf.ops();
  ops.unmap(*this, table, dir);
  state_->mapCount.fetch_sub(1);
  if (buf.isDynamic() && !isDynamic()) {
    ops.unpin(*this);
    state_->pinnedForMap.fetch_sub(1);
  }
}

Result<SgTable> Attachment::mapUnlocked(DmaDirection dir) {
  Resv& resv = buffer().resv();
  ZBUF_TRY(resv.lock());
  auto table = mapLocked(dir);
  resv.unlock();
  return table;
}

void Attachment::unmapUnlocked(SgTable& table, DmaDirection dir) {
  Resv& resv = buffer().resv();
  auto locked = resv.lock();
  if (!locked.ok()) {
    log(LogAttachment, LogLevel::Error, "buffer {}: cannot take the resv lock to unmap: {}",
        buffer().inode(), locked.error().describe());
    return;
  }
  unmapLocked(table, dir);
  resv.unlock();
}

Result<void> Attachment::pinLocked() {
  Buffer& buf = buffer();
  buf.resv().assertHeld();
  if (!isDynamic()) {
    return Error(EINVAL, "dma_buf_pin",
                 fmt::format("buffer {}, device {}: only dynamic importers pin", buf.inode(),
                             device().name()));
  }
  if (buf.ops().pin) {
    ZBUF_TRY(buf.ops().pin(*this));
  }
  state_->pinCount.fetch_add(1);
  return {};
}

void Attachment::unpinLocked() {
  Buffer& buf = buffer();
  buf.resv().assertHeld();
  if (!isDynamic() || state_->pinCount.load() == 0) {
    log(LogAttachment, LogLevel::Warn, "buffer {}, device {}: unpin without pin", buf.inode(),
        device().name());
    return;
  }
  if (buf.ops().unpin) {
    buf.ops().unpin(*this);
  }
  state_->pinCount.fetch_sub(1);
}

Result<void> Attachment::beginDeviceAccess(const SgTable& table, DmaDirection dir) {
  if (device().forgetsBeginAccess()) {
    return {};  // fault injection: the importer forgot it
  }
  const ExporterOps& ops = buffer().ops();
  if (!ops.beginDeviceAccess) {
    ZBUF_TRY(checkDeviceAccessBracketing());
    return {};
  }
  return ops.beginDeviceAccess(*this, table, dir);
}

Result<void> Attachment::endDeviceAccess(const SgTable& table, DmaDirection dir) {
  if (device().forgetsEndAccess()) {
    return {};
  }
  const ExporterOps& ops = buffer().ops();
  if (!ops.endDeviceAccess) {
    ZBUF_TRY(checkDeviceAccessBracketing());
    return {};
  }
  return ops.endDeviceAccess(*this, table, dir);
}

Result<void> Attachment::checkDeviceAccessBracketing() const {
  const Buffer& buf = buffer();
  if (device().coherent() || (buf.ops().beginDeviceAccess && buf.ops().endDeviceAccess)) {
    return {};
  }
  return Error(EINVAL, "dma_buf_begin_access",
               fmt::format("buffer {}: device {} is not cache-coherent and keeps its mapping, but "
                           "exporter '{}' cannot bracket device access{}; refused rather than "
                           "let the device see stale data",
                           buf.inode(), device().name(), buf.exporterName(),
                           buf.isDynamic() ? " (a dynamic exporter: its memory may move and its "
                                             "mapping is cached, so nothing syncs)"
                                           : ""));
}

// --- MappedAttachment ------------------------------------------------------------------------

Result<MappedAttachment> MappedAttachment::create(AttachmentPtr attachment, DmaDirection dir) {
  if (!attachment) {
    return Error(EINVAL, "dma_buf_map_attachment", "no attachment");
  }
  ZBUF_ASSIGN_OR_RETURN(auto table, attachment->mapUnlocked(dir));
  return adopt(std::move(attachment), std::move(table), dir);
}

Result<MappedAttachment> MappedAttachment::createLocked(AttachmentPtr attachment,
                                                        DmaDirection dir) {
  if (!attachment) {
    return Error(EINVAL, "dma_buf_map_attachment", "no attachment");
  }
  ZBUF_ASSIGN_OR_RETURN(auto table, attachment->mapLocked(dir));
  return adopt(std::move(attachment), std::move(table), dir);
}

MappedAttachment MappedAttachment::adopt(AttachmentPtr attachment, SgTable table,
                                         DmaDirection dir) {
  MappedAttachment m;
  m.attachment_ = std::move(attachment);
  m.table_ = std::move(table);
  m.dir_ = dir;
  return m;
}

MappedAttachment& MappedAttachment::operator=(MappedAttachment&& other) noexcept {
  if (this != &other) {
    reset();
    attachment_ = std::move(other.attachment_);
    table_ = std::move(other.table_);
    dir_ = other.dir_;
  }
  return *this;
}

void MappedAttachment::reset() noexcept {
  if (attachment_) {
    attachment_->unmapUnlocked(table_, dir_);
    attachment_.reset();
    table_ = SgTable();
  }
}

}  // namespace zbuf
