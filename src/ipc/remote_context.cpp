// The client side of each fd-level call: its request, its fds, and what the reply puts back
// into the caller's argument (docs/daemon.md).
#include "zbuf/ipc/remote_context.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "zbuf/ipc/ioctl_layout.h"
#include "zbuf/ipc/socket_path.h"
#include "zbuf/uapi/abi.h"

namespace zbuf::ipc {

struct RemoteContext::Private {};

namespace {

bool isOpen(int fd) {
  return fd >= 0 && ::fcntl(fd, F_GETFD) >= 0;
}

Error notOpen(const char* op, int fd) {
  return Error(EBADF, op, fmt::format("fd {} is not open", fd));
}

template <typename T>
std::span<const std::byte> bytesOf(const T& v) {
  return std::as_bytes(std::span(&v, 1));
}

std::int32_t loadInt(const std::byte* p) {
  std::int32_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}
void storeInt(std::byte* p, std::int32_t v) {
  std::memcpy(p, &v, sizeof v);
}

// An fd of the caller's in an argument field: sent along, the field carrying its index.
void sendFd(std::byte* field, std::vector<int>& fds) {
  const std::int32_t fd = loadInt(field);
  if (isOpen(fd)) {
    storeInt(field, static_cast<std::int32_t>(fds.size()));
    fds.push_back(fd);
  } else {
    storeInt(field, static_cast<std::int32_t>(kNoFd));  // the daemon sees -1: EBADF, as here
  }
}

}  // namespace

Result<std::shared_ptr<RemoteContext>> RemoteContext::connect(std::string path) {
  if (path.empty()) {
    path = defaultSocketPath();
  }
  auto ctx = std::make_shared<RemoteContext>(Private{}, std::move(path));
  ZBUF_ASSIGN_OR_RETURN(auto answer, ctx->call(Opcode::Ping, {}, {}));
  if (answer.body.result != kVersion) {
    return Error(
        EPROTO, "zbufd connect",
        fmt::format("the daemon speaks protocol {}, this client {}", answer.body.result, kVersion));
  }
  return ctx;
}

RemoteContext::RemoteContext(Private /*key*/, std::string path) : path_(std::move(path)) {}

Result<UniqueFd> RemoteContext::connectOne() const {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) {
    return Error(ENAMETOOLONG, "zbufd connect", path_);
  }
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  const int s = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) {
    return Error(errno, "socket");
  }
  UniqueFd sock = UniqueFd::adopt(s);
  if (::connect(s, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {  // NOLINT
    return Error(errno, "zbufd connect", fmt::format("{}: is zbufd running?", path_));
  }
  return sock;
}

Result<RemoteContext::Answer> RemoteContext::call(Opcode opcode, std::span<const std::byte> body,
                                                  std::span<const int> fds) {
  UniqueFd conn;
  std::uint64_t seq = 0;
  {
    const MutexLocker lock(mutex_);
    seq = ++sequence_;
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!conn.isValid()) {
    ZBUF_ASSIGN_OR_RETURN(conn, connectOne());
  }
  ZBUF_TRY(sendMessage(conn.get(), opcode, seq, body, fds));
  ZBUF_ASSIGN_OR_RETURN(auto reply, receiveMessage(conn.get()));
  if (reply.header.sequence != seq || reply.header.opcode != static_cast<std::uint16_t>(opcode)) {
    return Error(EPROTO, "zbufd", "a reply to another request");
  }
  BodyReader in(reply.body);
  Answer a;
  ZBUF_ASSIGN_OR_RETURN(a.body, in.take<ReplyBody>());
  auto rest = in.takeBytes(in.remaining()).value();
  a.payload.assign(rest.begin(), rest.end());
  a.fds = std::move(reply.fds);
  {
    const MutexLocker lock(mutex_);
    idle_.push_back(std::move(conn));
  }
  return a;
}

namespace {
// The call's own failure, with the daemon's description.
Error callError(const char* op, const std::vector<std::byte>& payload, int code) {
  return Error(code, op,
               std::string(reinterpret_cast<const char*>(payload.data()),  // NOLINT: text
                           payload.size()));
}
}  // namespace

Result<RemoteContext::Answer> RemoteContext::callOn(const char* op, int fd, Opcode opcode,
                                                    std::span<const std::byte> body) {
  if (!isOpen(fd)) {
    return notOpen(op, fd);
  }
  const std::array<int, 1> fds{fd};
  ZBUF_ASSIGN_OR_RETURN(auto a, call(opcode, body, fds));
  if (a.body.error != 0 && !foreign(a)) {
    return callError(op, a.payload, a.body.error);
  }
  return a;
}

bool RemoteContext::foreign(const Answer& a) noexcept {
  return a.body.error == EBADF && (a.body.flags & kReplyForeignFd) != 0;
}

Result<UniqueFd> RemoteContext::open(std::string_view path, int flags) {
  BodyWriter body;
  body.put(OpenRequest{flags, static_cast<std::uint32_t>(path.size())});
  body.putBytes(std::as_bytes(std::span(path.data(), path.size())));
  ZBUF_ASSIGN_OR_RETURN(auto a, call(Opcode::Open, body.bytes(), {}));
  if (a.body.error != 0) {
    return callError("open", a.payload, a.body.error);
  }
  if (a.fds.size() != 1) {
    return Error(EPROTO, "open", "the daemon's reply carries no fd");
  }
  return std::move(a.fds[0]);
}

Result<long> RemoteContext::ioctl(int fd, unsigned long request, void* arg) {
  const IoctlLayout l = layoutOf(request);
  if (l.kind == ArgKind::Local) {
    return sys::ioctl(fd, request, arg);
  }
  if (!isOpen(fd)) {
    return notOpen("ioctl", fd);
  }
  IoctlRequest req;
  req.request = request;
  std::vector<int> fds{fd};
  std::vector<std::byte> argBytes;
  auto* user = static_cast<std::byte*>(arg);
  if (l.kind == ArgKind::Value) {
    req.value = reinterpret_cast<std::uintptr_t>(arg);  // NOLINT: the argument is a value
  } else if (arg == nullptr) {
    req.flags = kIoctlArgNull;
  } else if (l.kind == ArgKind::String) {
    const auto* name = static_cast<const char*>(arg);
    const std::size_t n = ::strnlen(name, uapi::kDmaBufNameLen + 1);
    argBytes.assign(user, user + std::min(n + 1, uapi::kDmaBufNameLen + 1));
  } else if (l.kind == ArgKind::UdmabufList) {
    uapi::UdmabufCreateList head{};
    std::memcpy(&head, arg, sizeof head);
    if (head.count > kMaxUdmabufListItems) {
      return Error(EINVAL, "udmabuf_ioctl_create_list",
                   fmt::format("{} items: zbufd takes at most {} in one list", head.count,
                               kMaxUdmabufListItems));
    }
    const std::size_t size = sizeof head + head.count * sizeof(uapi::UdmabufCreateItem);
    argBytes.assign(user, user + size);
    for (std::uint32_t i = 0; i < head.count; ++i) {
      sendFd(argBytes.data() + sizeof head + i * sizeof(uapi::UdmabufCreateItem), fds);
    }
  } else {
    argBytes.assign(user, user + l.size);
    for (std::uint8_t i = 0; i < l.fdCount; ++i) {
      if (l.fds.at(i).direction == FdDirection::In) {
        sendFd(argBytes.data() + l.fds.at(i).offset, fds);
      }
    }
  }
  req.argLength = static_cast<std::uint32_t>(argBytes.size());
  BodyWriter body;
  body.put(req);
  body.putBytes(argBytes);
  ZBUF_ASSIGN_OR_RETURN(auto a, call(Opcode::Ioctl, body.bytes(), fds));
  if (foreign(a)) {
    return sys::ioctl(fd, request, arg);  // not a zbuf file: the real ioctl, made here
  }
  if (a.body.error != 0) {
    return callError("ioctl", a.payload, a.body.error);
  }
  auto takeFd = [&](std::int64_t index) -> Result<int> {
    if (index < 0 || static_cast<std::size_t>(index) >= a.fds.size()) {
      return Error(EPROTO, "ioctl", "the daemon's reply names an fd it did not send");
    }
    return a.fds[static_cast<std::size_t>(index)].release();
  };
  if (l.returnsFd) {
    ZBUF_ASSIGN_OR_RETURN(int made, takeFd(a.body.result));
    return static_cast<long>(made);
  }
  if (l.kind == ArgKind::SyncFileInfo) {
    uapi::SyncFileInfo info{};
    if (a.payload.size() < sizeof info) {
      return Error(EPROTO, "ioctl", "a short SYNC_IOC_FILE_INFO reply");
    }
    std::memcpy(&info, a.payload.data(), sizeof info);
    const std::size_t fences = (a.payload.size() - sizeof info) / sizeof(uapi::SyncFenceInfo);
    if (fences > 0 && info.syncFenceInfo != 0) {
      std::memcpy(reinterpret_cast<void*>(info.syncFenceInfo),  // NOLINT: the caller's array
                  a.payload.data() + sizeof info, fences * sizeof(uapi::SyncFenceInfo));
    }
    std::memcpy(arg, &info, sizeof info);
    return static_cast<long>(a.body.result);
  }
  if (l.kind == ArgKind::Struct && l.copyOut) {
    if (a.payload.size() != l.size) {
      return Error(EPROTO, "ioctl", "the reply's argument has the wrong size");
    }
    std::vector<std::byte> original(user, user + l.size);
    if (l.size != 0) {
      std::memcpy(user, a.payload.data(), l.size);
    }
    for (std::uint8_t i = 0; i < l.fdCount; ++i) {
      std::byte* field = user + l.fds.at(i).offset;
      if (l.fds.at(i).direction == FdDirection::In) {
        std::memcpy(field, original.data() + l.fds.at(i).offset, sizeof(std::int32_t));
      } else {
        ZBUF_ASSIGN_OR_RETURN(int made, takeFd(loadInt(field)));
        storeInt(field, made);
      }
    }
  }
  return static_cast<long>(a.body.result);
}

Result<std::size_t> RemoteContext::read(int fd, std::span<std::byte> out) {
  ZBUF_ASSIGN_OR_RETURN(auto a, callOn("read", fd, Opcode::Read,
                                       bytesOf(CountRequest{std::min(out.size(), kMaxIoBytes)})));
  if (foreign(a)) {
    return sys::read(fd, out);
  }
  const std::size_t n = std::min(a.payload.size(), out.size());
  if (n != 0) {  // an end of file has no payload (and memcpy no null pointer, even for 0 bytes)
    std::memcpy(out.data(), a.payload.data(), n);
  }
  return n;
}

Result<std::size_t> RemoteContext::write(int fd, std::span<const std::byte> in) {
  const std::span<const std::byte> whole = in;
  in = in.first(std::min(in.size(), kMaxIoBytes));
  BodyWriter body;
  body.put(CountRequest{in.size()});
  body.putBytes(in);
  ZBUF_ASSIGN_OR_RETURN(auto a, callOn("write", fd, Opcode::Write, body.bytes()));
  if (foreign(a)) {
    return sys::write(fd, whole);
  }
  return static_cast<std::size_t>(a.body.result);
}

Result<int> RemoteContext::poll(std::span<struct pollfd> fds, int timeoutMs) {
  if (fds.size() > kMaxFds) {
    return Error(EINVAL, "poll",
                 fmt::format("{} fds: zbufd polls at most {}", fds.size(), kMaxFds));
  }
  BodyWriter body;
  body.put(PollRequest{timeoutMs, static_cast<std::uint32_t>(fds.size())});
  std::vector<int> sent;
  int invalid = 0;
  for (struct pollfd& p : fds) {
    p.revents = 0;
    PollEntry e{kNoFd, p.events, 0};
    if (p.fd >= 0 && !isOpen(p.fd)) {
      p.revents = POLLNVAL;  // as poll(2): reported, and the call does not wait
      ++invalid;
    } else if (p.fd >= 0) {
      e.fdIndex = static_cast<std::uint32_t>(sent.size());
      sent.push_back(p.fd);
    }
    body.put(e);
  }
  if (invalid > 0) {
    timeoutMs = 0;
    BodyWriter again;  // the same entries, without waiting
    again.put(PollRequest{0, static_cast<std::uint32_t>(fds.size())});
    again.putBytes(body.bytes().subspan(sizeof(PollRequest)));
    body = std::move(again);
  }
  ZBUF_ASSIGN_OR_RETURN(auto a, call(Opcode::Poll, body.bytes(), sent));
  if (a.body.error != 0) {
    return callError("poll", a.payload, a.body.error);
  }
  if (a.payload.size() != fds.size() * sizeof(PollEntry)) {
    return Error(EPROTO, "poll", "a reply with the wrong number of entries");
  }
  int ready = invalid;
  for (std::size_t i = 0; i < fds.size(); ++i) {
    PollEntry e{};
    std::memcpy(&e, a.payload.data() + i * sizeof e, sizeof e);
    if (fds[i].revents == 0 && e.revents != 0) {
      fds[i].revents = e.revents;
      ++ready;
    }
  }
  return ready;
}

Result<sys::Mapping> RemoteContext::mmap(int fd, std::size_t length, int prot, int flags,
                                         std::uint64_t offset) {
  // The daemon checks as the file's mmap would; a file that is not zbuf's is the real mmap's.
  ZBUF_TRY(callOn("mmap", fd, Opcode::Mmap, bytesOf(MmapRequest{length, offset, prot, flags})));
  return sys::mmap(length, prot, flags, fd, static_cast<off_t>(offset));
}

Result<std::int64_t> RemoteContext::lseek(int fd, std::int64_t offset, int whence) {
  ZBUF_ASSIGN_OR_RETURN(
      auto a, callOn("lseek", fd, Opcode::Lseek, bytesOf(LseekRequest{offset, whence, 0})));
  if (foreign(a)) {
    const off_t r = ::lseek(fd, offset, whence);
    if (r < 0) {
      return Error(errno, "lseek");
    }
    return static_cast<std::int64_t>(r);
  }
  return a.body.result;
}

Result<uapi::FileStat> RemoteContext::fstat(int fd) {
  ZBUF_ASSIGN_OR_RETURN(auto a, callOn("fstat", fd, Opcode::Fstat, {}));
  StatReply s{};
  if (a.payload.size() != sizeof s) {
    return Error(EPROTO, "fstat", "a reply of the wrong size");
  }
  std::memcpy(&s, a.payload.data(), sizeof s);
  return uapi::FileStat{s.mode, s.size, s.inode, s.device, s.blockSize};
}

Result<std::string> RemoteContext::fdinfo(int fd) {
  ZBUF_ASSIGN_OR_RETURN(auto a, callOn("fdinfo", fd, Opcode::Fdinfo, {}));
  std::string text(reinterpret_cast<const char*>(a.payload.data()), a.payload.size());  // NOLINT
  // O_CLOEXEC in "flags:" is the fd's own (FD_CLOEXEC), not the daemon's copy's.
  const auto at = text.find("flags:\t");
  if (at != std::string::npos) {
    const auto start = at + 7;
    const auto end = text.find('\n', start);
    unsigned long flags = std::stoul(text.substr(start, end - start), nullptr, 8);
    const int fdFlags = ::fcntl(fd, F_GETFD);
    flags = (fdFlags >= 0 && (fdFlags & FD_CLOEXEC) != 0)
                ? (flags | O_CLOEXEC)
                : (flags & ~static_cast<unsigned long>(O_CLOEXEC));
    text.replace(start, end - start, fmt::format("0{:o}", flags));
  }
  return text;
}

Result<std::string> RemoteContext::fdPath(int fd) {
  ZBUF_ASSIGN_OR_RETURN(auto a, callOn("fdPath", fd, Opcode::FdPath, {}));
  return std::string(reinterpret_cast<const char*>(a.payload.data()), a.payload.size());  // NOLINT
}

Result<void> RemoteContext::close(int fd) {
  if (::close(fd) != 0) {
    return Error(errno == EBADF ? EBADF : errno, "close", fmt::format("fd {}", fd));
  }
  // The daemon reads the close now, so a last close is released before close() returns.
  ZBUF_TRY(call(Opcode::Reap, {}, {}));
  return {};
}

}  // namespace zbuf::ipc
