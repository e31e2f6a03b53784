// FunctionFs: an emulated USB FunctionFS function (the kernel's f_fs) with ep0 and data
// endpoints, and EndpointFile: one open endpoint file (ep0, ep1, ...).
//
// A function is bound to a controller (a UsbLink) or not; its data endpoints are enabled when
// the host configures it (UsbHost::configure) and disabled when the host disconnects or the
// function is unbound. Data calls on a disabled endpoint wait until it is enabled, or fail with
// EAGAIN on a non-blocking file; on an unbound function they fail with ENODEV.
//
// The fileio interface: write() on an IN endpoint (gadget to host) copies the data into a
// request buffer queued to the link and returns when the transfer completed; read() on an OUT
// endpoint (host to gadget) queues a request and copies the received data out. The wrong
// direction halts the endpoint and fails with EBADMSG, as the kernel does, once the endpoint is
// enabled: like ffs_epfile_io it first waits for it (EAGAIN non-blocking, ENODEV unbound).
// A zero-length call queues a zero-length transfer.
//
// The DMABUF interface (ATTACH/DETACH/TRANSFER, docs/usb.md has the errno table): buffers are
// attached to and mapped once for the controller (IN: DMA_TO_DEVICE, the controller reads
// memory; OUT: DMA_FROM_DEVICE, it writes memory); each TRANSFER waits for conflicting fences
// (IN: writers; OUT: all, 5 s, or 0 when non-blocking), adds a fence (IN: READ usage; OUT:
// WRITE usage; driver "functionfs", timeline "", one context per attachment, seqnos per
// endpoint from 1) and queues the transfer; completion signals the fence with the transfer's
// status. DETACH cancels pending transfers of the buffer first (their fences signal with
// -ECONNRESET) and waits for them; closing the file (destroying the EndpointFile) detaches all.
// Unlike the kernel, zbuf's fences do not point into the attachment, so a fence stays valid to
// query and wait on after DETACH; DETACH and TRANSFER on an unbound function return EPERM and
// ENODEV instead of crashing; two transfers of one buffer in flight on one endpoint each keep
// their own fence.
//
// Thread-safety: FunctionFs is thread-safe (m_ guards the link, the enable state and the
// generation). An EndpointFile is used by one thread at a time, like a file descriptor whose
// calls the kernel serialises (its own mutex guards the attachment list); the link completes
// its transfers on the link thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/fence.h"
#include "zbuf/devices/usb/link.h"

namespace zbuf::usb {

enum class EndpointDir : std::uint8_t { In, Out };

struct FunctionConfig {
  std::string name = "ffs";
  std::vector<EndpointDir> endpoints{EndpointDir::In, EndpointDir::Out};  // ep1, ep2, ...
  // How long a blocking TRANSFER waits for conflicting fences before EBUSY (the kernel's 5 s;
  // tests shorten it).
  std::chrono::milliseconds transferTimeout{5000};
};

// FUNCTIONFS_DMABUF_TRANSFER's argument (struct usb_ffs_dmabuf_transfer_req).
struct DmabufTransferReq {
  int fd = -1;
  std::uint32_t flags = 0;
  std::uint64_t length = 0;
} __attribute__((packed));
static_assert(sizeof(DmabufTransferReq) == 16);

inline constexpr std::uint32_t kDmabufTransferMask = 0;  // USB_FFS_DMABUF_TRANSFER_MASK

class EndpointFile;
struct EndpointState;

class FunctionFs final : public UsbGadget, public std::enable_shared_from_this<FunctionFs> {
 public:
  [[nodiscard]] static std::shared_ptr<FunctionFs> create(FunctionConfig config = {});
  ~FunctionFs() override;
  FunctionFs(const FunctionFs&) = delete;
  FunctionFs& operator=(const FunctionFs&) = delete;

  [[nodiscard]] const std::string& name() const noexcept { return config_.name; }
  [[nodiscard]] unsigned dataEndpoints() const noexcept;
  // Binds to a controller (EBUSY if the link has a function, EEXIST if already bound).
  [[nodiscard]] Result<void> bind(std::shared_ptr<UsbLink> link);
  // Unbinds: endpoints disabled, pending transfers end with -ESHUTDOWN. Attachments stay until
  // DETACH or close.
  void unbind();
  [[nodiscard]] bool bound() const;
  [[nodiscard]] bool enabled() const;

