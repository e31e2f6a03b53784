// The accept loop, the per-connection loop, and the socket file's set-up.
#include "zbuf/daemon/server.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "zbuf/base/log.h"
#include "zbuf/base/sys.h"
#include "zbuf/daemon/dispatch.h"
#include "zbuf/ipc/message.h"
#include "zbuf/ipc/socket_path.h"
#include "zbuf/uapi/sysfs_attr.h"

ZBUF_LOG_CATEGORY(Daemon);

namespace zbuf::daemon {

struct Server::Private {};

namespace {

Result<sockaddr_un> addressOf(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return Error(ENAMETOOLONG, "zbufd",
                 fmt::format("socket path '{}' is empty or longer than {} bytes", path,
                             sizeof addr.sun_path - 1));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// A socket file nobody listens on any more (a daemon that died) may be replaced.
bool isStale(const sockaddr_un& addr) {
  const int probe = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (probe < 0) {
    return false;
  }
  const bool refused =
      ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 &&  // NOLINT
      errno == ECONNREFUSED;
  ::close(probe);
  return refused;
}

// Bound and listening under a temporary name, then renamed into place: a client never finds
// the socket file before the daemon listens on it (no ECONNREFUSED window at start-up).
Result<UniqueFd> listenOn(const std::string& path, mode_t mode, std::optional<gid_t> group) {
  ZBUF_ASSIGN_OR_RETURN(auto addr, addressOf(path));
  const std::string temporary = fmt::format("{}.{}.tmp", path, ::getpid());
  ZBUF_ASSIGN_OR_RETURN(auto tmpAddr, addressOf(temporary));
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (std::filesystem::exists(path, ec)) {
    if (!isStale(addr)) {
      return Error(EADDRINUSE, "bind", fmt::format("{}: another zbufd is running there", path));
    }
    ::unlink(path.c_str());  // left by a daemon that died
  }
  const int s = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) {
    return Error(errno, "socket", "AF_UNIX SOCK_SEQPACKET");
  }
  UniqueFd sock = UniqueFd::adopt(s);
  ::unlink(temporary.c_str());
  if (::bind(s, reinterpret_cast<const sockaddr*>(&tmpAddr), sizeof tmpAddr) != 0) {  // NOLINT
    return Error(errno, "bind", temporary);
  }
  auto undo = [&](const char* op, const std::string& what) {
    const int e = errno;
    ::unlink(temporary.c_str());
    return Error(e, op, what);
  };
  if (group && ::chown(temporary.c_str(), static_cast<uid_t>(-1), *group) != 0) {
    return undo("chown", fmt::format("{} to group {}", path, *group));
  }
  if (::chmod(temporary.c_str(), mode) != 0) {
    return undo("chmod", path);
  }
  if (::listen(s, 64) != 0) {
    return undo("listen", path);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    return undo("rename", path);
  }
  return sock;
}

// A process's comm, as ps shows it (the line of /proc/<pid>/comm); empty once it has gone.
std::string processName(pid_t pid) {
  std::ifstream file(fmt::format("/proc/{}/comm", pid));
  std::string line;
  std::getline(file, line);
  return line;
}

}  // namespace

Result<std::unique_ptr<Server>> Server::create(ServerConfig config) {
  if (!config.context) {
    return Error(EINVAL, "zbufd", "no context to serve");
  }
  UniqueFd listening = std::move(config.listening);
  std::string path = config.socketPath.empty() ? ipc::defaultSocketPath() : config.socketPath;
  const bool inherited = listening.isValid();
  if (!inherited) {
    ZBUF_ASSIGN_OR_RETURN(listening, listenOn(path, config.mode, config.group));
  }
  auto server = std::make_unique<Server>(Private{}, std::move(config), std::move(listening),
                                         std::move(path), !inherited);
  ZBUF_ASSIGN_OR_RETURN(server->stopEvent_, sys::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  // The clients file holds the accounts weakly: it answers ENODEV once the server is gone. A
  // context served a second time keeps the first server's file (EEXIST is not an error here).
  const std::weak_ptr<Clients> weak = server->clients_;
  (void)uapi::addSysfsAttr(*server->config_.context, kClientsPath,
                           {[weak, ctx = std::weak_ptr<uapi::Context>(
                                       server->config_.context)]() -> Result<std::string> {
                              auto clients = weak.lock();
                              auto context = ctx.lock();
                              if (!clients || !context) {
                                return Error(ENODEV, "zbufd", "the server has stopped");
                              }
                              return clientsText(*context, *clients);
                            },
                            {}});
  server->acceptor_ = std::thread([s = server.get()] { s->acceptLoop(); });
  log(LogDaemon, LogLevel::Info, "zbufd listening on {}", server->path_);
  return server;
}

Server::Server(Private /*key*/, ServerConfig config, UniqueFd listening, std::string path,
               bool ownsPath)
    : config_(std::move(config)),
      listening_(std::move(listening)),
      path_(std::move(path)),
      ownsPath_(ownsPath) {}

Server::~Server() {
  stop();
}

void Server::stop() {
  {
    const MutexLocker lock(mutex_);
    if (stopped_) {
      return;
    }
    stopped_ = true;
  }
  (void)sys::eventfdWrite(stopEvent_.get(), 1);
  if (acceptor_.joinable()) {
    acceptor_.join();
  }
  std::list<Connection> connections;
  {
    const MutexLocker lock(mutex_);
    connections.splice(connections.end(), connections_);
  }
  {
    // Under the lock: a connection that ends closes its socket under it too.
    const MutexLocker lock(mutex_);
    for (Connection& c : connections) {
      if (c.socket.isValid()) {
        ::shutdown(c.socket.get(), SHUT_RDWR);  // a receive returns 0; a poll sees POLLRDHUP
      }
    }
  }
  for (Connection& c : connections) {
    c.thread.join();
  }
  if (ownsPath_) {
    ::unlink(path_.c_str());
  }
  log(LogDaemon, LogLevel::Info, "zbufd on {} stopped", path_);
}

std::size_t Server::clients() const {
  const MutexLocker lock(mutex_);
  std::size_t n = 0;
  for (const Connection& c : connections_) {
    n += c.done.load() ? 0 : 1;
  }
  return n;
}

void Server::reapFinished() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->done.load()) {
      it->thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void Server::acceptLoop() {
  sys::setThreadName("zbufd-accept");
  for (;;) {
    std::array<pollfd, 2> fds{{{listening_.get(), POLLIN, 0}, {stopEvent_.get(), POLLIN, 0}}};
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      log(LogDaemon, LogLevel::Error, "poll: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) {
      return;
    }
    const int s = ::accept4(listening_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (s < 0) {
      continue;  // ECONNABORTED, EMFILE ...: the next one may do
    }
    UniqueFd sock = UniqueFd::adopt(s);
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      log(LogDaemon, LogLevel::Warn, "SO_PEERCRED: {}: connection refused", std::strerror(errno));
      continue;
    }
    const bool admitted =
        cred.uid == 0 || cred.uid == ::geteuid() || (config_.group && cred.gid == *config_.group);
    log(LogDaemon, admitted ? LogLevel::Info : LogLevel::Warn, "client pid {} uid {} gid {} {}",
        cred.pid, cred.uid, cred.gid,
        admitted ? "connected" : "refused: neither root, the daemon's user nor its group");
    if (!admitted) {
      continue;
    }
    std::string comm = processName(cred.pid);  // read before the lock: a file read
    const MutexLocker lock(mutex_);
    reapFinished();  // first: a finished connection's account reference goes with it
    std::shared_ptr<ClientAccount> account;
    {
      const MutexLocker clientsLock(clients_->mutex);
      // Accounts nobody uses any more (no connection, nothing held) go; the peer's is made anew.
      std::erase_if(clients_->accounts, [&](const auto& a) {
        return a.second.use_count() == 1 && a.second->usage(*config_.context).files == 0;
      });
      auto& slot = clients_->accounts[cred.pid];
      if (!slot) {
        slot = std::make_shared<ClientAccount>(config_.limits);
      }
      account = slot;
    }
    Connection& c = connections_.emplace_back();
    c.socket = std::move(sock);
    c.account = account;
    c.comm = std::move(comm);
    c.uid = cred.uid;
    c.thread = std::thread([this, &c] { serve(c); });
    accepted_.fetch_add(1);
  }
}

void Server::serve(Connection& c) {
  sys::setThreadName("zbufd-client");
  uapi::Context::setCallerName(c.comm);  // what sw_sync names a client's timelines after
  uapi::Context::setCallerUid(c.uid);    // whose the calls are (the virtio host's policy)
  const int s = c.socket.get();
  for (;;) {
    auto request = ipc::receiveMessage(s);
    if (!request.ok()) {
      if (request.code() != ECONNRESET) {
        // A header that cannot be trusted: the connection ends (docs/daemon.md).
        log(LogDaemon, LogLevel::Warn, "closing a connection: {}", request.error().describe());
      }
      break;
    }
    Reply reply;
    if (const int refused = c.account->admit(*config_.context, *request); refused != 0) {
      reply.body.error = refused;
      const std::string text = refused == EMFILE ? "zbufd: the client holds as many files as it may"
                                                 : "zbufd: the client's buffers are at their limit";
      reply.payload.assign(
          reinterpret_cast<const std::byte*>(text.data()),                 // NOLINT: text
          reinterpret_cast<const std::byte*>(text.data() + text.size()));  // NOLINT
    } else {
      reply = dispatch(*config_.context, *request, s);
      c.account->charge(*config_.context, reply);
    }
    request->fds.clear();  // the client's descriptions: the daemon's copies go now
    ipc::BodyWriter body;
    body.put(reply.body);
    body.putBytes(reply.payload);
    std::vector<int> fds;
    fds.reserve(reply.fds.size());
    for (const UniqueFd& fd : reply.fds) {
      fds.push_back(fd.get());
    }
    if (!ipc::sendMessage(s, static_cast<ipc::Opcode>(request->header.opcode),
                          request->header.sequence, body.bytes(), fds)
             .ok()) {
      break;
    }
  }
  // The socket goes now, not at the next accept: a client that has gone leaves nothing open.
  const MutexLocker lock(mutex_);
  c.socket.reset();
  c.done.store(true);
}

ClientUsage Server::usage(pid_t pid) {
  std::shared_ptr<ClientAccount> account;
  {
    const MutexLocker lock(clients_->mutex);
    auto it = clients_->accounts.find(pid);
    if (it == clients_->accounts.end()) {
      return {};
    }
    account = it->second;
  }
  return account->usage(*config_.context);
}

std::string Server::clientsText(uapi::Context& context, Clients& clients) {
  std::vector<std::pair<pid_t, std::shared_ptr<ClientAccount>>> accounts;
  {
    const MutexLocker lock(clients.mutex);
    accounts.assign(clients.accounts.begin(), clients.accounts.end());
  }
  std::string out = "pid\tcomm\tfiles\tbuffers\tbytes\tbufinfo inodes\n";
  for (const auto& [pid, account] : accounts) {
    const ClientUsage u = account->usage(context);
    const std::string comm = processName(pid);
    const std::string_view shown = comm.empty() ? std::string_view("?") : comm;  // "?": gone
    out += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\n", pid, shown, u.files, u.buffers, u.bytes,
                       fmt::join(u.bufferInodes, " "));
  }
  return out;
}

}  // namespace zbuf::daemon
