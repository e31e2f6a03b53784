// The default file operations (the VFS's answers for empty slots), OpenFile's flag queries,
// and the poll machinery: PollTable (poll_table) and WaitQueue (wait_queue_head_t).
//
// How a poll sleeps: each PollTable owns an eventfd (one per thread, reused: a table belongs to
// one poll() call of that thread). wait(queue) links the table into the queue's list and
// waitFence(fence) adds a fence callback; both write the eventfd when they fire. waitFd(fd)
// just lists the fd. The poll() implementation sleeps in poll(2) on the eventfd and the listed
// fds. The destructor unlinks every registration first (the queue mutex, the fence lock), so
// nothing writes the eventfd after the table is gone and the next table of the thread starts
// from a drained eventfd.
#include "zbuf/uapi/file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <vector>

#include "zbuf/base/log.h"
#include "zbuf/base/mutex.h"
#include "zbuf/uapi/context.h"

namespace zbuf::uapi {

// --- OpenFile -----------------------------------------------------------------------------------

int OpenFile::flags() const {
  if (flags_ < 0) {
    auto fl = sys::getFileFlags(fd_);
    flags_ = fl.ok() ? *fl : 0;
  }
  return flags_;
}

bool OpenFile::nonBlocking() const {
  return (flags() & O_NONBLOCK) != 0;
}

// --- FileOperations defaults --------------------------------------------------------------------

Result<long> FileOperations::ioctl(const OpenFile& f, unsigned cmd, void* /*arg*/) const {
  return Error(ENOTTY, "ioctl",
               fmt::format("request {:#x} is not a {} ioctl (fd {})", cmd, name(), f.fd()));
}

Result<std::size_t> FileOperations::read(const OpenFile& f, std::span<std::byte> /*out*/,
                                         std::int64_t& /*pos*/) const {
  return Error(EINVAL, "read", fmt::format("a {} file has no read (fd {})", name(), f.fd()));
}

Result<std::size_t> FileOperations::write(const OpenFile& f, std::span<const std::byte> /*in*/,
                                          std::int64_t& /*pos*/) const {
  return Error(EINVAL, "write", fmt::format("a {} file has no write (fd {})", name(), f.fd()));
}

short FileOperations::poll(const OpenFile& /*f*/, short /*events*/, PollTable* /*table*/) const {
  return POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;  // DEFAULT_POLLMASK
}

Result<sys::Mapping> FileOperations::mmap(const OpenFile& f, std::size_t /*length*/, int /*prot*/,
                                          int /*flags*/, std::uint64_t /*offset*/) const {
  return Error(ENODEV, "mmap", fmt::format("a {} file cannot be mapped (fd {})", name(), f.fd()));
}

Result<std::int64_t> FileOperations::llseek(const OpenFile& f, std::int64_t /*offset*/,
                                            int /*whence*/, std::int64_t& /*pos*/) const {
  return Error(ESPIPE, "lseek", fmt::format("a {} file cannot seek (fd {})", name(), f.fd()));
}

void FileOperations::stat(const File& /*file*/, FileStat& /*st*/) const {}

void FileOperations::showFdinfo(const File& /*file*/, std::string& /*out*/) const {}

std::string FileOperations::linkName(const File& /*file*/) const {
  return fmt::format("anon_inode:{}", name());
}

void FileOperations::release(File& /*file*/) const {}

// --- WaitQueue ----------------------------------------------------------------------------------

struct WaitQueue::Impl {
  Mutex mutex;
  // Registered tables (few: one per sleeping poll).
  std::vector<PollTable*> tables ZBUF_GUARDED_BY(mutex);
};

// --- PollTable ---------------------------------------------------------------------------------

namespace {

// The calling thread's wake-up eventfd (non-blocking, close-on-exec), made on first need.
int threadEventFd() {
  thread_local UniqueFd fd = [] {
    auto made = sys::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return made.ok() ? std::move(*made) : UniqueFd();
  }();
  return fd.get();
}

constexpr std::uint32_t kIdle = 0;
constexpr std::uint32_t kWoken = 1;
constexpr std::uint32_t kSleeping = 2;

}  // namespace

struct PollTable::Impl {
  struct FenceWake : FenceCallback {
    explicit FenceWake(Impl* t) noexcept : FenceCallback(&onSignal), table(t) {}
    static void onSignal(Fence& /*fence*/, FenceCallback& self) {
      static_cast<FenceWake&>(self).table->wake();
    }
    Impl* table;
    FencePtr fence;
  };

  // Safe from fence callbacks and other threads: no allocation, no lock. The sleeper publishes
  // kSleeping (futex) or pollMode (poll(2)) before it sleeps; seq_cst on both sides makes sure
  // that either the waker sees how the sleeper sleeps, or the sleeper sees kWoken.
  void wake() noexcept {
    if (word.exchange(kWoken) == kSleeping) {
      sys::futexWake(word, 1);
    }
    if (pollMode.load()) {
      (void)sys::eventfdWrite(eventFd, 1);  // non-blocking; a full counter is still readable
    }
  }

