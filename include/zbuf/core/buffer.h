// Buffer: what an exporter exports (the kernel's struct dma_buf). Its attachments
// (struct dma_buf_attachment) are in attachment.h, which this header includes.
//
// A Buffer has a size that never changes, an exporter name, a user-set name (at most 31
// characters), a Resv, its attachments, and the exporter's operations. It is backed by an fd
// (a memfd) so it can be passed to another process; the uAPI installs it as a dma-buf file
// (uapi/context.h: installBuffer) and finds it again through the context's file table
// (bufferFromFd, the kernel's dma_buf_get).
// Export refuses (EINVAL, with a message) a missing required operation or private data, pin
// without unpin or the reverse, a dynamic exporter (one with pin) that also offers begin/end
// device access, and an invalid fd. Coherency (non-coherent devices, begin/end device access,
// what CPU access syncs): docs/coherency.md.
//
// Ownership: whoever holds a BufferPtr keeps the buffer alive (the file references of the
// kernel); the exporter's release runs when the last one goes. An Attachment holds a BufferPtr,
// so a buffer outlives its attachments. The buffer keeps only weak references to its
// attachments (no cycle): dropping the last AttachmentPtr without detach() detaches it (the
// kernel would leak it), so an AttachmentPtr is itself a scope object for the attachment.
//
// Locking: the resv lock guards vmap and move_notify (and the attachments' map/unmap/pin/unpin:
// attachment.h). attach/detach, CPU access and mmap run without it. The buffer's attachment lock
// (internal) guards the attachment list; its name lock the name.
// The exporter's attach, detach, release, CPU-access and mmap ops run without the resv lock;
// its map, unmap, pin, unpin, vmap and vunmap ops with it, as in the kernel.
//
// Thread-safety: thread-safe.
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
#include "zbuf/base/sys.h"
#include "zbuf/core/device.h"
#include "zbuf/core/resv.h"
#include "zbuf/core/sg_table.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class Buffer;
class Attachment;
struct ImporterOps;
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
  // begin_access / end_access of the FunctionFS v5 series (docs/coherency.md): cache
  // maintenance around one device access through a mapping the importer keeps.
  std::function<Result<void>(Attachment&, const SgTable&, DmaDirection)> beginDeviceAccess;
  std::function<Result<void>(Attachment&, const SgTable&, DmaDirection)> endDeviceAccess;
  // Maps [pageOffset * PAGE, + length) of the buffer into the caller's address space with
  // PROT_* `prot` and MAP_* `mapFlags` (the exporter may add rules: heaps and udmabuf take
  // MAP_SHARED only). The core has already applied the kernel's range checks.
  std::function<Result<sys::Mapping>(Buffer&, std::uint64_t pageOffset, std::uint64_t length,
                                     int prot, int mapFlags)>
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

class Buffer : public std::enable_shared_from_this<Buffer> {
 public:
  static constexpr std::size_t kNameMax = 31;  // DMA_BUF_NAME_LEN - 1

  // dma_buf_export.
  [[nodiscard]] static Result<BufferPtr> exportBuffer(ExportInfo info);
  // Every live buffer of the process, in export order (the kernel's db_list).
  [[nodiscard]] static std::vector<BufferPtr> liveBuffers();

  [[nodiscard]] std::uint64_t size() const noexcept;
  [[nodiscard]] const std::string& exporterName() const noexcept;
  // The user-set name; empty when none was set (hasName() tells an empty name from none).
  [[nodiscard]] std::string name() const;
  [[nodiscard]] bool hasName() const;
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
  // dma_buf_detach: the exporter's detach runs and the attachment leaves the list. The
  // attachment must not be mapped (a warning is logged if it is). Detaching twice, or an
  // attachment of another buffer, is logged and ignored.
  void detach(const AttachmentPtr& attachment);
  [[nodiscard]] std::vector<AttachmentPtr> attachments() const;

  // dma_buf_begin/end_cpu_access: exporter op, then (begin only) the implicit-fence wait.
  [[nodiscard]] Result<void> beginCpuAccess(DmaDirection dir);
  [[nodiscard]] Result<void> endCpuAccess(DmaDirection dir);

  // Checked CPU access (cpu_access_check.h): CPU mappings made from now on fault outside SYNC
  // brackets. Not set: the process default (CpuAccessChecker, ZBUF_CHECK_CPU_ACCESS=1).
  void setCpuAccessChecked(bool on) noexcept;
  [[nodiscard]] bool cpuAccessChecked() const noexcept;

  // dma_buf_mmap and the mmap file operation: EINVAL without an exporter mmap op or for a
  // length of 0, EOVERFLOW if pageOffset + pages overflows, EINVAL if it runs past the size,
  // EACCES for a writable shared mapping of a buffer exported read-only; then the exporter's op.
  // A checked buffer's mapping is guarded (inaccessible outside SYNC brackets).
  [[nodiscard]] Result<sys::Mapping> mmap(std::uint64_t pageOffset, std::uint64_t length, int prot,
                                          int mapFlags);

  // dma_buf_vmap / vunmap: refcounted; the exporter is called on the first map and the last
  // unmap. EINVAL if the exporter has no vmap. Lock held.
  [[nodiscard]] Result<std::span<std::byte>> vmapLocked();
  void vunmapLocked();

  // dma_buf_move_notify: lock held; every dynamic attachment is told to drop its mappings.
  void moveNotifyLocked();
  // Number of live vmaps (0 when unmapped).
  [[nodiscard]] unsigned vmapCount() const noexcept;

  struct Private;
  Buffer(Private key, ExportInfo info);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

 private:
  friend class Attachment;
  struct State;
  std::unique_ptr<State> state_;
};

// A CPU access bracket (scope object): beginCpuAccess on create, endCpuAccess on end() or
// destruction. Move-only; keeps the buffer alive.
class CpuAccess {
 public:
  CpuAccess() = default;
  [[nodiscard]] static Result<CpuAccess> begin(BufferPtr buffer, DmaDirection dir);
  ~CpuAccess() { (void)end(); }
  CpuAccess(CpuAccess&& other) noexcept = default;
  CpuAccess& operator=(CpuAccess&& other) noexcept;
  CpuAccess(const CpuAccess&) = delete;
  CpuAccess& operator=(const CpuAccess&) = delete;

  // Ends the access now (the exporter's error, if any); later calls do nothing.
  [[nodiscard]] Result<void> end();
  [[nodiscard]] bool active() const noexcept { return buffer_ != nullptr; }

 private:
  BufferPtr buffer_;
  DmaDirection dir_ = DmaDirection::Bidirectional;
};

}  // namespace zbuf
#pragma GCC visibility pop

// Buffer::attach() hands out Attachments: whoever includes the buffer gets them too.
#include "zbuf/core/attachment.h"
