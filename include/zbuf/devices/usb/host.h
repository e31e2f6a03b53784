// UsbHost: the emulated host at the far end of a UsbLink.
//
// It receives every IN transfer and checks it byte for byte against the IIO test pattern at
// its position in the endpoint's stream (the stream offset advances by each transfer's length),
// counting bytes, blocks (transfers), mismatching bytes and gaps (transfers lost on the wire:
// the offset skips their length, so the data after a gap is still checked at its true place).
// For the DAC direction it sends the pattern on OUT endpoints: each OUT transfer is filled with
// the next bytes of the stream; a transfer the link failed is sent again.
// In benchmark mode it neither checks nor generates (the data is untouched).
//
// Its work runs on the link's hardware thread (it is hardware, not application CPU).
// Thread-safety: thread-safe; mutex_ guards the per-endpoint state. Lock order: the link's lock,
// then mutex_ (the link calls outReady() under its lock); the host never calls the link with mutex_
// held.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "zbuf/base/mutex.h"
#include "zbuf/devices/pattern.h"
#include "zbuf/devices/usb/link.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::usb {

struct HostConfig {
  SampleFormat format{};
  PatternKind pattern = PatternKind::Ramp;
  bool benchmark = false;  // neither check nor generate
  bool enumerate = false;  // configure the device as soon as a ready function connects
};

struct EndpointStats {
  std::uint64_t bytes = 0;          // IN: bytes received; OUT: bytes sent and accepted
  std::uint64_t blocks = 0;         // transfers
  std::uint64_t verifiedBytes = 0;  // IN: bytes checked (0 in benchmark mode)
  std::uint64_t mismatches = 0;     // IN: bytes that differed from the pattern
  std::uint64_t gaps = 0;           // IN: transfers lost on the wire; OUT: transfers resent
  std::uint64_t lostBytes = 0;      // IN: bytes of the lost transfers
  std::uint64_t offset = 0;         // the endpoint's stream position
};

class UsbHost final : public UsbHostPort {
 public:
  // Registers itself as the link's host port; the destructor unregisters it.
  UsbHost(std::shared_ptr<UsbLink> link, HostConfig config);
  ~UsbHost() override;
  UsbHost(const UsbHost&) = delete;
  UsbHost& operator=(const UsbHost&) = delete;

  // SET_CONFIGURATION (ENODEV if no function is bound) and disconnect.
  [[nodiscard]] Result<void> configure() { return link_->configure(); }
  void disconnect() { link_->disconnect(); }
  // Bus suspend and resume (the function sees SUSPEND and RESUME while configured).
  void suspend() { link_->suspend(); }
  void resume() { link_->resume(); }

  // Starts sending the pattern on OUT `endpoint` from the current offset: `bytes` more bytes
  // (0: without end). Stops with stopSending().
  void startSending(unsigned endpoint, std::uint64_t bytes = 0);
  void stopSending(unsigned endpoint);

  [[nodiscard]] EndpointStats stats(unsigned endpoint) const;
  // Waits until IN `endpoint` has received (or lost) at least `bytes` bytes; false on timeout.
  [[nodiscard]] bool waitInBytes(unsigned endpoint, std::uint64_t bytes,
                                 std::chrono::milliseconds timeout) const;
  // Zeroes the endpoint's counters and moves its stream position to `offset`.
  void reset(unsigned endpoint, std::uint64_t offset = 0);

  // --- UsbHostPort (link thread) ---------------------------------------------------------------
  void onInTransfer(unsigned endpoint, std::span<const std::span<std::byte>> pieces) override;
  void onInLost(unsigned endpoint, std::uint64_t length, int status) override;
  bool outReady(unsigned endpoint) override;
  std::uint64_t onOutTransfer(unsigned endpoint,
                              std::span<const std::span<std::byte>> pieces) override;
  void onOutFailed(unsigned endpoint, std::uint64_t length) override;
  [[nodiscard]] bool enumeratesOnConnect() const override { return config_.enumerate; }

 private:
  struct Ep {
    EndpointStats stats;
    bool sending = false;
    std::uint64_t sendLeft = 0;  // 0 with `sending`: without end
    bool sendUnbounded = false;
  };

  std::shared_ptr<UsbLink> link_;
  const HostConfig config_;
  const PatternChecker checker_;
  mutable Mutex mutex_;
  mutable ConditionVariable cv_;
  std::map<unsigned, Ep> eps_ ZBUF_GUARDED_BY(mutex_);
};

}  // namespace zbuf::usb
#pragma GCC visibility pop
