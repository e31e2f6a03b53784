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

#include <fmt/format.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "zbuf/base/log.h"
#include "zbuf/uapi/context.h"

namespace zbuf::uapi {

// --- OpenFile -----------------------------------------------------------------------------------

int OpenFile::flags() const {
  auto fl = sys::getFileFlags(fd_);
  return fl.ok() ? *fl : 0;
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
  std::mutex mutex;                  // guards tables
  std::vector<PollTable*> tables;    // registered tables (few: one per sleeping poll)
};

// --- PollTable ----------------------------------------------------------------------------------

namespace {

// The calling thread's wake-up eventfd (non-blocking, close-on-exec).
int threadEventFd() {
  thread_local UniqueFd fd = [] {
    auto made = sys::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return made.ok() ? std::move(*made) : UniqueFd();
  }();
  return fd.get();
}

void wakeEventFd(int fd) noexcept {
  if (fd >= 0) {
    (void)sys::eventfdWrite(fd, 1);  // non-blocking; a saturated counter is still readable
  }
}

}  // namespace

struct PollTable::Impl {
  struct FenceWake : FenceCallback {
    FenceWake(FencePtr f, int efd) noexcept : FenceCallback(&onSignal), fence(std::move(f)), fd(efd) {}
    static void onSignal(Fence& /*fence*/, FenceCallback& self) {
      wakeEventFd(static_cast<FenceWake&>(self).fd);
    }
    FencePtr fence;
    int fd;
  };

  int eventFd = threadEventFd();
  std::vector<struct pollfd> pollfds;
  std::vector<WaitQueue*> queues;
  std::vector<std::unique_ptr<FenceWake>> fences;
};

void PollTable::unregister() {
  for (WaitQueue* q : impl_->queues) {
    const std::lock_guard lock(q->impl_->mutex);
    auto& t = q->impl_->tables;
    t.erase(std::remove(t.begin(), t.end(), this), t.end());
  }
  impl_->queues.clear();
  for (auto& f : impl_->fences) {
    f->fence->removeCallback(*f);
  }
  impl_->fences.clear();
}

PollTable::PollTable() : impl_(std::make_unique<Impl>()) {
  impl_->pollfds.push_back({impl_->eventFd, POLLIN, 0});
  reset();
}

PollTable::~PollTable() {
  reset();
}

void PollTable::waitFd(int fd, short events) {
  impl_->pollfds.push_back({fd, events, 0});
}

void PollTable::wait(WaitQueue& queue) {
  if (std::find(impl_->queues.begin(), impl_->queues.end(), &queue) != impl_->queues.end()) {
    return;
  }
  {
    const std::lock_guard lock(queue.impl_->mutex);
    queue.impl_->tables.push_back(this);
  }
  impl_->queues.push_back(&queue);
}

void PollTable::waitFence(const FencePtr& fence) {
  if (!fence) {
    return;
  }
  auto node = std::make_unique<Impl::FenceWake>(fence, impl_->eventFd);
  if (fence->addCallback(*node).ok()) {
    impl_->fences.push_back(std::move(node));
  } else {
    wakeEventFd(impl_->eventFd);  // already signalled: wake at once
  }
}

std::span<const struct pollfd> PollTable::pollfds() const noexcept {
  return impl_->pollfds;
}

void PollTable::reset() {
  unregister();
  if (impl_->eventFd >= 0) {
    (void)sys::eventfdRead(impl_->eventFd);  // EAGAIN when nothing was written
  }
  impl_->pollfds.resize(1);
}

WaitQueue::WaitQueue() : impl_(std::make_unique<Impl>()) {}

WaitQueue::~WaitQueue() = default;

void WaitQueue::wakeUp() noexcept {
  const std::lock_guard lock(impl_->mutex);
  for (PollTable* t : impl_->tables) {
    wakeEventFd(t->impl_->eventFd);
  }
}

}  // namespace zbuf::uapi
