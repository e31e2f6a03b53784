// zbufd's server: a Unix SOCK_SEQPACKET socket that serves one Context (the daemon's emulated
// kernel: its heaps, and the board's devices when it has one) to client processes, one thread
// per connection, each request dispatched as dispatch.h says.
//
// Access: the socket file is made with `mode` (0600 by default: the daemon's user alone), its
// group set to `group` when given (0660 then admits that group). Each connection's peer
// credentials (SO_PEERCRED) are logged; a peer that is neither root, the daemon's user nor in
// `group` is refused (the connection is closed unread).
//
// Lifetime of what clients hold: possession of an fd is the capability. A client's fds are its
// open file descriptions, so what it holds lives while it holds it, and when it closes them or
// dies the daemon's file table releases them (its close events: uapi/file_table.h) as for any
// close. Nothing is named by a number a client could guess.
//
// Thread-safety: thread-safe. stop() (and the destructor) stop accepting, shut every connection
// down and join its thread; a call in progress on a device finishes first.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/daemon/client_account.h"
#include "zbuf/uapi/context.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::daemon {

// Each client process and what it holds (files, buffers, bytes, the buffers' bufinfo inodes),
// a debugfs file of the served context: "pid comm files buffers bytes inodes..." tab-separated,
// a header line first. `zbuf info --daemon` reads it.
inline constexpr const char* kClientsPath = "/sys/kernel/debug/zbuf/clients";

struct ServerConfig {
  std::string socketPath;                  // ipc::defaultSocketPath() when empty
  mode_t mode = 0600;                      // the socket file's permissions
  std::optional<gid_t> group;              // the socket file's group, and admitted peers' group
  std::shared_ptr<uapi::Context> context;  // what is served (required)
  UniqueFd listening;                      // an inherited listening socket (systemd's LISTEN_FDS)
  ClientLimits limits;                     // per client process (client_account.h)
};

class Server {
 public:
  // Binds and listens (EADDRINUSE if a live daemon has the path; a stale socket file left by a
  // dead one is replaced), then accepts on its own thread.
  [[nodiscard]] static Result<std::unique_ptr<Server>> create(ServerConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void stop();
  [[nodiscard]] const std::string& socketPath() const noexcept { return path_; }
  // Connections open now.
  [[nodiscard]] std::size_t clients() const;
  // Connections accepted since the start (for tests and logs).
  [[nodiscard]] std::size_t accepted() const noexcept { return accepted_.load(); }
  // What the client process `pid` holds in the daemon (zero for a process it does not know).
  [[nodiscard]] ClientUsage usage(pid_t pid);

  struct Private;
  Server(Private key, ServerConfig config, UniqueFd listening, std::string path, bool ownsPath);

 private:
  struct Connection {
    UniqueFd socket;
    std::shared_ptr<ClientAccount> account;  // the peer process's, shared by its connections
    std::string comm;  // the client's name (its /proc/<pid>/comm), the calls' current->comm
    uid_t uid = 0;     // the client's user (SO_PEERCRED), the calls' current_euid()
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void acceptLoop();
  void serve(Connection& c);
  void reapFinished() ZBUF_REQUIRES(mutex_);

  ServerConfig config_;
  UniqueFd listening_;
  UniqueFd stopEvent_;
  std::string path_;
  bool ownsPath_;
  std::atomic<std::size_t> accepted_{0};
  std::thread acceptor_;
  mutable Mutex mutex_;
  std::list<Connection> connections_ ZBUF_GUARDED_BY(mutex_);
  // The client processes' accounts, shared with the context's clients file (kClientsPath).
  struct Clients {
    Mutex mutex;
    std::map<pid_t, std::shared_ptr<ClientAccount>> accounts ZBUF_GUARDED_BY(mutex);
  };
  std::shared_ptr<Clients> clients_ = std::make_shared<Clients>();
  // The text of kClientsPath.
  [[nodiscard]] static std::string clientsText(uapi::Context& context, Clients& clients);
  bool stopped_ ZBUF_GUARDED_BY(mutex_) = false;
};

}  // namespace zbuf::daemon
#pragma GCC visibility pop
