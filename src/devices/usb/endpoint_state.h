// Private state of the FunctionFS emulation shared by functionfs.cpp (function, fileio) and
// functionfs_dmabuf.cpp (the DMABUF interface).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "zbuf/base/mutex.h"
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
    const MutexLocker lock(mutex_);
    done_ = false;
    status_ = 0;
    actual_ = 0;
  }
  void complete(int status, std::uint64_t actual) noexcept override {
    {
      const MutexLocker lock(mutex_);
      done_ = true;
      status_ = status;
      actual_ = actual;
    }
    cv_.notifyAll();
  }
  std::pair<int, std::uint64_t> wait() {
    MutexLocker lock(mutex_);
    cv_.wait(lock, [&]() ZBUF_REQUIRES(mutex_) { return done_; });
    return {status_, actual_};
  }

 private:
  Mutex mutex_;
  ConditionVariable cv_;
  bool done_ ZBUF_GUARDED_BY(mutex_) = false;
  int status_ ZBUF_GUARDED_BY(mutex_) = 0;
  std::uint64_t actual_ ZBUF_GUARDED_BY(mutex_) = 0;
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
  Mutex fileioMutex;
  std::shared_ptr<FileioRequest> fileio ZBUF_GUARDED_BY(fileioMutex) =
      std::make_shared<FileioRequest>();
  std::vector<std::byte> fileioBuffer ZBUF_GUARDED_BY(fileioMutex);

  // DMABUF attachments (epfile->dmabufs, under epfile->dmabufs_mutex), newest last.
  mutable Mutex dmabufMutex;
  std::vector<std::shared_ptr<DmabufRecord>> records ZBUF_GUARDED_BY(dmabufMutex);
};

namespace detail {
// A data endpoint's state (with its fileio request).
[[nodiscard]] std::shared_ptr<EndpointState> makeEndpointState(unsigned index, bool in);
}  // namespace detail

// One attached buffer (the kernel's ffs_dmabuf_priv): the attachment, its mapping (made once at
// ATTACH), the fence timeline (one context per attachment) and the transfers in flight.
class DmabufRecord {
 public:
  ImportedBuffer import;  // attached and mapped from ATTACH to DETACH
  std::shared_ptr<Timeline> timeline;

  void addPending(std::shared_ptr<DmabufRequest> r) {
    const MutexLocker lock(mutex_);
    pending_.push_back(std::move(r));
  }
  void removePending(const DmabufRequest* r) noexcept;
  std::vector<std::shared_ptr<DmabufRequest>> pending() const {
    const MutexLocker lock(mutex_);
    return pending_;
  }
  void waitIdle() {
    MutexLocker lock(mutex_);
    cv_.wait(lock, [&]() ZBUF_REQUIRES(mutex_) { return pending_.empty(); });
  }

 private:
  mutable Mutex mutex_;
  ConditionVariable cv_;
  std::vector<std::shared_ptr<DmabufRequest>> pending_ ZBUF_GUARDED_BY(mutex_);
};

// One DMABUF transfer: completing it signals its fence with the transfer's status.
class DmabufRequest final : public UsbRequest {
 public:
  std::shared_ptr<DmabufRecord> record;
  FencePtr fence;

  void complete(int status, std::uint64_t actual) noexcept override;
};

}  // namespace zbuf::usb
