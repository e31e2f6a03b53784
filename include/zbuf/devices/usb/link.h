// UsbLink: the emulated USB cable with both controllers on it: the device controller (UDC) the
// FunctionFS function is bound to, and the host controller that the host side (host.h) drives.
//
// Requests (UsbRequest) are queued by the function and executed in queue order by the link's
// hardware thread ("usb-link", a HardwareThread, so its CPU counts as hardware): an IN request
// (gadget to host) reads its memory and hands it to the host's receiver; an OUT request (host to
// gadget) asks the host's sender to fill its memory. Memory is either a DMA mapping (an SgTable
// in the UDC device's emulated IOMMU: the link translates every segment, so a request reaches
// only what was mapped for it, in the mapped direction) or a CPU buffer (the fileio path).
//
// Bandwidth model (docs/usb.md): a transfer of n bytes occupies the wire for n / rate seconds,
// starting when both the wire is free and the request is queued; completion is due at
// start + n / rate, so a thread that oversleeps catches up on the next queued transfer and the
// average rate stays exact. Usb2 = 43e6 B/s (USB 2.0 high speed, 480 Mbit/s raw,
// bulk payload in practice 40-45 MB/s), Usb3 = 425e6 B/s (SuperSpeed, 5 Gbit/s raw, 8b/10b ->
// 500 MB/s, bulk payload in practice 400-450 MB/s), Unlimited = no pacing (memory speed).
//
// Fault injection: failNth(n, err) makes the n-th request executed from now on complete with
// -err: an IN request's data does not reach the host (the host counts a gap), an OUT request's
// data is not accepted (the host sends the same data again with the next OUT request).
//
// Thread-safety: thread-safe. mutex_ guards the queue, the in-flight request, the gadget, the
// configuration state and the fault settings; it is never held while a request completes.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "zbuf/base/hw_thread.h"
#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/core/device.h"
#include "zbuf/core/sg_table.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

enum class LinkSpeed : std::uint8_t { Usb2, Usb3, Unlimited };

[[nodiscard]] const char* toString(LinkSpeed s) noexcept;  // "usb2", "usb3", "unlimited"
[[nodiscard]] Result<LinkSpeed> parseLinkSpeed(std::string_view s);
// Payload bytes per second of the model; 0 for Unlimited.
[[nodiscard]] std::uint64_t linkBytesPerSecond(LinkSpeed s) noexcept;

namespace usb {

class UsbHostPort;

// One transfer between the function and the host. Subclasses say what completion means.
class UsbRequest {
 public:
  virtual ~UsbRequest() = default;

  std::uint64_t owner = 0;  // the function that queued it (cancelled together)
  unsigned endpoint = 0;    // endpoint number (1..)
  bool in = true;           // true: gadget to host
  std::uint64_t length = 0;
  // The memory: a DMA mapping in `dmaDevice`'s IOMMU ...
  const SgTable* sg = nullptr;
  Device* dmaDevice = nullptr;
  // ... or a CPU buffer (fileio).
  std::span<std::byte> cpu;

  // Called once, on the link thread (or on the cancelling thread), with no link lock held.
  // status: 0 or a negative errno; actual: bytes moved.
  virtual void complete(int status, std::uint64_t actual) noexcept = 0;

 private:
  friend class UsbLink;
  // While queued, the link's queue is an intrusive list (queueing never allocates: it runs in
  // a fence signalling section) and the request keeps itself alive through self_.
  std::shared_ptr<UsbRequest> self_;  // guarded by the link's mutex_
  UsbRequest* next_ = nullptr;        // guarded by the link's mutex_
  std::uint64_t queuedNs_ = 0;        // when it was queued (the wire model's start bound)
};
using UsbRequestPtr = std::shared_ptr<UsbRequest>;

// What the link asks of the function bound to it (the gadget driver side).
class UsbGadget {
 public:
  virtual ~UsbGadget() = default;
  // The host configured the device: endpoints become enabled.
  virtual void onConfigured() = 0;
  // The host deconfigured, disconnected, or the function was unbound: endpoints disabled.
  virtual void onDisabled() = 0;
  // The host suspended / resumed the bus (only while configured).
  virtual void onSuspend() {}
  virtual void onResume() {}
};

struct LinkConfig {
  LinkSpeed speed = LinkSpeed::Unlimited;
  bool scatterGather = true;  // the UDC takes scatter-gather requests (else DMABUF ATTACH: EPERM)
  bool coherent = true;       // the UDC's DMA is cache-coherent (docs/coherency.md)
  std::uint64_t maxSegmentSize = std::uint64_t{64} * 1024;
  std::uint64_t failTransfer = 0;  // fail the n-th request (1-based; 0 none) ...
  int failErrno = 5;               // ... with this errno (EIO)
};

class UsbLink : public std::enable_shared_from_this<UsbLink> {
 public:
  [[nodiscard]] static std::shared_ptr<UsbLink> create(LinkConfig config = {});
  ~UsbLink();
  UsbLink(const UsbLink&) = delete;
  UsbLink& operator=(const UsbLink&) = delete;

  [[nodiscard]] const LinkConfig& config() const noexcept { return config_; }
  // The UDC as a DMA device: buffers are attached and mapped for it.
  [[nodiscard]] const std::shared_ptr<Device>& controller() const noexcept { return udc_; }

