// FunctionFs: an emulated USB FunctionFS function (the kernel's f_fs: struct ffs_data with its
// ep0 and its data endpoint files), and EndpointFile: one open data endpoint file (ep1, ep2...).
// Applications reach both through files of a context (functionfs_files.h: a mount with ep0,
// ep1, ...); the C++ interface here is the same machinery for drivers, the board and tests.
//
// Where the endpoints come from (FunctionConfig):
//  - built in (`endpoints`, the default): the function is active at once with those endpoints,
//    as if its descriptors and strings had been written; it never resets.
//  - from ep0 (`descriptorsFromEp0`): as a freshly mounted FunctionFS, the function has no
//    endpoints until an application writes its descriptors (FUNCTIONFS_DESCRIPTORS_MAGIC_V2
//    header, full/high/super speed descriptors) and then its strings (FUNCTIONFS_STRINGS_MAGIC)
//    to ep0; the endpoints (and their directions) are those of the endpoint descriptors, in
//    order. When the last file of the function closes (ep0 and every endpoint file), it resets
//    as the kernel's does: unbound, endpoints gone, waiting for descriptors again.
//
// ep0 (ep0Write/ep0Read/ep0Poll, the ep0 file's operations): the descriptors and strings are
// written to it (errnos in ffs_descriptors.h; a write shorter than 16 bytes is EINVAL; once
// active a write is ESRCH, as no control request is pending); once active its events are read
// from it (struct usb_functionfs_event, whole events only: a buffer smaller than one event is
// EINVAL; no event queued: waits, or EAGAIN when non-blocking; before it is active: EBADFD) and
// polled (POLLIN with an event queued; POLLOUT while it waits for descriptors or strings;
// POLLWRNORM always). Events: BIND (bound to the controller), UNBIND, ENABLE (the host
// configured it), DISABLE (deconfigured, disconnected or unbound while enabled), SUSPEND,
// RESUME; queued as __ffs_event_add does: BIND/UNBIND/ENABLE/DISABLE drop every queued event
// but SUSPEND and RESUME, SUSPEND drops queued SUSPENDs, RESUME drops SUSPENDs and RESUMEs. With
// FUNCTIONFS_EVENTFD each event also adds 1 to the application's eventfd. No control requests
// reach the function (the emulated host sends none), so SETUP never occurs.
//
// Binding: bind(link) binds the function to a controller. A function waiting for descriptors
// is bound when its strings are written (as g_ffs registers the gadget once its functions are
// ready), and after that the link connects (a host with `enumerate` configures it at once).
// Its data endpoints are enabled when the host configures it (UsbHost::configure) and disabled
// when the host disconnects or the function is unbound. Data calls on a disabled endpoint wait
// until it is enabled, or fail with EAGAIN on a non-blocking file; on an unbound function they
// fail with ENODEV.
//
// The fileio interface: write() on an IN endpoint (gadget to host) copies the data into a
// request buffer queued to the link and returns when the transfer completed; read() on an OUT
// endpoint (host to gadget) queues a request and copies the received data out. The wrong
// direction halts the endpoint and fails with EBADMSG (after the wait for the endpoint, as
// ffs_epfile_io). One fileio call at a time per endpoint (the kernel's epfile mutex): a
// non-blocking call while another is in progress is EAGAIN.
//
// The DMABUF interface (ATTACH/DETACH/TRANSFER, docs/usb.md has the errno table): attachments
// belong to the endpoint (the kernel's ffs_epfile), not to the open file: a buffer attached
// through one open file of an endpoint can be transferred or detached through another, and
// closing any file of the endpoint (EndpointFile::close or its destructor; the file's release)
// detaches every buffer attached to the endpoint, cancelling their pending transfers.
// Buffers are mapped once for the controller at ATTACH (IN: DMA_TO_DEVICE, the controller reads
// memory; OUT: DMA_FROM_DEVICE, it writes memory); each TRANSFER waits for conflicting fences
// (IN: writers; OUT: all, 5 s, or 0 when non-blocking), adds a fence (IN: READ usage; OUT:
// WRITE usage; driver "functionfs", timeline "", one context per attachment, seqnos per
// endpoint from 1) and queues the transfer; completion signals the fence with the transfer's
// status. DETACH cancels pending transfers of the buffer first (their fences signal with
// -ECONNRESET) and waits for them. Unlike the kernel, zbuf's fences do not point into the
// attachment, so a fence stays valid to query and wait on after DETACH; DETACH and TRANSFER on
// an unbound function return EPERM and ENODEV instead of crashing; two transfers of one buffer
// in flight on one endpoint each keep their own fence.
//
// Thread-safety: FunctionFs and EndpointFile are thread-safe. Locks: the ep0 mutex (ffs->mutex,
// held while an ep0 read waits for an event), then mutex_ (link, enable state, generation, the
// endpoints, the state), then the event mutex; an endpoint's fileio mutex and its DMABUF mutex
// are taken without any of those held. The link completes transfers on the link thread.
#pragma once

