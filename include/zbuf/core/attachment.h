// Attachment: one device's hold on one buffer (the kernel's struct dma_buf_attachment), what
// a dynamic importer provides (ImporterOps, dma_buf_attach_ops), and MappedAttachment, the
// scope object of one mapping of an attachment.
//
// Attachments come from Buffer::attach (buffer.h). They are static (the importer cannot handle
// moves: a pinnable exporter is pinned for it while mapped, and map waits for KERNEL fences) or
// dynamic (the importer gives move_notify and handles fences itself). Map returns an SgTable
// that the caller owns until unmap; the MappedAttachment scope object unmaps on destruction.
//
// Ownership: an Attachment holds a BufferPtr, so a buffer outlives its attachments; the buffer
// keeps only weak references to them, and dropping the last AttachmentPtr without detach()
// detaches it (buffer.h).
//
// Locking: the buffer's resv lock guards map/unmap/pin/unpin (the *Locked functions require
// it; the *Unlocked ones and MappedAttachment take it). Device access bracketing needs no lock.
//
// Thread-safety: thread-safe.
#pragma once

#include <functional>
#include <memory>

#include "zbuf/base/result.h"
#include "zbuf/core/device.h"
#include "zbuf/core/sg_table.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class Buffer;
class Attachment;
using BufferPtr = std::shared_ptr<Buffer>;
using AttachmentPtr = std::shared_ptr<Attachment>;

// dma_buf_attach_ops: what a dynamic importer provides.
struct ImporterOps {
  bool allowPeer2peer = false;
  std::function<void(Attachment&)> moveNotify;  // required for a dynamic importer
};

class Attachment {
 public:
  [[nodiscard]] Buffer& buffer() const noexcept;
  [[nodiscard]] BufferPtr bufferPtr() const;
  [[nodiscard]] Device& device() const noexcept;
  [[nodiscard]] const std::shared_ptr<Device>& devicePtr() const noexcept;
  [[nodiscard]] bool isDynamic() const noexcept;
  [[nodiscard]] bool peer2peer() const noexcept;
  [[nodiscard]] bool pinned() const noexcept;
  // Number of live mappings made through map*().
  [[nodiscard]] unsigned mapCount() const noexcept;
  [[nodiscard]] const ImporterOps* importerOps() const noexcept;

  // dma_buf_map_attachment (resv held). A static importer of a pinnable exporter is pinned
  // first; static importers then wait for KERNEL fences. A buffer outside the device's DMA
  // mask is refused (EINVAL).
  [[nodiscard]] Result<SgTable> mapLocked(DmaDirection dir);
  void unmapLocked(SgTable& table, DmaDirection dir);
  // The _unlocked wrappers: take and drop the resv lock around the call.
  [[nodiscard]] Result<SgTable> mapUnlocked(DmaDirection dir);
  void unmapUnlocked(SgTable& table, DmaDirection dir);
  // dma_buf_pin / unpin: dynamic importers only (EINVAL for a static one), lock held. An
  // exporter without pin has nothing to pin: pinLocked() then succeeds and does nothing.
  [[nodiscard]] Result<void> pinLocked();
  void unpinLocked();

  // dma_buf_begin_access / dma_buf_end_access (FunctionFS v5, patch 1/6): an importer that
  // keeps its mapping (`table`, made by map*()) brackets every device access with them, so a
  // non-coherent device sees what the CPU and other devices wrote (begin: sync for the device)
  // and they see what it wrote (end: sync for the CPU). Mapping and unmapping imply the same
  // syncs, so an importer that maps per access needs neither. No lock needed; they may run in
  // a fence signalling section (they neither allocate nor wait). Exporter without the op:
  // nothing to do for a coherent device; EINVAL for a non-coherent one (the kernel returns 0
  // and the device sees stale data: zbuf refuses instead). Unless the device forgets them
  // (Device::forgetDeviceAccess, fault injection), then they do nothing.
  [[nodiscard]] Result<void> beginDeviceAccess(const SgTable& table, DmaDirection dir);
  [[nodiscard]] Result<void> endDeviceAccess(const SgTable& table, DmaDirection dir);
  // For importers that keep their mapping, at attach: EINVAL (with the rule) if the device is
  // not coherent and the exporter cannot bracket device access: a dynamic exporter never can
  // (its memory may move, and it caches its mapping, so map/unmap do not sync either). The
  // importer refuses the buffer instead of letting the device see stale data.
  [[nodiscard]] Result<void> checkDeviceAccessBracketing() const;

  // Exporter-private and importer-private data.
  std::shared_ptr<void> priv;
  std::shared_ptr<void> importerPriv;

  struct Private;
  Attachment(Private key, BufferPtr buffer, std::shared_ptr<Device> device,
             const ImporterOps* importerOps);
  ~Attachment();
  Attachment(const Attachment&) = delete;
  Attachment& operator=(const Attachment&) = delete;

 private:
  friend class Buffer;
  struct State;
  std::unique_ptr<State> state_;
};

// A mapped attachment (scope object): maps on create (taking the resv lock), unmaps on
// destruction or reset() (taking it again). Move-only; keeps the attachment alive.
class MappedAttachment {
 public:
  MappedAttachment() = default;
  [[nodiscard]] static Result<MappedAttachment> create(AttachmentPtr attachment, DmaDirection dir);
  // The same with the buffer's reservation lock already held (an importer that took it
  // non-blocking); the mapping is still undone with the lock taken by reset().
  [[nodiscard]] static Result<MappedAttachment> createLocked(AttachmentPtr attachment,
                                                             DmaDirection dir);
  ~MappedAttachment() { reset(); }
  MappedAttachment(MappedAttachment&& other) noexcept = default;
  MappedAttachment& operator=(MappedAttachment&& other) noexcept;
  MappedAttachment(const MappedAttachment&) = delete;
  MappedAttachment& operator=(const MappedAttachment&) = delete;

  [[nodiscard]] const SgTable& table() const noexcept { return table_; }
  [[nodiscard]] const AttachmentPtr& attachment() const noexcept { return attachment_; }
  [[nodiscard]] DmaDirection direction() const noexcept { return dir_; }
  [[nodiscard]] bool isMapped() const noexcept { return attachment_ != nullptr; }
  void reset() noexcept;

 private:
  static MappedAttachment adopt(AttachmentPtr attachment, SgTable table, DmaDirection dir);

  AttachmentPtr attachment_;
  SgTable table_;
  DmaDirection dir_ = DmaDirection::Bidirectional;
};

}  // namespace zbuf
#pragma GCC visibility pop