  // --- the gadget side ---------------------------------------------------------------------
  // Binds a function (one at a time): EBUSY if another is bound, EINVAL for owner 0. The link
  // does not own it (the kernel's UDC points to its gadget driver, configfs owns the function):
  // a function released while bound unbinds itself, so link and function never keep each
  // other alive.
  [[nodiscard]] Result<void> bindGadget(const std::shared_ptr<UsbGadget>& gadget,
                                        std::uint64_t owner);
  // Unbinds it: its endpoints are disabled and its requests end with -ESHUTDOWN.
  void unbindGadget(std::uint64_t owner);
  // Queues a request: ESHUTDOWN if its owner is not bound and configured.
  [[nodiscard]] Result<void> queue(UsbRequestPtr request);
  // Cancels a request (usb_ep_dequeue): a queued one completes at once with -ECONNRESET; one
  // the link is executing completes with -ECONNRESET when it finishes. Returns false if the
  // request was neither queued nor executing.
  bool dequeue(const UsbRequest& request);

  // --- the host side -------------------------------------------------------------------------
  // The host's receiver/sender (at most one; nullptr detaches). Not owned; must outlive its use.
  void setHostPort(UsbHostPort* port);
  // SET_CONFIGURATION: the bound function's endpoints become enabled. ENODEV if none is bound.
  [[nodiscard]] Result<void> configure();
  // Deconfigure/disconnect: endpoints disabled, pending requests end with -ESHUTDOWN.
  void disconnect();
  // Bus suspend and resume: the bound function is told if the device is configured (as the
  // composite layer calls a function's suspend/resume only in a configuration).
  void suspend();
  void resume();
  // The bound function is ready and the device connects (D+ pull-up): a host port that
  // enumerates on connect (UsbHostPort::enumeratesOnConnect) configures it now.
  void connect();
  [[nodiscard]] bool configured() const;
  // Wakes the link after the host started or stopped sending on an OUT endpoint.
  void hostStateChanged();

  // --- fault injection and statistics ---------------------------------------------------------
  void failNth(std::uint64_t n, int err);
  [[nodiscard]] std::uint64_t executed() const;  // requests executed (completed or failed)
  [[nodiscard]] std::uint64_t bytesMoved() const;

  struct Private;
  UsbLink(Private key, LinkConfig config);

 private:
  void run();
  // Unlinks every queued request of `owner` into a list (linked through next_).
  UsbRequest* takeOwnerLocked(std::uint64_t owner) ZBUF_REQUIRES(mutex_);
  UsbRequest* takeAllLocked() ZBUF_REQUIRES(mutex_);
  void unlinkLocked(UsbRequest* prev, UsbRequest* r) ZBUF_REQUIRES(mutex_);
  static void completeList(UsbRequest* list, int status);
  // Drops mutex_ while the transfer runs and takes it again.
  int transferLocked(UsbRequest& r, std::uint64_t& actual) ZBUF_REQUIRES(mutex_);

  const LinkConfig config_;
  std::shared_ptr<Device> udc_;

  mutable Mutex mutex_;  // guards what is marked so below
  ConditionVariable cv_;
  UsbRequest* head_ ZBUF_GUARDED_BY(mutex_) = nullptr;  // the queue, oldest first
  UsbRequest* tail_ ZBUF_GUARDED_BY(mutex_) = nullptr;
  UsbRequest* current_ ZBUF_GUARDED_BY(mutex_) = nullptr;  // the request being executed
  bool currentCancelled_ ZBUF_GUARDED_BY(mutex_) = false;
  // The bound gadget if the host has configured it, else null (takes mutex_).
  [[nodiscard]] std::shared_ptr<UsbGadget> configuredGadget() const ZBUF_EXCLUDES(mutex_);
  std::weak_ptr<UsbGadget> gadget_ ZBUF_GUARDED_BY(mutex_);  // bound when gadgetOwner_ != 0
  std::uint64_t gadgetOwner_ ZBUF_GUARDED_BY(mutex_) = 0;
  bool configured_ ZBUF_GUARDED_BY(mutex_) = false;
  UsbHostPort* host_ ZBUF_GUARDED_BY(mutex_) = nullptr;
  std::uint64_t failAt_ ZBUF_GUARDED_BY(mutex_) = 0;  // value of executed_ that fails; 0 none
  int failErrno_ ZBUF_GUARDED_BY(mutex_) = 0;
  std::uint64_t executed_ ZBUF_GUARDED_BY(mutex_) = 0;
  std::uint64_t bytes_ ZBUF_GUARDED_BY(mutex_) = 0;
  std::uint64_t busyUntilNs_ = 0;             // the wire's modelled busy time (link thread only)
  std::vector<std::span<std::byte>> pieces_;  // reused per request (link thread only)
  bool stop_ ZBUF_GUARDED_BY(mutex_) = false;
  HardwareThread thread_;
};

// The host side's view of the link: called on the link thread, with no link lock held.
class UsbHostPort {
 public:
  virtual ~UsbHostPort() = default;
  // An IN transfer arrived: `pieces` in order make up the transfer.
  virtual void onInTransfer(unsigned endpoint, std::span<const std::span<std::byte>> pieces) = 0;
  // An IN transfer of `length` bytes failed on the wire: its data never arrives.
  virtual void onInLost(unsigned endpoint, std::uint64_t length, int status) = 0;
  // True if the host has data to send on OUT `endpoint` now.
  virtual bool outReady(unsigned endpoint) = 0;
  // Fill an OUT transfer (pieces in order); returns the bytes sent (<= the pieces' total).
  virtual std::uint64_t onOutTransfer(unsigned endpoint,
                                      std::span<const std::span<std::byte>> pieces) = 0;
  // The OUT transfer just filled failed (not accepted): send that data again.
  virtual void onOutFailed(unsigned endpoint, std::uint64_t length) = 0;
  // Whether the host configures a device as soon as it connects (UsbLink::connect).
  [[nodiscard]] virtual bool enumeratesOnConnect() const { return false; }
};

}  // namespace usb
}  // namespace zbuf
#pragma GCC visibility pop
