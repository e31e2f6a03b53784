// Buffer: what an exporter exports (the kernel's struct dma_buf), and Attachment: one device's
// hold on one buffer (struct dma_buf_attachment).
//
// A Buffer has a size that never changes, an exporter name, a user-set name (at most 31
// characters), a Resv, its attachments, and the exporter's operations. It is backed by an fd
// (a memfd) so it can be mapped and passed to another process; the uAPI (uapi/) works on that
// fd. Export refuses (EINVAL, with a message) a missing required operation, pin without unpin
// or the reverse, and a dynamic exporter (one with pin) that also offers begin/end device
// access.
//
// Attachments are static (the importer cannot handle moves: a pinnable exporter is pinned for
// it while mapped, and map waits for KERNEL fences) or dynamic (the importer gives move_notify
// and handles fences itself). Map returns an SgTable that the caller owns until unmap.
//
// Thread-safety: thread-safe. The resv lock guards map/unmap/pin/unpin/vmap (the *Locked
// functions require it; *Unlocked ones take it); attach/detach/CPU access run without it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/base/shared_fd.h"
#include "zbuf/core/device.h"
#include "zbuf/core/resv.h"
#include "zbuf/core/sg_table.h"

namespace zbuf {

class Buffer;
class Attachment;
using BufferPtr = std::shared_ptr<Buffer>;
using AttachmentPtr = std::shared_ptr<Attachment>;

// dma_buf_ops. An exporter keeps one instance for all its buffers; its identity (address)
// identifies the exporter (virtio buffers are recognised that way).
struct ExporterOps {
  // Required.
  std::function<Result<SgTable>(Attachment&, DmaDirection)> map;
  std::function<void(Attachment&, SgTable&, DmaDirection)> unmap;
  std::function<void(Buffer&)> release;
  // Optional.
  std::function<Result<void>(Buffer&, Attachment&)> attach;
  std::function<void(Buffer&, Attachment&)> detach;
  std::function<Result<void>(Attachment&)> pin;
  std::function<void(Attachment&)> unpin;
  std::function<Result<void>(Buffer&, DmaDirection)> beginCpuAccess;
  std::function<Result<void>(Buffer&, DmaDirection)> endCpuAccess;
  std::function<Result<void>(Attachment&, DmaDirection)> beginDeviceAccess;
  std::function<Result<void>(Attachment&, DmaDirection)> endDeviceAccess;
  // Checks an mmap request (offset in pages, length in bytes, MAP_* flags); the core has
  // already applied the kernel's range checks.
  std::function<Result<void>(Buffer&, std::uint64_t pageOffset, std::uint64_t length, int mapFlags)>
      mmap;
  std::function<Result<std::span<std::byte>>(Buffer&)> vmap;
  std::function<void(Buffer&, std::span<std::byte>)> vunmap;
};

// dma_buf_export_info.
struct ExportInfo {
  std::string exporterName;
  std::shared_ptr<const ExporterOps> ops;
  std::uint64_t size = 0;
  int flags = 0;               // file mode flags; only O_ACCMODE | O_NONBLOCK are kept
  SharedFd fd;                 // the fd that represents the buffer (a memfd)
  std::shared_ptr<Resv> resv;  // null: the buffer gets its own
  std::shared_ptr<void> priv;  // the exporter's private data (required, like the kernel)
};

// dma_buf_attach_ops: what a dynamic importer provides.
struct ImporterOps {
  bool allowPeer2peer = false;
  std::function<void(Attachment&)> moveNotify;  // required for a dynamic importer
};

class Buffer : public std::enable_shared_from_this<Buffer> {
 public:
  static constexpr std::size_t kNameMax = 31;  // DMA_BUF_NAME_LEN - 1

  // dma_buf_export.
  [[nodiscard]] static Result<BufferPtr> exportBuffer(ExportInfo info);

  [[nodiscard]] std::uint64_t size() const noexcept;
  [[nodiscard]] const std::string& exporterName() const noexcept;
  [[nodiscard]] std::string name() const;
  // EINVAL if longer than kNameMax (the old name stays).
  [[nodiscard]] Result<void> setName(std::string_view name);
  [[nodiscard]] Resv& resv() const noexcept;
  [[nodiscard]] const SharedFd& fd() const noexcept;
  [[nodiscard]] int fileFlags() const noexcept;
  [[nodiscard]] std::uint64_t inode() const noexcept;  // unique per buffer, like the kernel's
  [[nodiscard]] const ExporterOps& ops() const noexcept;
  [[nodiscard]] const std::shared_ptr<const ExporterOps>& opsPtr() const noexcept;
  [[nodiscard]] void* priv() const noexcept;
  // dma_buf_is_dynamic: the exporter has pin.
  [[nodiscard]] bool isDynamic() const noexcept;

  // dma_buf_attach / dma_buf_dynamic_attach (importerOps non-null: dynamic; moveNotify
  // required, else EINVAL). The exporter's attach may refuse (e.g. EBUSY).
  [[nodiscard]] Result<AttachmentPtr> attach(std::shared_ptr<Device> device,
                                             const ImporterOps* importerOps = nullptr);
  // dma_buf_detach. The attachment must not be mapped.
  void detach(const AttachmentPtr& attachment);
  [[nodiscard]] std::vector<AttachmentPtr> attachments() const;

  // dma_buf_begin/end_cpu_access: exporter op, then (begin only) the implicit-fence wait.
  [[nodiscard]] Result<void> beginCpuAccess(DmaDirection dir);
  [[nodiscard]] Result<void> endCpuAccess(DmaDirection dir);

  // dma_buf_vmap / vunmap: refcounted; the exporter is called on the first map and the last
  // unmap. EINVAL if the exporter has no vmap. Lock held.
  [[nodiscard]] Result<std::span<std::byte>> vmapLocked();
  void vunmapLocked();

  // dma_buf_move_notify: lock held; every dynamic attachment is told to drop its mappings.
  void moveNotifyLocked();

  struct Private;
  Buffer(Private key, ExportInfo info);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

 private:
  struct State;
  std::unique_ptr<State> state_;
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

  // dma_buf_map_attachment (resv held). A static importer of a pinnable exporter is pinned
  // first; static importers then wait for KERNEL fences. A buffer outside the device's DMA
  // mask is refused (EINVAL).
  [[nodiscard]] Result<SgTable> mapLocked(DmaDirection dir);
  void unmapLocked(SgTable& table, DmaDirection dir);
  // The _unlocked wrappers: take and drop the resv lock around the call.
  [[nodiscard]] Result<SgTable> mapUnlocked(DmaDirection dir);
  void unmapUnlocked(SgTable& table, DmaDirection dir);
  // dma_buf_pin / unpin: dynamic importers only, lock held.
  [[nodiscard]] Result<void> pinLocked();
  void unpinLocked();

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

}  // namespace zbuf
