// VirtioHost: the host side of the emulated virtio devices (what a VMM such as crosvm keeps
// for its guests' devices): the registry that maps a UUID to a buffer a virtio device exported,
// so that another virtio device, with its own command stream, can name that buffer by UUID
// (the use case of seeds/004; docs/buffers.md "Virtio buffers").
//
// Registration is a round trip to the host (the guest driver's RESOURCE_ASSIGN_UUID command
// and its response). requestRegistration() sends it and returns at once; the host's worker
// answers after the configured latency, and only then is the UUID resolvable. That is why the
// upstream API is a get_uuid callback instead of a stored UUID: the exporter starts the round
// trip at export and answers get_uuid only once it has completed, so other set-up work hides
// the latency.
//
// Rules:
//  - A UUID is registered once: a second registration of a UUID that is pending or registered
//    completes with EEXIST (the first stays).
//  - resolve(): ENOENT for a UUID the host does not know (never registered, or its buffer was
//    released: unregister() removes it); EACCES when the policy refuses the caller; a pending
//    UUID waits for its registration (EAGAIN when non-blocking), then resolves or fails as it
//    completes. The policy (default): the caller is root or the user that registered it.
//  - unregister(): the buffer was released; its entry goes, pending or not, and a registration
//    still in flight completes into nothing (ENOENT for its waiters).
//  - Shutdown (the destructor): registrations in flight complete with ESHUTDOWN.
//
// Thread-safety: thread-safe. Completions run on the host's worker with no host lock held.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "zbuf/base/hw_thread.h"
#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/virtio_dma_buf.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::virtio {

struct VirtioHostConfig {
  // The round trip of one registration (command to the host, response back).
  std::chrono::nanoseconds registrationLatency{0};
};

struct VirtioHostStats {
  std::uint64_t registered = 0;  // registrations that completed with success
  std::uint64_t duplicates = 0;  // registrations refused with EEXIST
  std::uint64_t orphaned = 0;    // registrations answered after their buffer was released
  std::uint64_t resolved = 0;    // resolutions that gave a buffer
  std::uint64_t refused = 0;     // resolutions the policy refused (EACCES)
  std::uint64_t unknown = 0;     // resolutions of a UUID the host does not know (ENOENT)
  std::uint64_t entries = 0;     // UUIDs the host knows now (pending or registered)
  std::uint64_t pending = 0;     // of which still being registered
};

class VirtioHost {
 public:
  // 0 on success, else a positive errno.
  using Completion = std::function<void(int error)>;

  [[nodiscard]] static std::shared_ptr<VirtioHost> create(VirtioHostConfig config);
  ~VirtioHost();
  VirtioHost(const VirtioHost&) = delete;
  VirtioHost& operator=(const VirtioHost&) = delete;
  VirtioHost(VirtioHost&&) = delete;
  VirtioHost& operator=(VirtioHost&&) = delete;

  [[nodiscard]] const VirtioHostConfig& config() const noexcept { return config_; }

  // Sends the registration of `uuid` for `buffer`, owned by user `owner`; `done` runs on the
  // host's worker when the response arrives (0, EEXIST, or ESHUTDOWN). Never blocks.
  void requestRegistration(const Uuid& uuid, const BufferPtr& buffer, uid_t owner, Completion done);
  // The buffer registered as `uuid`, for the caller `requester` (see above for the errors).
  [[nodiscard]] Result<BufferPtr> resolve(const Uuid& uuid, bool nonBlocking, uid_t requester);
  // The buffer (its inode) that registered `uuid` was released: forget it.
  void unregister(const Uuid& uuid, std::uint64_t inode);

  [[nodiscard]] VirtioHostStats stats() const;
  // The registry as text, one UUID a line in registration order: "UUID state owner inode"
  // (state: pending or registered), for the bench file.
  [[nodiscard]] std::string describe() const;

  struct Private;
  VirtioHost(Private key, VirtioHostConfig config);

 private:
  enum class State : std::uint8_t { Pending, Registered };
  struct Entry {
    State state = State::Pending;
    std::weak_ptr<Buffer> buffer;
    std::uint64_t inode = 0;  // which buffer the entry is (unregister compares it)
    uid_t owner = 0;
    std::uint64_t order = 0;
  };
  struct Request {
    std::chrono::steady_clock::time_point due;
    Uuid uuid{};
    std::uint64_t inode = 0;
    bool duplicate = false;  // the host refuses it (EEXIST) when it answers
    Completion done;
  };
  void run();

  VirtioHostConfig config_;
  mutable Mutex mutex_;
  ConditionVariable changed_;  // an entry's state changed, a request arrived, or stopping
  std::map<Uuid, Entry> entries_ ZBUF_GUARDED_BY(mutex_);
  std::deque<Request> requests_ ZBUF_GUARDED_BY(mutex_);  // in due order (one latency for all)
  VirtioHostStats stats_ ZBUF_GUARDED_BY(mutex_);
  std::uint64_t nextOrder_ ZBUF_GUARDED_BY(mutex_) = 0;
  bool stopping_ ZBUF_GUARDED_BY(mutex_) = false;
  HardwareThread worker_;
};

}  // namespace zbuf::virtio
#pragma GCC visibility pop
