// FileTable: identity lookup and inotify-counted lifetime (file_table.h has the contract).
//
// Counting: `descriptions` is raised by openDescription() at once (so a file never looks dead
// between handing out an fd and reading its IN_OPEN) and `ownOpens` remembers how many IN_OPEN
// events that accounts for; every other IN_OPEN (a reopen through /proc behind zbuf's back) is
// a new description. Every IN_CLOSE_WRITE / IN_CLOSE_NOWRITE ends one. Events are read only
// under the table mutex, in order, so the count is exact. At zero the entry leaves the table
// and its watch is removed; the File's release operation runs after the mutex is dropped.
#include "zbuf/uapi/file_table.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "zbuf/base/log.h"
#include "zbuf/base/mutex.h"
#include "zbuf/base/sys.h"

namespace zbuf::uapi {

ZBUF_LOG_CATEGORY(Files);

namespace {

constexpr std::uint32_t kWatchMask = IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE;

std::string procPath(int fd) {
  return fmt::format("/proc/self/fd/{}", fd);
}

}  // namespace

class FileTable::State {
 public:
  State();
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  State(State&&) = delete;
  State& operator=(State&&) = delete;
  ~State() = default;

  [[nodiscard]] bool canReap() const { return inotify_.isValid() && stop_.isValid(); }
  void stop() const { (void)sys::eventfdWrite(stop_.get(), 1); }
  void reaperLoop();
  [[nodiscard]] Result<FilePtr> insert(const FileOperations& ops, std::shared_ptr<void> data,
                                       UniqueFd backing);
  [[nodiscard]] Result<UniqueFd> openDescription(const File& file, int flags);
  [[nodiscard]] FilePtr findByIdentity(std::uint64_t device, std::uint64_t inode) const;
  std::size_t reap();
  [[nodiscard]] std::vector<FileInfo> list();
  [[nodiscard]] std::size_t size();
  // Empties the table and releases every file it held.
  void releaseEverything();

 private:
  struct Entry {
    FilePtr file;
    int watch = -1;
    long descriptions = 0;  // open descriptions of the application
    long ownOpens = 0;      // IN_OPEN events of openDescription() not read yet
  };
  struct Key {
    std::uint64_t device;
    std::uint64_t inode;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept {
      return static_cast<std::size_t>(k.inode * 0x9E3779B97F4A7C15ULL ^ k.device);
    }
  };

  // Reads the queued inotify events and moves the finished files to `released`. mutex_ held.
  void drainLocked(std::vector<FilePtr>& released) ZBUF_REQUIRES(mutex_);
  // openDescription() under the table mutex; drained files go to `released`.
  [[nodiscard]] Result<UniqueFd> openDescriptionLocked(const File& file, int flags,
                                                       std::vector<FilePtr>& released);
  static void releaseAll(std::vector<FilePtr>& released);

  mutable Mutex mutex_;  // guards files_, byWatch_ and reads of inotify_
  // Serialises reap() with its releases (recursive: a release may close files of the table).
  std::recursive_mutex reapMutex_;
  std::unordered_map<Key, Entry, KeyHash> files_ ZBUF_GUARDED_BY(mutex_);
  std::unordered_map<int, Key> byWatch_ ZBUF_GUARDED_BY(mutex_);
  UniqueFd inotify_;
  UniqueFd stop_;  // eventfd: wakes the reaper to exit
};

FileTable::State::State() {
  const int in = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (in < 0) {
    log(LogFiles, LogLevel::Error, "inotify_init1: {}: files will live until the context ends",
        std::strerror(errno));
  }
  inotify_ = UniqueFd::adopt(in);
  auto stop = sys::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop.ok()) {
    stop_ = std::move(*stop);
  }
}

void FileTable::State::releaseEverything() {
  std::vector<FilePtr> released;
  {
    const MutexLocker lock(mutex_);
    for (auto& [key, entry] : files_) {
      released.push_back(std::move(entry.file));
    }
    files_.clear();
    byWatch_.clear();
  }
  releaseAll(released);
}