#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/fence.h"
#include "zbuf/devices/usb/functionfs_uapi.h"
#include "zbuf/devices/usb/link.h"
#include "zbuf/uapi/file.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {
class Context;
}

namespace zbuf::usb {

namespace detail {
struct FfsDescriptors;
}  // namespace detail

enum class EndpointDir : std::uint8_t { In, Out };

struct FunctionConfig {
  std::string name = "ffs";
  std::vector<EndpointDir> endpoints{EndpointDir::In, EndpointDir::Out};  // ep1, ep2, ...
  // True: the endpoints come from the descriptors an application writes to ep0 (`endpoints`
  // is ignored), and the function resets when its last file closes.
  bool descriptorsFromEp0 = false;
  // How long a blocking TRANSFER waits for conflicting fences before EBUSY (the kernel's 5 s;
  // tests shorten it).
  std::chrono::milliseconds transferTimeout{5000};
};

// The state of the function (enum ffs_state).
enum class FfsState : std::uint8_t { ReadDescriptors, ReadStrings, Active, Closing };

class EndpointFile;
struct EndpointState;

class FunctionFs final : public UsbGadget, public std::enable_shared_from_this<FunctionFs> {
 public:
  [[nodiscard]] static std::shared_ptr<FunctionFs> create(FunctionConfig config = {});
  ~FunctionFs() override;
  FunctionFs(const FunctionFs&) = delete;
  FunctionFs& operator=(const FunctionFs&) = delete;
  FunctionFs(FunctionFs&&) = delete;
  FunctionFs& operator=(FunctionFs&&) = delete;

  [[nodiscard]] const std::string& name() const noexcept { return config_.name; }
  [[nodiscard]] FfsState state() const;
  // Data endpoints (0 until the descriptors and strings are written).
  [[nodiscard]] unsigned dataEndpoints() const;
  // The endpoint files' names: "ep1", "ep2", ... ("ep81", "ep02", ... with
  // FUNCTIONFS_VIRTUAL_ADDR). Empty until active.
  [[nodiscard]] std::vector<std::string> endpointFileNames() const;
  // Binds to a controller (EBUSY if the link has a function, EEXIST if already bound). A
  // function waiting for descriptors remembers the link and binds when it becomes active.
  [[nodiscard]] Result<void> bind(std::shared_ptr<UsbLink> link);
  // Unbinds: endpoints disabled (DISABLE if they were enabled), pending transfers end with
  // -ESHUTDOWN, UNBIND. Attachments stay until DETACH or close.
  void unbind();
  [[nodiscard]] bool bound() const;
  [[nodiscard]] bool enabled() const;

  // Opens data endpoint `index` (1..dataEndpoints()); flags: O_NONBLOCK. ENOENT for an index out
  // of range (every index before the function is active).
  [[nodiscard]] Result<std::unique_ptr<EndpointFile>> open(unsigned index, int flags = 0);