  std::atomic<std::uint32_t> word{kIdle};
  std::atomic<bool> pollMode{false};
  int eventFd = -1;
  std::vector<struct pollfd> pollfds;  // waitFd() registrations
  std::vector<WaitQueue*> queues;
  std::vector<std::unique_ptr<FenceWake>> nodes;  // reused across rounds
  std::size_t nodesUsed = 0;
};

void PollTable::unregister() {
  for (WaitQueue* q : impl_->queues) {
    const MutexLocker lock(q->impl_->mutex);
    auto& t = q->impl_->tables;
    t.erase(std::remove(t.begin(), t.end(), this), t.end());
  }
  impl_->queues.clear();
  for (std::size_t i = 0; i < impl_->nodesUsed; ++i) {
    auto& n = *impl_->nodes[i];
    n.fence->removeCallback(n);
    n.fence.reset();
  }
  impl_->nodesUsed = 0;
}

std::unique_ptr<PollTable::Impl>& PollTable::spare() noexcept {
  thread_local std::unique_ptr<Impl> impl;
  return impl;
}

PollTable::PollTable() : impl_(std::move(spare())) {
  if (!impl_) {
    impl_ = std::make_unique<Impl>();
  }
}

PollTable::~PollTable() {
  reset();
  if (!spare()) {
    spare() = std::move(impl_);
  }
}

void PollTable::waitFd(int fd, short events) {
  impl_->pollfds.push_back({fd, events, 0});
}

void PollTable::wait(WaitQueue& queue) {
  if (std::find(impl_->queues.begin(), impl_->queues.end(), &queue) != impl_->queues.end()) {
    return;
  }
  {
    const MutexLocker lock(queue.impl_->mutex);
    queue.impl_->tables.push_back(this);
  }
  impl_->queues.push_back(&queue);
}

void PollTable::waitFence(const FencePtr& fence) {
  if (!fence) {
    return;
  }
  if (impl_->nodesUsed == impl_->nodes.size()) {
    impl_->nodes.push_back(std::make_unique<Impl::FenceWake>(impl_.get()));
  }
  Impl::FenceWake& node = *impl_->nodes[impl_->nodesUsed];
  node.fence = fence;
  if (fence->addCallback(node).ok()) {
    ++impl_->nodesUsed;
  } else {
    node.fence.reset();
    impl_->wake();  // already signalled: wake at once
  }
}

Result<int> PollTable::sleep(std::span<struct pollfd> ordinary, int timeoutMs) {
  Impl& t = *impl_;
  if (ordinary.empty() && t.pollfds.empty()) {
    // Only zbuf sources: sleep on the futex word, no file descriptor involved.
    std::uint32_t expected = kIdle;
    if (!t.word.compare_exchange_strong(expected, kSleeping)) {
      return 0;  // woken already
    }
    std::optional<std::chrono::nanoseconds> timeout;
    if (timeoutMs >= 0) {
      timeout = std::chrono::milliseconds(timeoutMs);
    }
    auto r = sys::futexWait(t.word, kSleeping, timeout);
    if (!r.ok() && r.code() == EINTR) {
      return Error(EINTR, "poll", "interrupted by a signal");
    }
    return 0;
  }
  if (t.eventFd < 0) {
    t.eventFd = threadEventFd();
  }
  t.pollMode.store(true);
  std::vector<struct pollfd> all(ordinary.begin(), ordinary.end());
  all.insert(all.end(), t.pollfds.begin(), t.pollfds.end());
  all.push_back({t.eventFd, POLLIN, 0});
  const int wait = t.word.load() == kWoken ? 0 : timeoutMs;
  const int n = ::poll(all.data(), all.size(), wait);
  if (n < 0) {
    return Error(errno, "poll", errno == EINTR ? "interrupted by a signal" : "poll(2) failed");
  }
  int ready = 0;
  for (std::size_t i = 0; i < ordinary.size(); ++i) {
    ordinary[i].revents = all[i].revents;
    ready += all[i].revents != 0 ? 1 : 0;
  }
  return ready;
}

void PollTable::reset() {
  unregister();
  impl_->pollfds.clear();
  if (impl_->pollMode.exchange(false) && impl_->eventFd >= 0) {
    (void)sys::eventfdRead(impl_->eventFd);  // EAGAIN when nothing was written
  }
  impl_->word.store(kIdle);
}

WaitQueue::WaitQueue() : impl_(std::make_unique<Impl>()) {}

WaitQueue::~WaitQueue() = default;

void WaitQueue::wakeUp() noexcept {
  const MutexLocker lock(impl_->mutex);
  for (PollTable* t : impl_->tables) {
    t->impl_->wake();
  }
}

}  // namespace zbuf::uapi
