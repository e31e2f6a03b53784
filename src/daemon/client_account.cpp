// ClientAccount: per-client charging and limits (daemon/client_account.h).
#include "zbuf/daemon/client_account.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <utility>

#include "zbuf/base/sys.h"
#include "zbuf/core/buffer.h"
#include "zbuf/ipc/ioctl_layout.h"
#include "zbuf/uapi/abi.h"

namespace zbuf::daemon {
namespace {

// What a request would make: files, and of them buffers and their bytes.
struct Asked {
  std::size_t files = 0;
  std::size_t buffers = 0;
  std::uint64_t bytes = 0;
};

// 0 for a length that page-aligns past 2^64: the heap refuses it itself (EINVAL, its errno).
std::uint64_t pageAligned(std::uint64_t n) {
  const std::uint64_t page = sys::pageSize();
  return n > ~std::uint64_t{0} - (page - 1) ? 0 : (n + page - 1) / page * page;
}

template <typename T>
bool read(const std::vector<std::byte>& body, std::size_t offset, T& out) {
  if (body.size() < offset + sizeof(T)) {
    return false;
  }
  std::memcpy(&out, body.data() + offset, sizeof(T));
  return true;
}

Asked asked(const ipc::Message& m) {
  Asked a;
  const auto op = static_cast<ipc::Opcode>(m.header.opcode);
  if (op == ipc::Opcode::Open) {
    a.files = 1;
    return a;
  }
  ipc::IoctlRequest req;
  if (op != ipc::Opcode::Ioctl || !read(m.body, 0, req)) {
    return a;
  }
  const std::size_t arg = sizeof req;
  const ipc::IoctlLayout l = ipc::layoutOf(req.request);
  for (std::uint8_t i = 0; i < l.fdCount; ++i) {
    a.files += l.fds.at(i).direction == ipc::FdDirection::Out ? 1 : 0;
  }
  a.files += l.returnsFd ? 1 : 0;
  const auto cmd = static_cast<unsigned>(req.request);
  if (cmd == static_cast<unsigned>(uapi::kDmaHeapIoctlAlloc)) {
    std::uint64_t len = 0;
    if (read(m.body, arg, len)) {
      a.buffers = 1;
      a.bytes = pageAligned(len);
    }
  } else if (cmd == static_cast<unsigned>(uapi::kUdmabufCreate)) {
    uapi::UdmabufCreate c{};
    if (read(m.body, arg, c)) {
      a.buffers = 1;
      a.bytes = c.size;
    }
  } else if (cmd == static_cast<unsigned>(uapi::kUdmabufCreateList)) {
    uapi::UdmabufCreateList head{};
    if (read(m.body, arg, head)) {
      a.buffers = 1;
      for (std::uint32_t i = 0; i < head.count; ++i) {
        uapi::UdmabufCreateItem item{};
        if (!read(m.body, arg + sizeof head + i * sizeof item, item)) {
          break;
        }
        a.bytes = item.size > ~std::uint64_t{0} - a.bytes ? ~std::uint64_t{0} : a.bytes + item.size;
      }
    }
  }
  return a;
}

}  // namespace

ClientUsage ClientAccount::pruneLocked(uapi::Context& context) {
  std::set<std::pair<std::uint64_t, std::uint64_t>> live;
  for (const uapi::FileInfo& f : context.files().list()) {
    live.emplace(f.device, f.inode);
  }
  std::erase_if(held_, [&](const Held& h) { return !live.contains({h.device, h.inode}); });
  ClientUsage u;
  for (const Held& h : held_) {
    ++u.files;
    u.buffers += h.buffer ? 1 : 0;
    u.bytes += h.bytes;
    if (h.buffer) {
      u.bufferInodes.push_back(h.bufinfoInode);
    }
  }
  return u;
}

ClientUsage ClientAccount::usage(uapi::Context& context) {
  const MutexLocker lock(mutex_);
  return pruneLocked(context);
}

int ClientAccount::admit(uapi::Context& context, const ipc::Message& request) {
  const Asked a = asked(request);
  if (a.files == 0 && a.buffers == 0) {
    return 0;
  }
  const MutexLocker lock(mutex_);
  const ClientUsage u = pruneLocked(context);
  if (u.files + a.files > limits_.files) {
    return EMFILE;
  }
  if (u.buffers + a.buffers > limits_.buffers || a.bytes > limits_.bytes ||
      u.bytes > limits_.bytes - a.bytes) {
    return ENOMEM;
  }
  return 0;
}

void ClientAccount::charge(uapi::Context& context, const Reply& reply) {
  if (reply.fds.empty()) {
    return;
  }
  const MutexLocker lock(mutex_);
  for (const UniqueFd& fd : reply.fds) {
    auto st = context.fstat(fd.get());
    if (!st.ok()) {
      continue;
    }
    auto buffer = context.bufferFromFd(fd.get());
    const bool known = std::any_of(held_.begin(), held_.end(), [&](const Held& h) {
      return h.device == st->device && h.inode == st->inode;
    });
    if (!known) {  // a file handed out twice (a second GET_FD of a file) counts once
      held_.push_back(Held{st->device, st->inode, buffer.ok() ? st->size : 0, buffer.ok(),
                           buffer.ok() ? (*buffer)->inode() : 0});
    }
  }
}

}  // namespace zbuf::daemon