  // --- ep0 --------------------------------------------------------------------------------------
  [[nodiscard]] Result<std::size_t> ep0Write(std::span<const std::byte> data, bool nonblock);
  [[nodiscard]] Result<std::size_t> ep0Read(std::span<std::byte> out, bool nonblock);
  [[nodiscard]] short ep0Poll(short events, uapi::PollTable* table);
  // FUNCTIONFS_INTERFACE_REVMAP: the controller's number for interface `intf` of the function:
  // ENODEV if unbound, EDOM if the function has no such interface.
  [[nodiscard]] Result<long> interfaceRevmap(unsigned long intf) const;

  // --- files (ffs_data_opened / ffs_data_closed) -------------------------------------------------
  // An ep0 file opens: EBUSY while the function is closing.
  [[nodiscard]] Result<void> ep0Opened();
  // A file of the function (ep0 or an endpoint) closed; the last one resets a function whose
  // descriptors came from ep0.
  void fileClosed();

  // What a mount does when the endpoint files appear (`created`, with their names; an error
  // fails the strings write and the function goes to Closing) and when they go (`destroyed`).
  struct FilesHooks {
    std::function<Result<void>(const std::vector<std::string>& names)> created;
    std::function<void()> destroyed;
  };
  // EBUSY if the function is already mounted.
  [[nodiscard]] Result<void> setFilesHooks(FilesHooks hooks);

  // UsbGadget (called by the link).
  void onConfigured() override;
  void onDisabled() override;
  void onSuspend() override;
  void onResume() override;

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
  [[nodiscard]] LinkSpeed speed() const;
  void fileOpened();

  [[nodiscard]] Result<std::size_t> ep0WriteDescriptors(std::span<const std::byte> data);
  [[nodiscard]] Result<std::size_t> ep0WriteStrings(std::span<const std::byte> data);
  [[nodiscard]] Result<void> bindNow(const std::shared_ptr<UsbLink>& link);
  void addEvent(FfsEventType type);
  void reset();

  const FunctionConfig config_;
  const std::uint64_t id_;

  // ffs->mutex: serialises ep0's calls; held by a waiting ep0 read.
  Mutex ep0Mutex_ ZBUF_ACQUIRED_BEFORE(mutex_);

  mutable Mutex mutex_ ZBUF_ACQUIRED_BEFORE(evMutex_);  // guards the members down to evMutex_
  mutable ConditionVariable cv_;
  FfsState state_ ZBUF_GUARDED_BY(mutex_) = FfsState::Active;
  // Per data endpoint (ep1 first).
  std::vector<std::shared_ptr<EndpointState>> eps_ ZBUF_GUARDED_BY(mutex_);
  std::vector<std::string> epNames_ ZBUF_GUARDED_BY(mutex_);
  // Written, their strings not yet.
  std::unique_ptr<detail::FfsDescriptors> descs_ ZBUF_GUARDED_BY(mutex_);
  std::uint32_t userFlags_ ZBUF_GUARDED_BY(mutex_) = 0;  // the descriptors' flags
  unsigned interfaces_ ZBUF_GUARDED_BY(mutex_) = 1;
  unsigned stringsNeeded_ ZBUF_GUARDED_BY(mutex_) = 0;
  std::shared_ptr<UsbLink> link_ ZBUF_GUARDED_BY(mutex_);         // bound to
  std::shared_ptr<UsbLink> pendingLink_ ZBUF_GUARDED_BY(mutex_);  // to bind to when active
  bool enabled_ ZBUF_GUARDED_BY(mutex_) = false;
  std::uint64_t generation_ ZBUF_GUARDED_BY(mutex_) = 0;  // changes on every enable and disable
  long opened_ ZBUF_GUARDED_BY(mutex_) = 0;               // open files (ffs->opened)
  FilesHooks hooks_ ZBUF_GUARDED_BY(mutex_);
  bool mounted_ ZBUF_GUARDED_BY(mutex_) = false;