FileTable::FileTable() : state_(std::make_shared<State>()) {
  if (state_->canReap()) {
    // The thread holds the state: it may outlive the table (State, in the header).
    reaper_ = std::thread([state = state_] { state->reaperLoop(); });
  }
}

FileTable::~FileTable() {
  if (reaper_.joinable()) {
    state_->stop();
    if (reaper_.get_id() == std::this_thread::get_id()) {
      // A release on the reaper ended this table's context: joining would wait for itself
      // (EDEADLK). The reaper finds the stop request when that release returns and ends.
      reaper_.detach();
    } else {
      reaper_.join();
    }
  }
  state_->releaseEverything();
}

Result<FilePtr> FileTable::insert(const FileOperations& ops, std::shared_ptr<void> data,
                                  UniqueFd backing) {
  return state_->insert(ops, std::move(data), std::move(backing));
}

Result<UniqueFd> FileTable::openDescription(const File& file, int flags) {
  return state_->openDescription(file, flags);
}

Result<FilePtr> FileTable::find(int fd) const {
  if (fd < 0) {
    return Error(EBADF, "fget", fmt::format("fd {} is not open", fd));
  }
  auto st = sys::fstat(fd);
  if (!st.ok()) {
    return Error(EBADF, "fget", fmt::format("fd {} is not open", fd));
  }
  return state_->findByIdentity(st->device, st->inode);
}

FilePtr FileTable::findByIdentity(std::uint64_t device, std::uint64_t inode) const {
  return state_->findByIdentity(device, inode);
}

std::size_t FileTable::reap() {
  return state_->reap();
}

std::vector<FileInfo> FileTable::list() {
  return state_->list();
}

std::size_t FileTable::size() {
  return state_->size();
}

void FileTable::State::reaperLoop() {
  sys::setThreadName("zbuf-files");
  for (;;) {
    std::array<struct pollfd, 2> fds{{{inotify_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}}};
    const int n = ::poll(fds.data(), fds.size(), -1);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 || (fds[1].revents & POLLIN) != 0) {
      return;
    }
    reap();
  }
}

Result<FilePtr> FileTable::State::insert(const FileOperations& ops, std::shared_ptr<void> data,
                                         UniqueFd backing) {
  auto st = sys::fstat(backing.get());
  if (!st.ok()) {
    return std::move(st).error();
  }
  const Key key{st->device, st->inode};
  FilePtr file;
  {
    const MutexLocker lock(mutex_);
    if (files_.contains(key)) {
      return Error(EEXIST, "FileTable::insert",
                   fmt::format("inode {} already has a {} file", key.inode,
                               files_.at(key).file->ops().name()));
    }
    int watch = -1;
    if (inotify_.isValid()) {
      watch = ::inotify_add_watch(inotify_.get(), procPath(backing.get()).c_str(), kWatchMask);
      if (watch < 0) {
        return Error(
            errno, "inotify_add_watch",
            fmt::format("cannot watch a new {} file (fs.inotify.max_user_watches?)", ops.name()));
      }
    }
    file = std::make_shared<File>(ops, std::move(data), std::move(backing), key.device, key.inode);
    files_.emplace(key, Entry{file, watch, 0, 0});
    if (watch >= 0) {
      byWatch_[watch] = key;
    }
  }
  return file;
}

Result<UniqueFd> FileTable::State::openDescription(const File& file, int flags) {
  // Events are read before and right after the reopen: inotify merges an event into an equal
  // unread one, so the reopen's IN_OPEN must not meet another IN_OPEN of the file in the queue
  // (docs/uapi.md, Lifetime). What the drains release is released after the table mutex.
  const std::lock_guard reaping(reapMutex_);
  std::vector<FilePtr> released;
  auto fd = openDescriptionLocked(file, flags, released);
  releaseAll(released);
  return fd;
}

