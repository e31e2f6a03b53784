// ep0 of a function: the descriptors and strings written to it (ffs_ep0_write in the states
// FFS_READ_DESCRIPTORS and FFS_READ_STRINGS), the events read from it (ffs_ep0_read,
// __ffs_ep0_read_events), its poll (ffs_ep0_poll) and the event queue (__ffs_event_add).
#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <cstring>

#include "devices/usb/endpoint_state.h"
#include "devices/usb/ffs_descriptors.h"
#include "zbuf/base/sys.h"
#include "zbuf/devices/usb/functionfs.h"

namespace zbuf::usb {

Result<std::size_t> FunctionFs::ep0Write(std::span<const std::byte> data, bool nonblock) {
  constexpr const char* kOp = "ffs_ep0_write";
  if (!ep0Mutex_.lockUnlessNonblock(nonblock)) {  // ffs_mutex_lock
    return Error(EAGAIN, kOp, "another call holds ep0 (non-blocking)");
  }
  const MutexLocker lock(ep0Mutex_, std::adopt_lock);
  switch (state()) {
    case FfsState::ReadDescriptors:
    case FfsState::ReadStrings:
      if (data.size() < 16) {
        return Error(
            EINVAL, kOp,
            fmt::format("{} bytes: descriptors and strings take at least 16", data.size()));
      }
      return state() == FfsState::ReadDescriptors ? ep0WriteDescriptors(data)
                                                  : ep0WriteStrings(data);
    case FfsState::Active:
      // No control request is ever pending (the emulated host sends none): FFS_NO_SETUP.
      return Error(ESRCH, kOp, "no control request is pending on ep0");
    case FfsState::Closing:
      break;
  }
  return Error(EBADFD, kOp, fmt::format("function '{}' is closing", config_.name));
}

Result<std::size_t> FunctionFs::ep0WriteDescriptors(std::span<const std::byte> data) {
  ZBUF_ASSIGN_OR_RETURN(auto parsed, detail::parseFfsDescriptors(data));
  const MutexLocker lock(mutex_);
  descs_ = std::make_unique<detail::FfsDescriptors>(std::move(parsed));
  state_ = FfsState::ReadStrings;
  return data.size();
}

Result<std::size_t> FunctionFs::ep0WriteStrings(std::span<const std::byte> data) {
  constexpr const char* kOp = "ffs_ep0_write";
  std::unique_ptr<detail::FfsDescriptors> descs;
  {
    const MutexLocker lock(mutex_);
    descs = std::move(descs_);
  }
  auto strings = detail::parseFfsStrings(data, descs->stringsNeeded);
  if (!strings.ok()) {
    const MutexLocker lock(mutex_);
    descs_ = std::move(descs);  // still waiting for strings
    return std::move(strings).error();
  }
  // ffs_epfiles_create: one file per endpoint descriptor, in order.
  std::vector<std::shared_ptr<EndpointState>> eps;
  std::vector<std::string> names;
  const bool virtualAddr = (descs->flags & kFfsVirtualAddr) != 0;
  for (const detail::FfsEndpointInfo& info : descs->endpoints) {
    auto ep = detail::makeEndpointState(static_cast<unsigned>(eps.size()) + 1,
                                        (info.address & kUsbEndpointDirIn) != 0);
    ep->descs = info.descs;
    names.push_back(virtualAddr ? fmt::format("ep{:02x}", info.address)
                                : fmt::format("ep{}", ep->index));
    eps.push_back(std::move(ep));
  }
  std::function<Result<void>(const std::vector<std::string>&)> created;
  {
    const MutexLocker lock(mutex_);
    created = hooks_.created;
  }
  if (created) {
    auto made = created(names);
    if (!made.ok()) {
      const MutexLocker lock(mutex_);
      state_ = FfsState::Closing;
      return std::move(made).error();
    }
  }
  std::shared_ptr<UsbLink> pending;
  {
    const MutexLocker lock(mutex_);
    eps_ = std::move(eps);
    epNames_ = std::move(names);
    userFlags_ = descs->flags;
    interfaces_ = descs->interfaces;
    stringsNeeded_ = descs->stringsNeeded;
    state_ = FfsState::Active;
    pending = pendingLink_;
    const MutexLocker evLock(evMutex_);
    eventfd_ = std::move(descs->eventfd);
  }
  // ffs_ready: the function is ready, the gadget binds it.
  if (pending) {
    auto bound = bindNow(pending);
    if (!bound.ok()) {
      const MutexLocker lock(mutex_);
      state_ = FfsState::Closing;
      return Error(bound.code(), kOp,
                   fmt::format("function '{}' is ready but cannot bind: {}", config_.name,
                               bound.error().message()));
    }
  }
  return data.size();
}

Result<std::size_t> FunctionFs::ep0Read(std::span<std::byte> out, bool nonblock) {
  constexpr const char* kOp = "ffs_ep0_read";
  if (!ep0Mutex_.lockUnlessNonblock(nonblock)) {  // ffs_mutex_lock
    return Error(EAGAIN, kOp, "another call holds ep0 (non-blocking)");
  }
  const MutexLocker lock(ep0Mutex_, std::adopt_lock);
  if (state() != FfsState::Active) {
    return Error(EBADFD, kOp,
                 fmt::format("function '{}' has no events before its descriptors and strings",
                             config_.name));
  }
  const std::size_t n = out.size() / sizeof(UsbFunctionfsEvent);
  if (n == 0) {
    return Error(EINVAL, kOp,
                 fmt::format("{} bytes cannot hold one event ({} bytes)", out.size(),
                             sizeof(UsbFunctionfsEvent)));
  }
  MutexLocker evLock(evMutex_);
  if (nonblock && events_.empty()) {
    return Error(EAGAIN, kOp, "no event is queued (non-blocking)");
  }
  evCv_.wait(evLock, [&]() ZBUF_REQUIRES(evMutex_) { return !events_.empty(); });
  const std::size_t count = std::min(n, events_.size());
  for (std::size_t i = 0; i < count; ++i) {
    UsbFunctionfsEvent ev{};
    ev.type = static_cast<std::uint8_t>(events_[i]);
    std::memcpy(out.data() + i * sizeof ev, &ev, sizeof ev);
  }
  events_.erase(events_.begin(), events_.begin() + static_cast<std::ptrdiff_t>(count));
  return count * sizeof(UsbFunctionfsEvent);
}

short FunctionFs::ep0Poll(short /*events*/, uapi::PollTable* table) {
  if (table != nullptr) {
    table->wait(evWait_);  // poll_wait first, then the state
  }
  short mask = POLLWRNORM;
  const MutexLocker lock(mutex_);
  switch (state_) {
    case FfsState::ReadDescriptors:
    case FfsState::ReadStrings:
      mask |= POLLOUT;
      break;
    case FfsState::Active: {
      const MutexLocker evLock(evMutex_);
      if (!events_.empty()) {
        mask |= POLLIN;
      }
      break;
    }
    case FfsState::Closing:
      break;
  }
  return mask;
}

// __ffs_event_add: what an event purges from the queue, then the event, the wake-ups and the
// eventfd.
void FunctionFs::addEvent(FfsEventType type) {
  {
    const MutexLocker lock(evMutex_);
    FfsEventType rem1 = type;
    FfsEventType rem2 = type;
    bool keepOnlyRemoved = false;  // `neg`: keep the rem types, drop the rest
    switch (type) {
      case FfsEventType::Resume:
        rem2 = FfsEventType::Suspend;
        break;
      case FfsEventType::Suspend:
      case FfsEventType::Setup:
        break;
      case FfsEventType::Bind:
      case FfsEventType::Unbind:
      case FfsEventType::Disable:
      case FfsEventType::Enable:
        rem1 = FfsEventType::Suspend;
        rem2 = FfsEventType::Resume;
        keepOnlyRemoved = true;
        break;
    }
    std::erase_if(events_,
                  [&](FfsEventType ev) { return (ev == rem1 || ev == rem2) != keepOnlyRemoved; });
    events_.push_back(type);
    if (eventfd_) {
      (void)sys::eventfdWrite(eventfd_.get(), 1);
    }
  }
  evCv_.notifyAll();
  evWait_.wakeUp();
}

}  // namespace zbuf::usb
