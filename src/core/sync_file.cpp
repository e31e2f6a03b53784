// SyncFile implementation.
//
// How: create() makes a pipe (both ends close-on-exec, the write end non-blocking), fstat()s
// the read end for its (st_dev, st_ino) and registers the SyncFile under that key before
// handing the read end out. The SyncFile arms a fence callback that writes one byte to the
// write end; if the fence has already signalled, create() writes the byte itself.
//
// The registry (a map guarded by Registry::mutex) owns the SyncFile objects. An entry whose
// pipe has no reader left (poll(2) on the write end reports POLLERR) is dead: prune() drops
// such entries, and create() calls it whenever the map has doubled since the last prune.
// Entries are destroyed outside the registry mutex (the destructor takes the fence lock to
// remove the callback).
#include "zbuf/core/sync_file.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "zbuf/base/log.h"
#include "zbuf/base/sys.h"
#include "zbuf/core/fence_unwrap.h"

namespace zbuf {

ZBUF_LOG_CATEGORY(SyncFile);

struct SyncFile::Private {};

namespace {

constexpr std::size_t kMinPruneThreshold = 64;

struct Key {
  std::uint64_t device;
  std::uint64_t inode;
  friend bool operator==(const Key& a, const Key& b) noexcept = default;
};

struct KeyHash {
  std::size_t operator()(const Key& k) const noexcept {
    return std::hash<std::uint64_t>()(k.inode * 0x9E3779B97F4A7C15ULL ^ k.device);
  }
};

struct Registry {
  std::mutex mutex;  // guards files and pruneAt
  std::unordered_map<Key, std::shared_ptr<SyncFile>, KeyHash> files;
  std::size_t pruneAt = kMinPruneThreshold;
};

// Never destroyed: fences may signal (and sync files be looked up) during static destruction.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

// The key of `fd` if it is the read end of a pipe (the only fds a sync file hands out).
Result<Key> readEndKey(int fd, const char* op) {
  auto st = sys::fstat(fd);
  if (!st.ok()) {
    return Error(EINVAL, op, fmt::format("fd {} is not an open file", fd));
  }
  if (!S_ISFIFO(st->mode)) {
    return Error(EINVAL, op, fmt::format("fd {} is not a sync file", fd));
  }
  auto fl = sys::getFileFlags(fd);
  if (!fl.ok() || (*fl & O_ACCMODE) != O_RDONLY) {
    return Error(EINVAL, op, fmt::format("fd {} is not a sync file", fd));
  }
  return Key{st->device, st->inode};
}

std::string cutName(std::string_view name) {
  name = name.substr(0, std::min(name.find('\0'), SyncFile::kNameLen - 1));
  return std::string(name);
}

}  // namespace

SyncFile::Waker::Waker() noexcept : FenceCallback(&onSignal) {}

void SyncFile::Waker::onSignal(Fence& /*fence*/, FenceCallback& self) {
  const auto& waker = static_cast<const Waker&>(self);
  const std::byte one{1};
  // Non-blocking and only ever one byte into an empty pipe: it cannot block or fill up. EPIPE
  // (no reader left) is fine: nobody can observe the file any more.
  (void)sys::writeNoSigpipe(waker.writeEnd.get(), {&one, 1});
}

SyncFile::SyncFile(Private /*key*/, FencePtr fence, std::string name, UniqueFd writeEnd)
    : fence_(std::move(fence)), name_(std::move(name)) {
  waker_.writeEnd = std::move(writeEnd);
}

SyncFile::~SyncFile() {
  fence_->removeCallback(waker_);
}

bool SyncFile::hasReaders() const {
  auto revents = sys::pollOne(waker_.writeEnd.get(), 0, std::chrono::milliseconds(0));
  return !revents.ok() || (*revents & POLLERR) == 0;
}

Result<UniqueFd> SyncFile::create(FencePtr fence, std::string_view name) {
  if (!fence) {
    return Error(EINVAL, "SyncFile::create", "a sync file needs a fence");
  }
  auto ends = sys::pipe();
  if (!ends.ok()) {
    return std::move(ends).error();
  }
  auto& [readEnd, writeEnd] = *ends;
  ZBUF_TRY(sys::setFileFlags(writeEnd.get(), O_NONBLOCK));
  auto st = sys::fstat(readEnd.get());
  if (!st.ok()) {
    return std::move(st).error();
  }
  const Key key{st->device, st->inode};
  auto file =
      std::make_shared<SyncFile>(Private{}, std::move(fence), cutName(name), std::move(writeEnd));
  if (!file->fence_->addCallback(file->waker_).ok()) {
    // Already signalled: the callback will never run, so wake the file now.
    Waker::onSignal(*file->fence_, file->waker_);
  }

  std::shared_ptr<SyncFile> replaced;
  bool pruneNow = false;
  {
    Registry& r = registry();
    const std::lock_guard lock(r.mutex);
    auto [it, inserted] = r.files.try_emplace(key, file);
    if (!inserted) {
      // Only possible if the inode number of a pipe whose readers are all gone was reused.
      replaced = std::exchange(it->second, file);
    }
    pruneNow = r.files.size() >= r.pruneAt;
  }
  if (pruneNow) {
    prune();
  }
  log(LogSyncFile, LogLevel::Debug, "sync file ino {} for fence ctx {} seq {}", key.inode,
      file->fence_->context(), file->fence_->seqno());
  return std::move(readEnd);
}

Result<std::shared_ptr<SyncFile>> SyncFile::fromFd(int fd) {
  auto key = readEndKey(fd, "SyncFile::fromFd");
  if (!key.ok()) {
    return std::move(key).error();
  }
  Registry& r = registry();
  const std::lock_guard lock(r.mutex);
  auto it = r.files.find(*key);
  if (it == r.files.end()) {
    return Error(EINVAL, "SyncFile::fromFd", fmt::format("fd {} is not a sync file", fd));
  }
  return it->second;
}

Result<FencePtr> SyncFile::getFence(int fd) {
  auto file = fromFd(fd);
  if (!file.ok()) {
    return std::move(file).error();
  }
  return (*file)->fence_;
}

void SyncFile::close(UniqueFd fd) {
  auto key = readEndKey(fd.get(), "SyncFile::close");
  fd.reset();
  if (!key.ok()) {
    return;
  }
  std::shared_ptr<SyncFile> dropped;
  Registry& r = registry();
  const std::lock_guard lock(r.mutex);
  auto it = r.files.find(*key);
  if (it != r.files.end() && !it->second->hasReaders()) {
    dropped = std::move(it->second);
    r.files.erase(it);
  }
  // `dropped` is destroyed after the lock guard (declared before it).
}

std::size_t SyncFile::prune() {
  std::vector<std::shared_ptr<SyncFile>> dropped;
  Registry& r = registry();
  const std::lock_guard lock(r.mutex);
  for (auto it = r.files.begin(); it != r.files.end();) {
    if (it->second->hasReaders()) {
      ++it;
    } else {
      dropped.push_back(std::move(it->second));
      it = r.files.erase(it);
    }
  }
  r.pruneAt = std::max(kMinPruneThreshold, 2 * r.files.size());
  return dropped.size();
  // `dropped` is destroyed after the lock guard (declared before it).
}

std::size_t SyncFile::registeredCount() {
  Registry& r = registry();
  const std::lock_guard lock(r.mutex);
  return r.files.size();
}

Result<UniqueFd> SyncFile::merge(std::string_view name, int fd2) const {
  auto other = fromFd(fd2);
  if (!other.ok()) {
    return Error(ENOENT, "SYNC_IOC_MERGE", fmt::format("fd2 {} is not a sync file", fd2));
  }
  return merge(name, **other);
}

Result<UniqueFd> SyncFile::merge(std::string_view name, const SyncFile& other) const {
  const FencePtr both[] = {fence_, other.fence_};
  auto merged = mergeFences(both);
  if (!merged.ok()) {
    return std::move(merged).error();
  }
  return create(std::move(*merged), name);
}

std::vector<FencePtr> SyncFile::leaves() const {
  return unwrapFences(fence_);
}

std::string SyncFile::name() const {
  if (!name_.empty()) {
    return name_;
  }
  std::string generated =
      fmt::format("{}-{}{}-{}", fence_->driverName(), fence_->timelineName(), fence_->context(),
                  static_cast<std::int64_t>(fence_->seqno()));
  generated.resize(std::min(generated.size(), kNameLen - 1));
  return generated;
}

SyncFileInfo SyncFile::info(bool withFences) const {
  SyncFileInfo info;
  info.name = name();
  const std::vector<FencePtr> all = leaves();
  info.numFences = all.size();
  if (!withFences) {
    info.status = fence_->status();
    return info;
  }
  info.status = 1;
  info.fences.reserve(all.size());
  for (const FencePtr& leaf : all) {
    SyncFenceInfo fi;
    fi.objName = cutName(leaf->timelineName());
    fi.driverName = cutName(leaf->driverName());
    fi.status = leaf->status();
    fi.timestampNs = leaf->isSignaled() ? leaf->timestampNs() : 0;
    if (info.status > 0) {
      info.status = fi.status;
    }
    info.fences.push_back(std::move(fi));
  }
  return info;
}

}  // namespace zbuf
