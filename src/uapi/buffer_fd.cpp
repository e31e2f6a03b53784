// The uAPI's table of buffers it handed fds out for.
//
// How liveness is decided: the table maps a buffer's file (st_dev, st_ino) to the BufferPtr and
// to the fd numbers that referred to that file before the first fd was handed out (the
// exporter's own fds: the buffer's fd, the memfd a heap keeps). Those stay open while the
// Buffer lives, and the table holds the Buffer, so they are never reused meanwhile. A prune
// lists /proc/self/fd once, and an entry survives if some other fd refers to its file.
#include "zbuf/uapi/buffer_fd.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include "file_key.h"
#include "zbuf/base/sys.h"
#include "zbuf/core/sync_file.h"

namespace zbuf::uapi {
namespace {

constexpr std::size_t kMinPruneThreshold = 64;

using Key = detail::FileKey;

struct Entry {
  BufferPtr buffer;
  std::vector<int> internalFds;  // the exporter's fds of this file (not the application's)
};

struct Table {
  std::mutex mutex;  // guards entries and pruneAt
  std::map<Key, Entry> entries;
  std::size_t pruneAt = kMinPruneThreshold;
};

// Never destroyed: buffers may be released during static destruction.
Table& table() {
  static Table* t = new Table;
  return *t;
}

// Every open fd of the process with its file.
std::vector<std::pair<int, Key>> scanFds() {
  std::vector<std::pair<int, Key>> out;
  auto fds = sys::openFds();
  if (!fds.ok()) {
    return out;
  }
  out.reserve(fds->size());
  for (int fd : *fds) {
    auto key = detail::fileKeyOf(fd);
    if (key.ok()) {
      out.emplace_back(fd, *key);
    }
  }
  return out;
}

// Drops the entries (only those in `only`, if given) that no application fd refers to.
// Table mutex held; the dropped buffers are moved to `dropped` to be released unlocked.
void pruneLocked(Table& t, const Key* only, std::vector<BufferPtr>& dropped) {
  const auto open = scanFds();
  for (auto it = t.entries.begin(); it != t.entries.end();) {
    if (only != nullptr && it->first != *only) {
      ++it;
      continue;
    }
    const Entry& e = it->second;
    const bool referenced = std::any_of(open.begin(), open.end(), [&](const auto& fdKey) {
      return fdKey.second == it->first && std::find(e.internalFds.begin(), e.internalFds.end(),
                                                    fdKey.first) == e.internalFds.end();
    });
    if (referenced) {
      ++it;
    } else {
      dropped.push_back(std::move(it->second.buffer));
      it = t.entries.erase(it);
    }
  }
  if (only == nullptr) {
    t.pruneAt = std::max(kMinPruneThreshold, 2 * t.entries.size());
  }
}

}  // namespace

Result<UniqueFd> installBuffer(BufferPtr buffer, int fdFlags) {
  if (!buffer) {
    return Error(EINVAL, "dma_buf_fd", "no buffer");
  }
  if ((fdFlags & ~(O_ACCMODE | O_CLOEXEC)) != 0) {
    return Error(EINVAL, "dma_buf_fd",
                 fmt::format("fd flags {:#o} beyond O_ACCMODE | O_CLOEXEC", fdFlags));
  }
  const int own = buffer->fd().get();
  auto key = detail::fileKeyOf(own);
  if (!key.ok()) {
    return std::move(key).error();
  }

  std::vector<BufferPtr> dropped;  // released after the table lock
  Table& t = table();
  const std::lock_guard lock(t.mutex);
  const bool known = t.entries.contains(*key);
  std::vector<int> internalFds;
  if (!known) {
    for (const auto& [fd, fdKey] : scanFds()) {
      if (fdKey == *key) {
        internalFds.push_back(fd);
      }
    }
  }
  const int mode = fdFlags & O_ACCMODE;
  auto fd =
      (mode == O_RDONLY || mode == O_WRONLY) ? sys::reopen(own, mode | O_CLOEXEC) : sys::dup(own);
  if (!fd.ok()) {
    return std::move(fd).error();
  }
  if ((fdFlags & O_CLOEXEC) == 0) {
    ZBUF_TRY(sys::setFdFlags(fd->get(), 0));
  }
  if (!known) {
    t.entries.emplace(*key, Entry{std::move(buffer), std::move(internalFds)});
  }
  if (t.entries.size() >= t.pruneAt) {
    pruneLocked(t, nullptr, dropped);
  }
  return std::move(*fd);
}

void close(UniqueFd fd) {
  auto key = detail::fileKeyOf(fd.get());
  if (!key.ok()) {
    return;
  }
  if (SyncFile::fromFd(fd.get()).ok()) {
    SyncFile::close(std::move(fd));
    return;
  }
  fd.reset();
  std::vector<BufferPtr> dropped;
  Table& t = table();
  const std::lock_guard lock(t.mutex);
  if (t.entries.contains(*key)) {
    pruneLocked(t, &*key, dropped);
  }
}

std::size_t pruneBuffers() {
  std::vector<BufferPtr> dropped;
  Table& t = table();
  const std::lock_guard lock(t.mutex);
  pruneLocked(t, nullptr, dropped);
  return dropped.size();
}

std::size_t heldBufferCount() {
  Table& t = table();
  const std::lock_guard lock(t.mutex);
  return t.entries.size();
}

}  // namespace zbuf::uapi
