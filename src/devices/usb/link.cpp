// The link thread takes the first request whose endpoint can move data now (IN always; OUT when
// the host has data to send), moves it with mutex_ released (the memory and the host are touched
// only by this thread), paces the wire, and completes it. Requests of one endpoint keep their
// order because an OUT endpoint is either ready for all its requests or for none.
#include "zbuf/devices/usb/link.h"

#include <algorithm>
#include <cerrno>
#include <thread>

#include "zbuf/base/log.h"
#include "zbuf/base/sys.h"

namespace zbuf {

ZBUF_LOG_CATEGORY(Usb);

const char* toString(LinkSpeed s) noexcept {
  switch (s) {
    case LinkSpeed::Usb2:
      return "usb2";
    case LinkSpeed::Usb3:
      return "usb3";
    case LinkSpeed::Unlimited:
      return "unlimited";
  }
  return "?";
}

Result<LinkSpeed> parseLinkSpeed(std::string_view s) {
  for (LinkSpeed v : {LinkSpeed::Usb2, LinkSpeed::Usb3, LinkSpeed::Unlimited}) {
    if (s == toString(v)) {
      return v;
    }
  }
  return Error(EINVAL, "parseLinkSpeed",
               fmt::format("unknown link speed '{}' (usb2, usb3 or unlimited)", s));
}

std::uint64_t linkBytesPerSecond(LinkSpeed s) noexcept {
  switch (s) {
    case LinkSpeed::Usb2:
      return 43'000'000;
    case LinkSpeed::Usb3:
      return 425'000'000;
    case LinkSpeed::Unlimited:
      return 0;
  }
  return 0;
}

namespace usb {

struct UsbLink::Private {};

UsbLink::UsbLink(Private /*key*/, LinkConfig config) : config_(config) {
  udc_ = Device::create(DeviceConfig{.name = "usb-udc",
                                     .coherent = config.coherent,
                                     .maxSegmentSize = config.maxSegmentSize,
                                     .scatterGather = config.scatterGather});
  if (config.failTransfer != 0) {
    failAt_ = config.failTransfer;
    failErrno_ = config.failErrno;
  }
}

std::shared_ptr<UsbLink> UsbLink::create(LinkConfig config) {
  auto link = std::make_shared<UsbLink>(Private{}, config);
  link->thread_ = HardwareThread("usb-link", [l = link.get()] { l->run(); });
  return link;
}

UsbLink::~UsbLink() {
  {
    const MutexLocker lock(mutex_);
    stop_ = true;
  }
  cv_.notifyAll();
  thread_.join();
  UsbRequest* list = nullptr;
  {
    const MutexLocker lock(mutex_);
    list = takeAllLocked();
  }
  completeList(list, -ESHUTDOWN);
}

Result<void> UsbLink::bindGadget(const std::shared_ptr<UsbGadget>& gadget, std::uint64_t owner) {
  const MutexLocker lock(mutex_);
  if (owner == 0) {
    return Error(EINVAL, "UsbLink::bindGadget", "owner 0 means 'no function'");
  }
  if (gadgetOwner_ != 0) {
    return Error(EBUSY, "UsbLink::bindGadget", "the link's controller already has a function");
  }
  gadget_ = gadget;
  gadgetOwner_ = owner;
  configured_ = false;
  return {};
}

void UsbLink::unlinkLocked(UsbRequest* prev, UsbRequest* r) {
  (prev == nullptr ? head_ : prev->next_) = r->next_;
  if (tail_ == r) {
    tail_ = prev;
  }
  r->next_ = nullptr;
}

UsbRequest* UsbLink::takeOwnerLocked(std::uint64_t owner) {
  UsbRequest* list = nullptr;
  UsbRequest** listTail = &list;
  UsbRequest* prev = nullptr;
  for (UsbRequest* r = head_; r != nullptr;) {
    UsbRequest* next = r->next_;
    if (r->owner == owner) {
      unlinkLocked(prev, r);
      *listTail = r;
      listTail = &r->next_;
    } else {
      prev = r;
    }
    r = next;
  }
  return list;
}

UsbRequest* UsbLink::takeAllLocked() {
  UsbRequest* list = head_;
  head_ = tail_ = nullptr;
  return list;
}

void UsbLink::completeList(UsbRequest* list, int status) {
  while (list != nullptr) {
    UsbRequest* next = list->next_;
    list->next_ = nullptr;
    UsbRequestPtr self = std::move(list->self_);
    self->complete(status, 0);
    list = next;
  }
}

void UsbLink::unbindGadget(std::uint64_t owner) {
  std::shared_ptr<UsbGadget> gadget;
  UsbRequest* cancelled = nullptr;
  {
    const MutexLocker lock(mutex_);
    if (gadgetOwner_ == 0 || gadgetOwner_ != owner) {
      return;
    }
    gadget = gadget_.lock();  // null when the function unbinds from its destructor
    gadget_.reset();
    gadgetOwner_ = 0;
    configured_ = false;
    cancelled = takeOwnerLocked(owner);
  }
  if (gadget) {
    gadget->onDisabled();
  }
  completeList(cancelled, -ESHUTDOWN);
}

Result<void> UsbLink::queue(UsbRequestPtr request) {
  {
    const MutexLocker lock(mutex_);
    if (gadgetOwner_ == 0 || gadgetOwner_ != request->owner || !configured_ || stop_) {
      return Error(ESHUTDOWN, "usb_ep_queue",
                   fmt::format("ep{} is not enabled (the host has not configured the function)",
                               request->endpoint));
    }
    UsbRequest* r = request.get();
    r->self_ = std::move(request);
    r->next_ = nullptr;
    r->queuedNs_ = sys::monotonicNs();
    (tail_ == nullptr ? head_ : tail_->next_) = r;
    tail_ = r;
  }
  cv_.notifyAll();
  return {};
}

bool UsbLink::dequeue(const UsbRequest& request) {
  UsbRequest* found = nullptr;
  {
    const MutexLocker lock(mutex_);
    if (current_ == &request) {
      currentCancelled_ = true;
      return true;
    }
    UsbRequest* prev = nullptr;
    for (UsbRequest* r = head_; r != nullptr; prev = r, r = r->next_) {
      if (r == &request) {
        unlinkLocked(prev, r);
        found = r;
        break;
      }
    }
  }
  if (found == nullptr) {
    return false;
  }
  completeList(found, -ECONNRESET);
  return true;
}

void UsbLink::setHostPort(UsbHostPort* port) {
  {
    MutexLocker lock(mutex_);
    // The link thread may be inside the old host: let it finish first.
    cv_.wait(lock, [&]() ZBUF_REQUIRES(mutex_) { return current_ == nullptr; });
    host_ = port;
  }
  cv_.notifyAll();
}

Result<void> UsbLink::configure() {
  std::shared_ptr<UsbGadget> gadget;
  {
    const MutexLocker lock(mutex_);
    gadget = gadget_.lock();
    if (gadget == nullptr) {  // none bound, or it is being released
      return Error(ENODEV, "UsbLink::configure", "no function is bound to the controller");
    }
    if (configured_) {
      return {};
    }
    configured_ = true;
  }
  gadget->onConfigured();
  return {};
}

void UsbLink::disconnect() {
  std::shared_ptr<UsbGadget> gadget;
  UsbRequest* cancelled = nullptr;
  {
    const MutexLocker lock(mutex_);
    if (!configured_) {
      return;
    }
    configured_ = false;
    gadget = gadget_.lock();
    cancelled = takeOwnerLocked(gadgetOwner_);
  }
  if (gadget) {
    gadget->onDisabled();
  }
  completeList(cancelled, -ESHUTDOWN);
}

std::shared_ptr<UsbGadget> UsbLink::configuredGadget() const {
  const MutexLocker lock(mutex_);
  return configured_ ? gadget_.lock() : nullptr;
}

void UsbLink::suspend() {
  if (auto gadget = configuredGadget()) {
    gadget->onSuspend();
  }
}

void UsbLink::resume() {
  if (auto gadget = configuredGadget()) {
    gadget->onResume();
  }
}

void UsbLink::connect() {
  bool enumerate = false;
  {
    const MutexLocker lock(mutex_);
    enumerate = !gadget_.expired() && host_ != nullptr && host_->enumeratesOnConnect();
  }
  if (enumerate) {
    (void)configure();  // ENODEV only if the function was unbound meanwhile
  }
}

bool UsbLink::configured() const {
  const MutexLocker lock(mutex_);
  return configured_;
}

void UsbLink::hostStateChanged() {
  { const MutexLocker lock(mutex_); }
  cv_.notifyAll();
}

void UsbLink::failNth(std::uint64_t n, int err) {
  const MutexLocker lock(mutex_);
  failAt_ = n == 0 ? 0 : executed_ + n;
  failErrno_ = err;
}

std::uint64_t UsbLink::executed() const {
  const MutexLocker lock(mutex_);
  return executed_;
}

std::uint64_t UsbLink::bytesMoved() const {
  const MutexLocker lock(mutex_);
  return bytes_;
}

// Resolves the request's memory into pieces_ (link thread only). Returns 0 or a negative errno
// (an IOMMU fault: -EFAULT, or a direction violation: -EPERM).
namespace {

int resolve(UsbRequest& r, std::vector<std::span<std::byte>>& pieces) {
  pieces.clear();
  if (r.sg == nullptr) {
    pieces.push_back(r.cpu.first(std::min<std::uint64_t>(r.length, r.cpu.size())));
    return 0;
  }
  std::uint64_t left = r.length;
  for (const SgSegment& seg : r.sg->segments()) {
    if (left == 0) {
      break;
    }
    const std::uint64_t n = std::min(left, seg.length);
    auto host = r.dmaDevice->iommu().translate(seg.dmaAddress, n, /*write=*/!r.in);
    if (!host.ok()) {
      return host.error().negative();
    }
    pieces.push_back(*host);
    left -= n;
  }
  return 0;
}

}  // namespace

int UsbLink::transferLocked(UsbRequest& r, std::uint64_t& actual) {
  UsbHostPort* host = host_;
  const bool fail = failAt_ != 0 && executed_ + 1 == failAt_;
  const int failErrno = failErrno_;
  mutex_.unlock();
  int status = resolve(r, pieces_);
  actual = 0;
  if (status == 0) {
    if (r.in) {
      if (fail) {
        status = -failErrno;
        if (host != nullptr) {
          host->onInLost(r.endpoint, r.length, status);
        }
      } else {
        if (host != nullptr) {
          host->onInTransfer(r.endpoint, pieces_);
        }
        actual = r.length;
      }
    } else {
      actual = host != nullptr ? host->onOutTransfer(r.endpoint, pieces_) : 0;
      if (fail) {
        status = -failErrno;
        if (host != nullptr) {
          host->onOutFailed(r.endpoint, actual);
        }
        actual = 0;
      }
    }
  } else {
    log(LogUsb, LogLevel::Warn, "usb-link: request on ep{} faulted ({})", r.endpoint,
        errnoName(-status));
  }
  // The wire is busy for the bytes it moved (a failed transfer still used it), from when it was
  // free and the request was there: an oversleep is made up by the next queued transfer.
  if (const std::uint64_t rate = linkBytesPerSecond(config_.speed); rate != 0) {
    const std::uint64_t now = sys::monotonicNs();
    const std::uint64_t bytes = status == 0 ? actual : r.length;
    busyUntilNs_ = std::max(busyUntilNs_, r.queuedNs_) + bytes * 1'000'000'000ULL / rate;
    if (busyUntilNs_ > now) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(busyUntilNs_ - now));
    }
  }
  mutex_.lock();
  return status;
}

void UsbLink::run() {
  MutexLocker lock(mutex_);
  for (;;) {
    UsbRequest* prev = nullptr;
    UsbRequest* ready = nullptr;
    cv_.wait(lock, [&]() ZBUF_REQUIRES(mutex_) {
      if (stop_) {
        return true;
      }
      prev = nullptr;
      for (UsbRequest* r = head_; r != nullptr; prev = r, r = r->next_) {
        if (r->in || (host_ != nullptr && host_->outReady(r->endpoint))) {
          ready = r;
          return true;
        }
      }
      return false;
    });
    if (stop_) {
      return;
    }
    unlinkLocked(prev, ready);
    current_ = ready;
    currentCancelled_ = false;
    std::uint64_t actual = 0;
    int status = transferLocked(*ready, actual);
    ++executed_;
    bytes_ += actual;
    if (currentCancelled_) {
      status = -ECONNRESET;
    }
    current_ = nullptr;
    UsbRequestPtr done = std::move(ready->self_);
    lock.unlock();
    cv_.notifyAll();  // setHostPort() may wait for the end of the transfer
    done->complete(status, actual);
    done.reset();
    lock.lock();
  }
}

}  // namespace usb
}  // namespace zbuf
