// ClientAccount: what one client process holds in zbufd, and the limits that keep one client
// from exhausting the daemon. A client is a peer process (SO_PEERCRED's pid): all of its
// connections share one account. Every file a reply hands out (an open, a buffer ALLOC or
// CREATE made, a sync file exported or merged, an IIO buffer's fd) is charged to the client
// that asked for it, for as long as the file lives in the daemon: a description the client
// passed to another process stays charged to it, as memory stays charged to the cgroup that
// allocated it.
//
// Errnos, as the kernel's limits give them:
//  - EMFILE: a request that makes a file when the client holds `files` of them (RLIMIT_NOFILE);
//  - ENOMEM: DMA_HEAP_IOCTL_ALLOC, UDMABUF_CREATE or _LIST past `buffers` buffers or `bytes`
//    bytes of buffers (the memory cgroup's answer to an allocation past its limit).
// The request is refused before any call is made.
//
// Thread-safety: thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "zbuf/base/mutex.h"
#include "zbuf/daemon/dispatch.h"
#include "zbuf/ipc/message.h"
#include "zbuf/uapi/context.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::daemon {

struct ClientLimits {
  std::size_t files = 1024;                      // files a client holds in the daemon
  std::size_t buffers = 1024;                    // of them, dma-bufs
  std::uint64_t bytes = std::uint64_t{4} << 30;  // the dma-bufs' bytes
};

struct ClientUsage {
  std::size_t files = 0;
  std::size_t buffers = 0;
  std::uint64_t bytes = 0;
  std::vector<std::uint64_t> bufferInodes;  // the buffers' bufinfo inodes, in charge order
};

class ClientAccount {
 public:
  explicit ClientAccount(ClientLimits limits) : limits_(limits) {}

  // Before a request: 0, or the errno (EMFILE, ENOMEM) of a request that would take the client
  // past its limits.
  [[nodiscard]] int admit(uapi::Context& context, const ipc::Message& request);
  // After it: the files the reply hands out are charged to the client.
  void charge(uapi::Context& context, const Reply& reply);
  // What the client holds now (files the daemon has released are dropped first).
  [[nodiscard]] ClientUsage usage(uapi::Context& context);

 private:
  struct Held {
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    std::uint64_t bytes = 0;  // a dma-buf's size, 0 for other files
    bool buffer = false;
    std::uint64_t bufinfoInode = 0;  // a dma-buf's inode in bufinfo
  };
  [[nodiscard]] ClientUsage pruneLocked(uapi::Context& context) ZBUF_REQUIRES(mutex_);

  const ClientLimits limits_;
  Mutex mutex_;
  std::vector<Held> held_ ZBUF_GUARDED_BY(mutex_);
};

}  // namespace zbuf::daemon
#pragma GCC visibility pop
