// SyncFile implementation.
//
// How: create() makes a pipe (both ends close-on-exec, the write end non-blocking) and arms a
// fence callback that writes one byte to the write end; if the fence has already signalled,
// create() writes the byte itself. Who holds the object and its read end is the file layer's
// business (uapi/file_table.h).
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

Result<SyncFile::Created> SyncFile::create(FencePtr fence, std::string_view name) {
  if (!fence) {
    return Error(EINVAL, "SyncFile::create", "a sync file needs a fence");
  }
  ZBUF_ASSIGN_OR_RETURN(auto ends, sys::pipe());
  auto& [readEnd, writeEnd] = ends;
  ZBUF_TRY(sys::setFileFlags(writeEnd.get(), O_NONBLOCK));
  auto file =
      std::make_shared<SyncFile>(Private{}, std::move(fence), cutName(name), std::move(writeEnd));
  if (!file->fence_->addCallback(file->waker_).ok()) {
    // Already signalled: the callback will never run, so wake the file now.
    Waker::onSignal(*file->fence_, file->waker_);
  }
  log(LogSyncFile, LogLevel::Debug, "sync file for fence ctx {} seq {}", file->fence_->context(),
      file->fence_->seqno());
  return Created{std::move(file), std::move(readEnd)};
}

Result<SyncFile::Created> SyncFile::merge(std::string_view name, const SyncFile& other) const {
  const FencePtr both[] = {fence_, other.fence_};
  ZBUF_ASSIGN_OR_RETURN(auto merged, mergeFences(both));
  return create(std::move(merged), name);
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

SyncFile::Info SyncFile::info(bool withFences) const {
  Info info;
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
    FenceInfo fi;
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