Result<UniqueFd> FileTable::State::openDescriptionLocked(const File& file, int flags,
                                                         std::vector<FilePtr>& released) {
  const MutexLocker lock(mutex_);
  drainLocked(released);
  auto it = files_.find(Key{file.device(), file.inode()});
  if (it == files_.end() || it->second.file.get() != &file) {
    return Error(
        EBADF, "FileTable::openDescription",
        fmt::format("the {} file (inode {}) was released", file.ops().name(), file.inode()));
  }
  // No O_NONBLOCK in the open itself: opening a pipe read end must not race its writer.
  auto fd = sys::reopen(file.backingFd(), (flags & O_ACCMODE) | O_CLOEXEC);
  if (!fd.ok()) {
    return std::move(fd).error();
  }
  if ((flags & O_NONBLOCK) != 0) {
    ZBUF_TRY(sys::setFileFlags(fd->get(), O_NONBLOCK));
  }
  ++it->second.ownOpens;
  it->second.file->descriptions_.store(++it->second.descriptions);
  drainLocked(released);  // reads this open's own IN_OPEN
  return std::move(*fd);
}

FilePtr FileTable::State::findByIdentity(std::uint64_t device, std::uint64_t inode) const {
  const MutexLocker lock(mutex_);
  auto it = files_.find(Key{device, inode});
  return it == files_.end() ? nullptr : it->second.file;
}

void FileTable::State::drainLocked(std::vector<FilePtr>& released) {
  if (!inotify_.isValid()) {
    return;
  }
  alignas(struct inotify_event) std::array<char, 4096> buf{};
  for (;;) {
    const ssize_t n = ::read(inotify_.get(), buf.data(), buf.size());
    if (n <= 0) {
      return;  // EAGAIN: nothing more queued
    }
    for (ssize_t at = 0; at < n;) {
      struct inotify_event ev {};
      std::memcpy(&ev, buf.data() + at, sizeof ev);
      at += static_cast<ssize_t>(sizeof ev + ev.len);
      if ((ev.mask & IN_Q_OVERFLOW) != 0) {
        log(LogFiles, LogLevel::Error,
            "inotify queue overflow: close events were lost, some files may live too long");
        continue;
      }
      auto w = byWatch_.find(ev.wd);
      if (w == byWatch_.end()) {
        continue;  // a watch removed meanwhile (IN_IGNORED and late events)
      }
      auto it = files_.find(w->second);
      Entry& e = it->second;
      if ((ev.mask & IN_OPEN) != 0) {
        if (e.ownOpens > 0) {
          --e.ownOpens;
        } else {
          e.file->descriptions_.store(++e.descriptions);
        }
      }
      if ((ev.mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)) == 0) {
        continue;
      }
      e.file->descriptions_.store(--e.descriptions);
      if (e.descriptions <= 0) {
        log(LogFiles, LogLevel::Debug, "{} file inode {} released", e.file->ops().name(),
            e.file->inode());
        (void)::inotify_rm_watch(inotify_.get(), e.watch);
        byWatch_.erase(w);
        released.push_back(std::move(e.file));
        files_.erase(it);
      }
    }
  }
}

void FileTable::State::releaseAll(std::vector<FilePtr>& released) {
  for (FilePtr& f : released) {
    f->ops().release(*f);
  }
  released.clear();
}

std::size_t FileTable::State::reap() {
  // One reap at a time, releases included: when reap() returns, every close queued before it
  // was called has been released, whichever thread read the event.
  const std::lock_guard reaping(reapMutex_);
  std::vector<FilePtr> released;
  {
    const MutexLocker lock(mutex_);
    drainLocked(released);
  }
  const std::size_t n = released.size();
  releaseAll(released);
  return n;
}

std::vector<FileInfo> FileTable::State::list() {
  reap();
  std::vector<FileInfo> out;
  const MutexLocker lock(mutex_);
  out.reserve(files_.size());
  for (const auto& [key, e] : files_) {
    out.push_back(
        FileInfo{std::string(e.file->ops().name()), key.inode, key.device, e.descriptions});
  }
  return out;
}

std::size_t FileTable::State::size() {
  reap();
  const MutexLocker lock(mutex_);
  return files_.size();
}

}  // namespace zbuf::uapi
