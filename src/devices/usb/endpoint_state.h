// Private state of the FunctionFS emulation shared by functionfs.cpp (function, fileio) and
// functionfs_dmabuf.cpp (the DMABUF interface).
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "zbuf/core/buffer.h"
#include "zbuf/core/fence.h"
#include "zbuf/core/importer.h"
#include "zbuf/devices/usb/functionfs_uapi.h"
#include "zbuf/devices/usb/link.h"

namespace zbuf::usb {

// The one request an endpoint reuses for its synchronous fileio calls.
class FileioRequest final : public UsbRequest {
 public:
  void reset() {
    const std::lock_guard lock(m_);
    done_ = false;
    status_ = 0;
    actual_ = 0;
  }
  void complete(int status, std::uint64_t actual) noexcept override {
    {
      const std::lock_guard lock(m_);
      done_ = true;
      status_ = status;
      actual_ = actual;
    }
    cv_.notify_all();
  }
  std::pair<int, std::uint64_t> wait() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return done_; });
    return {status_, actual_};
  }

 private:
  std::mutex m_;  // guards done_, status_, actual_
  std::condition_variable cv_;
  bool done_ = false;
  int status_ = 0;
  std::uint64_t actual_ = 0;
};

class DmabufRequest;
class DmabufRecord;

// Per data endpoint of a function (the kernel's ffs_epfile), shared by all its open files.
struct EndpointState {
  unsigned index = 1;  // the file's number (ep1 = 1) and the link's endpoint number
  bool in = true;
  // The endpoint descriptors per speed ([0] full, [1] high, [2] super), as written.
  std::array<std::optional<UsbEndpointDescriptor>, 3> descs;
  std::atomic<std::uint64_t> seqno{0};  // the last fence seqno handed out (first is 1)

  // fileio: one call at a time (epfile->mutex), with the endpoint's request (ep->req).
  std::mutex fileioMutex;
  std::shared_ptr<FileioRequest> fileio;  // guarded by fileioMutex
  std::vector<std::byte> fileioBuffer;    // guarded by fileioMutex

  // DMABUF attachments (epfile->dmabufs, under epfile->dmabufs_mutex), newest last.
  mutable std::mutex dmabufMutex;
  std::vector<std::shared_ptr<DmabufRecord>> records;  // guarded by dmabufMutex
};

namespace detail {
// A data endpoint's state with its fileio request.
[[nodiscard]] std::shared_ptr<EndpointState> makeEndpointState(unsigned index, bool in);
}  // namespace detail

// One attached buffer (the kernel's ffs_dmabuf_priv): the attachment, its mapping (made once at
// ATTACH), the fence timeline (one context per attachment) and the transfers in flight.
class DmabufRecord {
 public:
  ImportedBuffer import;  // attached and mapped from ATTACH to DETACH
  std::shared_ptr<Timeline> timeline;

  void addPending(std::shared_ptr<DmabufRequest> r) {
    const std::lock_guard lock(m_);
    pending_.push_back(std::move(r));
  }
  void removePending(const DmabufRequest* r) noexcept;
  std::vector<std::shared_ptr<DmabufRequest>> pending() const {
    const std::lock_guard lock(m_);
    return pending_;
  }
  void waitIdle() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return pending_.empty(); });
  }

 private:
  mutable std::mutex m_;  // guards pending_
  std::condition_variable cv_;
  std::vector<std::shared_ptr<DmabufRequest>> pending_;
};

// One DMABUF transfer: completing it signals its fence with the transfer's status.
class DmabufRequest final : public UsbRequest {
 public:
  std::shared_ptr<DmabufRecord> record;
  FencePtr fence;

  void complete(int status, std::uint64_t actual) noexcept override;
};

}  // namespace zbuf::usb
