// The host checks and generates outside mutex_: the stream position is claimed under mutex_ and the
// counters are added after, so a slow check never blocks a reader of stats().
#include "zbuf/devices/usb/host.h"

#include <algorithm>

namespace zbuf::usb {

UsbHost::UsbHost(std::shared_ptr<UsbLink> link, HostConfig config)
    : link_(std::move(link)), config_(config), checker_(config.format, config.pattern) {
  link_->setHostPort(this);
}

UsbHost::~UsbHost() {
  link_->setHostPort(nullptr);
}

void UsbHost::startSending(unsigned endpoint, std::uint64_t bytes) {
  {
    const MutexLocker lock(mutex_);
    Ep& ep = eps_[endpoint];
    ep.sending = true;
    ep.sendUnbounded = bytes == 0;
    ep.sendLeft = bytes;
  }
  link_->hostStateChanged();
}

void UsbHost::stopSending(unsigned endpoint) {
  {
    const MutexLocker lock(mutex_);
    eps_[endpoint].sending = false;
  }
  link_->hostStateChanged();
}

EndpointStats UsbHost::stats(unsigned endpoint) const {
  const MutexLocker lock(mutex_);
  auto it = eps_.find(endpoint);
  return it == eps_.end() ? EndpointStats{} : it->second.stats;
}

bool UsbHost::waitInBytes(unsigned endpoint, std::uint64_t bytes,
                          std::chrono::milliseconds timeout) const {
  MutexLocker lock(mutex_);
  return cv_.waitFor(lock, timeout, [&]() ZBUF_REQUIRES(mutex_) {
    auto it = eps_.find(endpoint);
    return it != eps_.end() && it->second.stats.bytes + it->second.stats.lostBytes >= bytes;
  });
}

void UsbHost::reset(unsigned endpoint, std::uint64_t offset) {
  const MutexLocker lock(mutex_);
  Ep& ep = eps_[endpoint];
  ep.stats = EndpointStats{};
  ep.stats.offset = offset;
}

void UsbHost::onInTransfer(unsigned endpoint, std::span<const std::span<std::byte>> pieces) {
  std::uint64_t length = 0;
  for (const auto& p : pieces) {
    length += p.size();
  }
  std::uint64_t offset = 0;
  {
    const MutexLocker lock(mutex_);
    EndpointStats& s = eps_[endpoint].stats;
    offset = s.offset;
    s.offset += length;
  }
  std::uint64_t mismatches = 0;
  if (!config_.benchmark) {
    std::uint64_t at = offset;
    for (const auto& p : pieces) {
      mismatches += checker_.countMismatches(p, at);
      at += p.size();
    }
  }
  {
    const MutexLocker lock(mutex_);
    EndpointStats& s = eps_[endpoint].stats;
    s.bytes += length;
    s.blocks += 1;
    s.mismatches += mismatches;
    s.verifiedBytes += config_.benchmark ? 0 : length;
  }
  cv_.notifyAll();
}

void UsbHost::onInLost(unsigned endpoint, std::uint64_t length, int /*status*/) {
  {
    const MutexLocker lock(mutex_);
    EndpointStats& s = eps_[endpoint].stats;
    s.offset += length;
    s.gaps += 1;
    s.lostBytes += length;
  }
  cv_.notifyAll();
}

bool UsbHost::outReady(unsigned endpoint) {
  const MutexLocker lock(mutex_);
  auto it = eps_.find(endpoint);
  return it != eps_.end() && it->second.sending &&
         (it->second.sendUnbounded || it->second.sendLeft > 0);
}

std::uint64_t UsbHost::onOutTransfer(unsigned endpoint,
                                     std::span<const std::span<std::byte>> pieces) {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  for (const auto& p : pieces) {
    length += p.size();
  }
  {
    const MutexLocker lock(mutex_);
    Ep& ep = eps_[endpoint];
    if (!ep.sendUnbounded) {
      length = std::min(length, ep.sendLeft);
      ep.sendLeft -= length;
    }
    offset = ep.stats.offset;
    ep.stats.offset += length;
    ep.stats.bytes += length;
    ep.stats.blocks += 1;
  }
  if (!config_.benchmark) {
    std::uint64_t at = offset;
    std::uint64_t left = length;
    for (const auto& p : pieces) {
      const std::uint64_t n = std::min<std::uint64_t>(left, p.size());
      checker_.generator().fill(p.first(n), at);
      at += n;
      left -= n;
    }
  }
  return length;
}

void UsbHost::onOutFailed(unsigned endpoint, std::uint64_t length) {
  const MutexLocker lock(mutex_);
  Ep& ep = eps_[endpoint];
  ep.stats.offset -= length;
  ep.stats.bytes -= length;
  ep.stats.blocks -= 1;
  ep.stats.gaps += 1;
  if (!ep.sendUnbounded) {
    ep.sendLeft += length;
  }
}

}  // namespace zbuf::usb
