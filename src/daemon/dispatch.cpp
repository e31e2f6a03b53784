// Each opcode's decoding (sizes and fd indices checked first), the call on the Context, and
// the reply: docs/daemon.md describes the layouts.
#include "zbuf/daemon/dispatch.h"

#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

#include "zbuf/ipc/ioctl_layout.h"
#include "zbuf/uapi/abi.h"

namespace zbuf::daemon {
namespace {

using ipc::BodyReader;
using ipc::Message;
using ipc::Opcode;

using ipc::kIoctlArgNull;
constexpr std::size_t kMaxPath = 4096;

// An error reply carries the daemon's description of it ("op: message") as its payload.
Reply fail(const Error& e) {
  Reply r;
  r.body.error = e.code() == 0 ? EIO : e.code();
  const std::string text =
      e.message().empty() ? std::string(e.op()) : fmt::format("{}: {}", e.op(), e.message());
  r.payload.assign(reinterpret_cast<const std::byte*>(text.data()),  // NOLINT: text bytes
                   reinterpret_cast<const std::byte*>(text.data() + text.size()));  // NOLINT
  return r;
}
Reply fail(int code) {
  Reply r;
  r.body.error = code;
  return r;
}
Reply value(std::int64_t v) {
  Reply r;
  r.body.result = v;
  return r;
}
// The call's fd is not a zbuf file: the client makes the call itself (protocol.h).
Reply foreign() {
  Reply r = fail(Error(EBADF, "zbufd", "not a zbuf file: the client makes this call itself"));
  r.body.flags = ipc::kReplyForeignFd;
  return r;
}
template <typename T>
Reply fromResult(const Result<T>& res) {
  if (!res.ok()) {
    return fail(res.error());
  }
  return value(static_cast<std::int64_t>(*res));
}

void append(Reply& r, std::span<const std::byte> bytes) {
  r.payload.insert(r.payload.end(), bytes.begin(), bytes.end());
}

// The message's fd at `index`, or -1 for kNoFd; EINVAL outside the message.
Result<int> fdAt(const Message& m, std::uint32_t index) {
  if (index == ipc::kNoFd) {
    return -1;
  }
  if (index >= m.fds.size()) {
    return Error(EINVAL, "zbufd", fmt::format("fd index {} of {}", index, m.fds.size()));
  }
  return m.fds[index].get();
}

Result<int> target(const Message& m) {
  if (m.fds.empty()) {
    return Error(EINVAL, "zbufd", "the request names no fd");
  }
  return m.fds[0].get();
}

// The target of a call that acts on the file (ioctl, read, write, lseek, mmap): a zbuf file of
// this context, else the foreign-fd reply (protocol.h, kReplyForeignFd) and no call at all.
bool isZbufFile(uapi::Context& ctx, int fd) {
  auto file = ctx.lookup(fd);
  return file.ok() && *file != nullptr;
}

std::int32_t loadInt(const std::vector<std::byte>& arg, std::size_t offset) {
  std::int32_t v = 0;
  std::memcpy(&v, arg.data() + offset, sizeof v);
  return v;
}
void storeInt(std::vector<std::byte>& arg, std::size_t offset, std::int32_t v) {
  std::memcpy(arg.data() + offset, &v, sizeof v);
}

// Replaces each In fd field's index with the daemon's fd.
Result<void> translateIn(const Message& m, const ipc::IoctlLayout& l, std::vector<std::byte>& arg) {
  for (std::uint8_t i = 0; i < l.fdCount; ++i) {
    if (l.fds.at(i).direction != ipc::FdDirection::In) {
      continue;
    }
    const auto index = static_cast<std::uint32_t>(loadInt(arg, l.fds.at(i).offset));
    ZBUF_ASSIGN_OR_RETURN(int fd, fdAt(m, index));
    storeInt(arg, l.fds.at(i).offset, fd);
  }
  return {};
}

// Moves each Out fd the call made into the reply, leaving its index in the field.
void translateOut(const ipc::IoctlLayout& l, std::vector<std::byte>& arg, Reply& r) {
  for (std::uint8_t i = 0; i < l.fdCount; ++i) {
    if (l.fds.at(i).direction != ipc::FdDirection::Out) {
      continue;
    }
    const std::int32_t fd = loadInt(arg, l.fds.at(i).offset);
    if (fd < 0) {
      continue;
    }
    storeInt(arg, l.fds.at(i).offset, static_cast<std::int32_t>(r.fds.size()));
    r.fds.push_back(UniqueFd::adopt(fd));
  }
}

Reply withReturnedFd(Reply r, const Result<long>& res) {
  if (!res.ok()) {
    return fail(res.error());
  }
  r.body.result = static_cast<std::int64_t>(r.fds.size());
  r.fds.push_back(UniqueFd::adopt(static_cast<int>(*res)));
  return r;
}

Reply ioctlString(uapi::Context& ctx, int fd, const ipc::IoctlRequest& req, BodyReader& in) {
  if (req.argLength > uapi::kDmaBufNameLen + 1 || in.remaining() != req.argLength) {
    return fail(EINVAL);
  }
  if ((req.flags & kIoctlArgNull) != 0) {
    return fromResult(ctx.ioctl(fd, req.request, nullptr));
  }
  std::array<char, uapi::kDmaBufNameLen + 2> name{};  // always NUL-terminated
  auto bytes = in.takeBytes(req.argLength).value();
  if (!bytes.empty()) {
    std::memcpy(name.data(), bytes.data(), bytes.size());
  }
  return fromResult(ctx.ioctl(fd, req.request, name.data()));
}

Reply ioctlFileInfo(uapi::Context& ctx, int fd, const ipc::IoctlRequest& req,
                    std::vector<std::byte> arg) {
  uapi::SyncFileInfo info{};
  std::memcpy(&info, arg.data(), sizeof info);
  std::vector<uapi::SyncFenceInfo> fences;
  const std::uint64_t callerArray = info.syncFenceInfo;
  if (info.numFences > 0 && callerArray != 0) {
    // Bounded: a caller asking room for more gets at most this many (docs/daemon.md).
    info.numFences = std::min(info.numFences, ipc::kMaxFileInfoFences);
    fences.resize(info.numFences);
    info.syncFenceInfo = reinterpret_cast<std::uintptr_t>(fences.data());  // NOLINT: user ptr
  }
  auto res = ctx.ioctl(fd, req.request, &info);
  if (!res.ok()) {
    return fail(res.error());
  }
  info.syncFenceInfo = callerArray;
  Reply r = value(*res);
  append(r, std::as_bytes(std::span(&info, 1)));
  if (!fences.empty()) {
    const std::size_t n = std::min<std::size_t>(info.numFences, fences.size());
    append(r, std::as_bytes(std::span(fences.data(), n)));
  }
  return r;
}

Reply ioctlUdmabufList(uapi::Context& ctx, const Message& m, int fd, const ipc::IoctlRequest& req,
                       std::vector<std::byte> arg) {
  uapi::UdmabufCreateList head{};
  if (arg.size() < sizeof head) {
    return fail(EINVAL);
  }
  std::memcpy(&head, arg.data(), sizeof head);
  if (head.count > ipc::kMaxUdmabufListItems ||
      arg.size() != sizeof head + head.count * sizeof(uapi::UdmabufCreateItem)) {
    return fail(EINVAL);
  }
  for (std::uint32_t i = 0; i < head.count; ++i) {
    const std::size_t at = sizeof head + i * sizeof(uapi::UdmabufCreateItem);
    auto memfd = fdAt(m, static_cast<std::uint32_t>(loadInt(arg, at)));
    if (!memfd.ok()) {
      return fail(memfd.error());
    }
    storeInt(arg, at, *memfd);
  }
  return withReturnedFd(Reply{}, ctx.ioctl(fd, req.request, arg.data()));
}

Reply doIoctl(uapi::Context& ctx, const Message& m, BodyReader& in) {
  auto req = in.take<ipc::IoctlRequest>();
  if (!req.ok()) {
    return fail(req.error());
  }
  if ((req->flags & ~kIoctlArgNull) != 0) {
    return fail(EINVAL);
  }
  auto fd = target(m);
  if (!fd.ok()) {
    return fail(fd.error());
  }
  if (!isZbufFile(ctx, *fd)) {
    return foreign();
  }
  const ipc::IoctlLayout l = ipc::layoutOf(req->request);
  switch (l.kind) {
    case ipc::ArgKind::Local:
      return fail(EINVAL);  // FIONBIO, FIOCLEX ...: made by the client on its own fd
    case ipc::ArgKind::Value:
      if (req->argLength != 0 || in.remaining() != 0) {
        return fail(EINVAL);
      }
      // The argument is a value, not an address in this process.
      // NOLINTNEXTLINE(performance-no-int-to-ptr): the kernel's unsigned long arg
      return fromResult(ctx.ioctl(*fd, req->request, reinterpret_cast<void*>(req->value)));
    case ipc::ArgKind::String:
      return ioctlString(ctx, *fd, *req, in);
    default:
      break;
  }
  if ((req->flags & kIoctlArgNull) != 0) {
    if (req->argLength != 0 || in.remaining() != 0) {
      return fail(EINVAL);
    }
    return fromResult(ctx.ioctl(*fd, req->request, nullptr));  // EFAULT where the driver reads
  }
  const bool variable = l.kind == ipc::ArgKind::UdmabufList;
  if ((!variable && req->argLength != l.size) || in.remaining() != req->argLength) {
    return fail(EINVAL);
  }
  auto bytes = in.takeBytes(req->argLength).value();
  std::vector<std::byte> arg(bytes.begin(), bytes.end());
  if (l.kind == ipc::ArgKind::SyncFileInfo) {
    return ioctlFileInfo(ctx, *fd, *req, std::move(arg));
  }
  if (variable) {
    return ioctlUdmabufList(ctx, m, *fd, *req, std::move(arg));
  }
  if (auto t = translateIn(m, l, arg); !t.ok()) {
    return fail(t.error());
  }
  auto res = ctx.ioctl(*fd, req->request, arg.data());
  Reply r;
  if (l.returnsFd) {
    return withReturnedFd(std::move(r), res);
  }
  if (!res.ok()) {
    return fail(res.error());
  }
  r.body.result = *res;
  translateOut(l, arg, r);
  if (l.copyOut) {
    append(r, arg);
  }
  return r;
}

Reply doOpen(uapi::Context& ctx, const Message& m, BodyReader& in) {
  auto req = in.take<ipc::OpenRequest>();
  if (!req.ok()) {
    return fail(req.error());
  }
  if (!m.fds.empty() || req->pathLength > kMaxPath || in.remaining() != req->pathLength) {
    return fail(EINVAL);
  }
  auto bytes = in.takeBytes(req->pathLength).value();
  const std::string path(reinterpret_cast<const char*>(bytes.data()), bytes.size());  // NOLINT
  auto fd = ctx.open(path, req->flags);
  if (!fd.ok()) {
    return fail(fd.error());
  }
  Reply r;
  r.fds.push_back(std::move(*fd));
  return r;
}

Reply doRead(uapi::Context& ctx, const Message& m, BodyReader& in) {
  auto req = in.take<ipc::CountRequest>();
  auto fd = target(m);
  if (!req.ok() || !fd.ok() || in.remaining() != 0 || m.fds.size() != 1) {
    return fail(EINVAL);
  }
  if (!isZbufFile(ctx, *fd)) {
    return foreign();
  }
  std::vector<std::byte> buf(std::min<std::uint64_t>(req->count, ipc::kMaxIoBytes));
  auto n = ctx.read(*fd, buf);
  if (!n.ok()) {
    return fail(n.error());
  }
  Reply r = value(static_cast<std::int64_t>(*n));
  append(r, std::span(buf).first(*n));
  return r;
}

Reply doWrite(uapi::Context& ctx, const Message& m, BodyReader& in) {
  auto req = in.take<ipc::CountRequest>();
  auto fd = target(m);
  if (!req.ok() || !fd.ok() || in.remaining() != req->count || m.fds.size() != 1) {
    return fail(EINVAL);
  }
  if (!isZbufFile(ctx, *fd)) {
    return foreign();
  }
  return fromResult(ctx.write(*fd, in.takeBytes(req->count).value()));
}

Reply doPoll(uapi::Context& ctx, const Message& m, BodyReader& in, int connection) {
  auto req = in.take<ipc::PollRequest>();
  if (!req.ok() || req->count > ipc::kMaxFds ||
      in.remaining() != req->count * sizeof(ipc::PollEntry)) {
    return fail(EINVAL);
  }
  std::vector<ipc::PollEntry> entries(req->count);
  std::vector<struct pollfd> fds(req->count + (connection >= 0 ? 1 : 0));
  for (std::uint32_t i = 0; i < req->count; ++i) {
    entries[i] = in.take<ipc::PollEntry>().value();
    auto fd = fdAt(m, entries[i].fdIndex);
    if (!fd.ok() || entries[i].revents != 0) {
      return fail(EINVAL);
    }
    fds[i] = pollfd{*fd, entries[i].events, 0};
  }
  if (connection >= 0) {
    // A client that goes away (or a daemon shutting the connection down) ends the wait.
    fds.back() = pollfd{connection, POLLRDHUP, 0};
  }
  auto n = ctx.poll(fds, req->timeoutMs);
  if (!n.ok()) {
    return fail(n.error());
  }
  int ready = *n;
  if (connection >= 0 && fds.back().revents != 0) {
    --ready;
  }
  Reply r = value(ready);
  for (std::uint32_t i = 0; i < req->count; ++i) {
    entries[i].revents = fds[i].revents;
  }
  append(r, std::as_bytes(std::span(entries)));
  return r;
}

Reply doMmap(uapi::Context& ctx, const Message& m, BodyReader& in) {
  auto req = in.take<ipc::MmapRequest>();
  auto fd = target(m);
  if (!req.ok() || !fd.ok() || in.remaining() != 0) {
    return fail(EINVAL);
  }
  if (!isZbufFile(ctx, *fd)) {
    return foreign();
  }
  // Mapped and unmapped at once: the checks (and the errors) are the file's; the client maps
  // the same description itself.
  auto mapping = ctx.mmap(*fd, req->length, req->prot, req->flags, req->offset);
  return mapping.ok() ? value(0) : fail(mapping.error());
}

Reply doText(const Result<std::string>& text) {
  if (!text.ok()) {
    return fail(text.error());
  }
  Reply r;
  append(r, std::as_bytes(std::span(text->data(), text->size())));
  return r;
}

}  // namespace

Reply dispatch(uapi::Context& context, Message& request, int connection) {
  uapi::Context& ctx = context;
  Message& m = request;
  BodyReader in(m.body);
  const auto op = static_cast<Opcode>(m.header.opcode);
  switch (op) {
    case Opcode::Ping:
      return value(ipc::kVersion);
    case Opcode::Open:
      return doOpen(ctx, m, in);
    case Opcode::Ioctl:
      return doIoctl(ctx, m, in);
    case Opcode::Read:
      return doRead(ctx, m, in);
    case Opcode::Write:
      return doWrite(ctx, m, in);
    case Opcode::Poll:
      return doPoll(ctx, m, in, connection);
    case Opcode::Mmap:
      return doMmap(ctx, m, in);
    case Opcode::Reap:
      if (!m.fds.empty() || in.remaining() != 0) {
        return fail(EINVAL);
      }
      return value(static_cast<std::int64_t>(ctx.files().reap()));
    default:
      break;
  }
  // The calls on one fd with no body, or a small fixed one.
  auto fd = target(m);
  if (!fd.ok()) {
    return fail(op == Opcode::Lseek || op == Opcode::Fstat || op == Opcode::Fdinfo ||
                        op == Opcode::FdPath
                    ? EINVAL
                    : ENOTTY);
  }
  switch (op) {
    case Opcode::Lseek: {
      auto req = in.take<ipc::LseekRequest>();
      if (!req.ok() || req->reserved != 0 || in.remaining() != 0) {
        return fail(EINVAL);
      }
      if (!isZbufFile(ctx, *fd)) {
        return foreign();
      }
      return fromResult(ctx.lseek(*fd, req->offset, req->whence));
    }
    case Opcode::Fstat: {
      auto st = ctx.fstat(*fd);
      if (!st.ok()) {
        return fail(st.error());
      }
      ipc::StatReply s;
      s.size = st->size;
      s.inode = st->inode;
      s.device = st->device;
      s.blockSize = st->blockSize;
      s.mode = st->mode;
      Reply r;
      append(r, std::as_bytes(std::span(&s, 1)));
      return r;
    }
    case Opcode::Fdinfo:
      return doText(ctx.fdinfo(*fd));
    case Opcode::FdPath:
      return doText(ctx.fdPath(*fd));
    default:
      return fail(ENOTTY);
  }
}

}  // namespace zbuf::daemon
