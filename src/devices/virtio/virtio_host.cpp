// The virtio host's UUID registry and its registration worker (virtio_host.h).
#include "zbuf/devices/virtio/virtio_host.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

namespace zbuf::virtio {

struct VirtioHost::Private {};

VirtioHost::VirtioHost(Private /*key*/, VirtioHostConfig config) : config_(config) {}

std::shared_ptr<VirtioHost> VirtioHost::create(VirtioHostConfig config) {
  auto host = std::make_shared<VirtioHost>(Private{}, config);
  host->worker_ = HardwareThread("virtio-host", [h = host.get()] { h->run(); });
  return host;
}

VirtioHost::~VirtioHost() {
  {
    const MutexLocker lock(mutex_);
    stopping_ = true;
  }
  changed_.notifyAll();
  worker_.join();
}

void VirtioHost::requestRegistration(const Uuid& uuid, const BufferPtr& buffer, uid_t owner,
                                     Completion done) {
  const auto due = std::chrono::steady_clock::now() + config_.registrationLatency;
  {
    const MutexLocker lock(mutex_);
    if (!stopping_) {
      Request request{.due = due, .uuid = uuid, .inode = buffer->inode(), .done = std::move(done)};
      auto [it, inserted] = entries_.try_emplace(uuid);
      if (inserted) {
        it->second = Entry{.state = State::Pending,
                           .buffer = buffer,
                           .inode = buffer->inode(),
                           .owner = owner,
                           .order = nextOrder_++};
      } else {
        request.duplicate = true;  // the host refuses a UUID it already has
      }
      requests_.push_back(std::move(request));
      changed_.notifyAll();
      return;
    }
  }
  done(ESHUTDOWN);
}

void VirtioHost::run() {
  MutexLocker lock(mutex_);
  for (;;) {
    if (requests_.empty()) {
      if (stopping_) {
        return;
      }
      changed_.wait(lock);
      continue;
    }
    Request& next = requests_.front();
    if (!stopping_ && std::chrono::steady_clock::now() < next.due) {
      (void)changed_.waitUntil(lock, next.due);
      continue;
    }
    Request request = std::move(next);
    requests_.pop_front();
    int error = 0;
    if (stopping_) {
      error = ESHUTDOWN;
      if (auto it = entries_.find(request.uuid);
          !request.duplicate && it != entries_.end() && it->second.inode == request.inode) {
        entries_.erase(it);
      }
    } else if (request.duplicate) {
      error = EEXIST;
      ++stats_.duplicates;
    } else if (auto it = entries_.find(request.uuid);
               it != entries_.end() && it->second.inode == request.inode) {
      it->second.state = State::Registered;
      ++stats_.registered;
    } else {
      error = ENOENT;  // released while the command was in flight: it registered nothing
      ++stats_.orphaned;
    }
    lock.unlock();
    changed_.notifyAll();
    if (request.done) {
      request.done(error);
    }
    lock.lock();
  }
}

Result<BufferPtr> VirtioHost::resolve(const Uuid& uuid, bool nonBlocking, uid_t requester) {
  constexpr const char* kOp = "virtio_host_resolve";
  MutexLocker lock(mutex_);
  for (;;) {
    auto it = entries_.find(uuid);
    if (it == entries_.end()) {
      ++stats_.unknown;
      return Error(ENOENT, kOp,
                   fmt::format("UUID {} is not registered (never, or its buffer was released)",
                               toString(uuid)));
    }
    Entry& entry = it->second;
    if (requester != 0 && requester != entry.owner) {
      ++stats_.refused;
      return Error(EACCES, kOp,
                   fmt::format("UUID {} belongs to uid {}; uid {} may not resolve it",
                               toString(uuid), entry.owner, requester));
    }
    if (entry.state == State::Registered) {
      BufferPtr buffer = entry.buffer.lock();
      if (!buffer) {  // its release is under way: unregister() will follow
        ++stats_.unknown;
        return Error(ENOENT, kOp,
                     fmt::format("UUID {}: the buffer is being released", toString(uuid)));
      }
      ++stats_.resolved;
      return buffer;
    }
    if (nonBlocking) {
      return Error(EAGAIN, kOp,
                   fmt::format("UUID {} is still being registered with the host", toString(uuid)));
    }
    if (stopping_) {
      return Error(ESHUTDOWN, kOp, "the virtio host is shutting down");
    }
    changed_.wait(lock);
  }
}

void VirtioHost::unregister(const Uuid& uuid, std::uint64_t inode) {
  {
    const MutexLocker lock(mutex_);
    auto it = entries_.find(uuid);
    if (it == entries_.end() || it->second.inode != inode) {
      return;  // a duplicate's release: the entry is another buffer's
    }
    entries_.erase(it);
  }
  changed_.notifyAll();
}

VirtioHostStats VirtioHost::stats() const {
  const MutexLocker lock(mutex_);
  VirtioHostStats s = stats_;
  s.entries = entries_.size();
  s.pending = 0;
  for (const auto& [uuid, entry] : entries_) {
    s.pending += entry.state == State::Pending ? 1 : 0;
  }
  return s;
}

std::string VirtioHost::describe() const {
  struct Line {
    std::uint64_t order;
    std::string text;
  };
  std::vector<Line> lines;
  {
    const MutexLocker lock(mutex_);
    for (const auto& [uuid, entry] : entries_) {
      const BufferPtr buffer = entry.buffer.lock();
      lines.push_back(
          {entry.order, fmt::format("{} {} {} {}\n", toString(uuid),
                                    entry.state == State::Pending ? "pending" : "registered",
                                    entry.owner, buffer ? buffer->inode() : 0)});
    }
  }
  std::ranges::sort(lines, {}, &Line::order);
  std::string out;
  for (const Line& l : lines) {
    out += l.text;
  }
  return out;
}

}  // namespace zbuf::virtio