  mutable Mutex evMutex_;  // ffs->ev.waitq.lock
  ConditionVariable evCv_;
  // At most four, as the kernel's ev.types.
  std::vector<FfsEventType> events_ ZBUF_GUARDED_BY(evMutex_);
  UniqueFd eventfd_ ZBUF_GUARDED_BY(evMutex_);
  uapi::WaitQueue evWait_;
};

class EndpointFile {
 public:
  ~EndpointFile();  // close()
  EndpointFile(const EndpointFile&) = delete;
  EndpointFile& operator=(const EndpointFile&) = delete;
  EndpointFile(EndpointFile&&) = delete;
  EndpointFile& operator=(EndpointFile&&) = delete;

  [[nodiscard]] unsigned index() const noexcept { return index_; }
  [[nodiscard]] bool isIn() const noexcept;
  // The controller's bEndpointAddress for this endpoint (FUNCTIONFS_ENDPOINT_REVMAP): the
  // endpoint number (the link's, = index()) with bit 7 set for IN.
  [[nodiscard]] std::uint8_t address() const noexcept;
  [[nodiscard]] bool nonblocking() const noexcept { return nonblock_.load(); }
  // The file's O_NONBLOCK (the ep files refresh it from the description at every call).
  void setNonblocking(bool nonblock) noexcept { nonblock_.store(nonblock); }
  // Closing the file (release): detaches every buffer attached to the endpoint, through any of
  // its files. Idempotent; the destructor calls it.
  void close();

  // --- fileio ----------------------------------------------------------------------------------
  // IN endpoint: sends `data` as one transfer; returns the bytes sent.
  [[nodiscard]] Result<std::size_t> write(std::span<const std::byte> data);
  // OUT endpoint: receives one transfer of at most out.size() bytes; returns the bytes read.
  [[nodiscard]] Result<std::size_t> read(std::span<std::byte> out);

  // --- the other endpoint ioctls, after the wait for the endpoint ------------------------------
  // ffs_epfile_wait_ep: EAGAIN (non-blocking, not enabled), ENODEV (unbound); waits otherwise.
  [[nodiscard]] Result<void> waitEnabled() const;
  // FUNCTIONFS_ENDPOINT_DESC: the endpoint descriptor of the link's speed (super for usb3 and
  // unlimited, high for usb2; the next lower speed the function has descriptors for), with
  // bEndpointAddress the controller's (the one written with FUNCTIONFS_VIRTUAL_ADDR).
  [[nodiscard]] UsbEndpointDescriptor descriptor() const;

  // --- DMABUF (fds, as the ioctls take them, resolved through `context`) -----------------------
  [[nodiscard]] Result<void> attachDmabuf(uapi::Context& context, int fd);
  [[nodiscard]] Result<void> detachDmabuf(uapi::Context& context, int fd);
  [[nodiscard]] Result<void> transferDmabuf(uapi::Context& context, const DmabufTransferReq& req);

  // --- DMABUF (objects: the same checks after the fd lookup) -----------------------------------
  [[nodiscard]] Result<void> attach(const BufferPtr& buffer);
  [[nodiscard]] Result<void> detach(const BufferPtr& buffer);
  // Returns the transfer's fence (also in the buffer's reservation object).
  [[nodiscard]] Result<FencePtr> transfer(const BufferPtr& buffer, std::uint64_t length,
                                          std::uint32_t flags = 0);
  // Buffers attached to the endpoint (through any of its files).
  [[nodiscard]] std::size_t attachedCount() const;

  struct Private;
  EndpointFile(Private key, std::shared_ptr<FunctionFs> function,
               std::shared_ptr<EndpointState> state, unsigned index, int flags);

 private:
  [[nodiscard]] Result<void> checkControllerSg() const;  // EPERM
  [[nodiscard]] Result<FencePtr> transferChecked(const BufferPtr& buffer, std::uint64_t length);
  void detachAll();

  std::shared_ptr<FunctionFs> function_;
  std::shared_ptr<EndpointState> state_;
  const unsigned index_;
  std::atomic<bool> nonblock_;
  std::atomic<bool> closed_{false};
};

}  // namespace zbuf::usb
#pragma GCC visibility pop