  // Opens ep0 (index 0) or data endpoint `index` (1..dataEndpoints()); flags: O_NONBLOCK.
  // ENOENT for an index out of range.
  [[nodiscard]] Result<std::unique_ptr<EndpointFile>> open(unsigned index, int flags = 0);

  // UsbGadget (called by the link).
  void onConfigured() override;
  void onDisabled() override;

  struct Private;
  FunctionFs(Private key, FunctionConfig config);

 private:
  friend class EndpointFile;
  struct Enabled {
    std::shared_ptr<UsbLink> link;
    std::uint64_t generation;
  };
  // Waits for the endpoints to be enabled: EAGAIN (non-blocking), ENODEV (unbound).
  [[nodiscard]] Result<Enabled> waitEnabled(bool nonblock) const;
  // The link if bound (else nullptr) and whether `generation` is still the enabled one.
  [[nodiscard]] std::shared_ptr<UsbLink> link() const;
  [[nodiscard]] bool stillEnabled(std::uint64_t generation) const;

  const FunctionConfig config_;
  const std::uint64_t id_;
  std::vector<std::unique_ptr<EndpointState>> eps_;  // per data endpoint, fixed after create
  mutable std::mutex m_;                             // guards link_, enabled_, generation_
  mutable std::condition_variable cv_;
  std::shared_ptr<UsbLink> link_;
  bool enabled_ = false;
  std::uint64_t generation_ = 0;  // changes on every enable and disable
};

class DmabufRecord;
class FileioRequest;

class EndpointFile {
 public:
  ~EndpointFile();  // detaches every attached buffer
  EndpointFile(const EndpointFile&) = delete;
  EndpointFile& operator=(const EndpointFile&) = delete;

  [[nodiscard]] unsigned index() const noexcept { return index_; }
  [[nodiscard]] bool isEp0() const noexcept { return index_ == 0; }
  [[nodiscard]] bool isIn() const noexcept { return in_; }
  [[nodiscard]] bool nonblocking() const noexcept { return nonblock_; }
  void setNonblocking(bool nonblock) noexcept { nonblock_ = nonblock; }

  // --- fileio ----------------------------------------------------------------------------------
  // IN endpoint: sends `data` as one transfer; returns the bytes sent.
  [[nodiscard]] Result<std::size_t> write(std::span<const std::byte> data);
  // OUT endpoint: receives one transfer of at most out.size() bytes; returns the bytes read.
  [[nodiscard]] Result<std::size_t> read(std::span<std::byte> out);

  // --- DMABUF (fds, as the ioctls take them) ----------------------------------------------------
  [[nodiscard]] Result<void> attachDmabuf(int fd);
  [[nodiscard]] Result<void> detachDmabuf(int fd);
  [[nodiscard]] Result<void> transferDmabuf(const DmabufTransferReq& req);

  // --- DMABUF (objects: the same checks after the fd lookup) -----------------------------------
  [[nodiscard]] Result<void> attach(const BufferPtr& buffer);
  [[nodiscard]] Result<void> detach(const BufferPtr& buffer);
  // Returns the transfer's fence (also in the buffer's reservation object).
  [[nodiscard]] Result<FencePtr> transfer(const BufferPtr& buffer, std::uint64_t length,
                                          std::uint32_t flags = 0);
  [[nodiscard]] std::size_t attachedCount() const;

  struct Private;
  EndpointFile(Private key, std::shared_ptr<FunctionFs> function, unsigned index, int flags);

 private:
  [[nodiscard]] Result<void> refuseOnEp0(const char* op) const;        // fileio: EINVAL
  [[nodiscard]] Result<void> refuseDmabufOnEp0(const char* op) const;  // ioctls: ENOTTY
  [[nodiscard]] Result<void> checkControllerSg() const;                // EPERM
  [[nodiscard]] Result<FencePtr> transferChecked(const BufferPtr& buffer, std::uint64_t length);
  [[nodiscard]] std::shared_ptr<DmabufRecord> findLocked(const Buffer& buffer) const;
  void release(const std::shared_ptr<DmabufRecord>& record);

  std::shared_ptr<FunctionFs> function_;
  const unsigned index_;
  const bool in_;
  bool nonblock_;
  EndpointState* state_;  // null for ep0
  std::shared_ptr<FileioRequest> fileio_;
  std::vector<std::byte> fileioBuffer_;
  mutable std::mutex m_;                                // guards records_
  std::vector<std::shared_ptr<DmabufRecord>> records_;  // newest last
};

}  // namespace zbuf::usb
