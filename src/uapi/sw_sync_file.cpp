// /sys/kernel/debug/sync/sw_sync (the kernel's drivers/dma-buf/sw_sync.c, sw_sync_debugfs_fops):
// each open is a new timeline named after the opener's comm; SW_SYNC_IOC_CREATE_FENCE makes a
// fence (a sync point) on it as a sync file, SW_SYNC_IOC_INC advances it and signals the points
// it passes, in order, SW_SYNC_GET_DEADLINE reports the deadline hint SYNC_IOC_SET_DEADLINE gave
// a point, and the last close signals every point still pending with -ENOENT. docs/uapi.md.
// /sys/kernel/debug/sync/info (sync_debug.c, sync_info_debugfs_show) lists the live timelines
// of the process with their pending points, in the kernel's text.
//
// The timeline's value is the kernel's `int value` with its 32-bit wrap: a point at `seqno` is
// signalled once (int)(seqno - value) <= 0. A pending point is at most INT_MAX ahead, so it is
// kept under a 64-bit key, the count of increments so far plus its distance: it signals when
// that count reaches its key, and the keys of pending points sort as the kernel's pt_list.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <climits>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "file_kinds.h"
#include "zbuf/base/mutex.h"
#include "zbuf/core/fence.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/sysfs_attr.h"
#include "zbuf/uapi/user_copy.h"

namespace zbuf::uapi {
namespace {

constexpr const char* kSwSyncPath = "/sys/kernel/debug/sync/sw_sync";
constexpr const char* kSyncInfoPath = "/sys/kernel/debug/sync/info";

class SwSyncTimeline;

// sync_timeline_list_head: every live timeline of the process, in creation order (a timeline
// is listed from sync_timeline_create until its last reference goes, file and points alike,
// as sync_timeline_debug_add/_remove do). Made on first use and never destroyed: timelines may
// end during static destruction.
struct TimelineList {
  Mutex mutex;
  std::list<const SwSyncTimeline*> timelines ZBUF_GUARDED_BY(mutex);

  static TimelineList& get() {
    static auto* list = new TimelineList;
    return *list;
  }
};

// struct sync_pt: a fence of a timeline (timeline_fence_ops).
class SwSyncPoint final : public Fence {
 public:
  SwSyncPoint(std::shared_ptr<const SwSyncTimeline> timeline, std::uint64_t context,
              std::uint32_t value, std::uint64_t key) noexcept;

  [[nodiscard]] std::string_view driverName() const override { return "sw_sync"; }
  [[nodiscard]] std::string_view timelineName() const override;

  // SW_SYNC_HAS_DEADLINE_BIT and pt->deadline.
  [[nodiscard]] std::optional<std::uint64_t> deadline() const {
    const MutexLocker lock(mutex_);
    return deadline_;
  }

 protected:
  // timeline_fence_signaled: the timeline has reached the point.
  bool checkSignaled() override;
  // timeline_fence_set_deadline: the earliest deadline asked for.
  void onDeadline(std::uint64_t deadlineNs) override {
    const MutexLocker lock(mutex_);
    if (!deadline_ || deadlineNs < *deadline_) {
      deadline_ = deadlineNs;
    }
  }

 private:
  std::shared_ptr<const SwSyncTimeline> timeline_;  // the point keeps its timeline (kref)
  const std::uint64_t key_;
  std::optional<std::uint64_t> deadline_ ZBUF_GUARDED_BY(mutex_);
};

// struct sync_timeline. The points it has not signalled are held weakly, as the kernel's
// pt_list holds no reference: a point nobody holds any more is gone (and skipped).
class SwSyncTimeline : public std::enable_shared_from_this<SwSyncTimeline> {
 public:
  explicit SwSyncTimeline(std::string name)
      : name_(std::move(name)), context_(Timeline::allocateContexts(1)) {
    auto& list = TimelineList::get();
    const MutexLocker lock(list.mutex);
    listed_ = list.timelines.insert(list.timelines.end(), this);
  }
  ~SwSyncTimeline() {
    auto& list = TimelineList::get();
    const MutexLocker lock(list.mutex);
    list.timelines.erase(listed_);
  }
  SwSyncTimeline(const SwSyncTimeline&) = delete;
  SwSyncTimeline& operator=(const SwSyncTimeline&) = delete;
  SwSyncTimeline(SwSyncTimeline&&) = delete;
  SwSyncTimeline& operator=(SwSyncTimeline&&) = delete;

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  // The increments so far (the kernel's value is its low 32 bits).
  [[nodiscard]] std::uint64_t passed() const noexcept {
    return passed_.load(std::memory_order_acquire);
  }

  // sync_pt_create: a new point at `value`, signalled at once if the timeline is there already;
  // a point still pending at the same value is shared, as the kernel's rb-tree lookup does.
  std::shared_ptr<SwSyncPoint> createPoint(std::uint32_t value) {
    std::shared_ptr<SwSyncPoint> point;
    {
      const MutexLocker lock(mutex_);
      const std::uint64_t now = passed_.load(std::memory_order_relaxed);
      const auto distance = static_cast<std::int32_t>(value - static_cast<std::uint32_t>(now));
      if (distance > 0 && !released_) {
        const std::uint64_t key = now + static_cast<std::uint64_t>(distance);
        auto& slot = pending_[key];
        point = slot.lock();
        if (!point) {
          point = std::make_shared<SwSyncPoint>(shared_from_this(), context_, value, key);
          slot = point;
        }
        return point;
      }
      point = std::make_shared<SwSyncPoint>(shared_from_this(), context_, value, now);
      if (released_) {
        // Created by an ioctl that raced with the last close: the release would have found it.
        point->setError(-ENOENT);
      }
    }
    point->signal();
    return point;
  }

  // sync_timeline_signal: advances by `inc` (at most INT_MAX) and signals, in seqno order,
  // every point it reaches. The points are signalled under the timeline's lock, as the kernel
  // does, so that no point is seen signalled before an earlier one; the references taken go
  // after it.
  void signal(std::uint32_t inc) {
    std::vector<std::shared_ptr<SwSyncPoint>> signalled;
    {
      const MutexLocker lock(mutex_);
      const std::uint64_t now = passed_.load(std::memory_order_relaxed) + inc;
      passed_.store(now, std::memory_order_release);
      auto it = pending_.begin();
      for (; it != pending_.end() && it->first <= now; ++it) {
        if (auto point = it->second.lock()) {
          point->signal();
          signalled.push_back(std::move(point));
        }
      }
      pending_.erase(pending_.begin(), it);
    }
  }

  // sync_print_obj: "name: value", then a line per point still pending, in seqno order
  // (sync_print_fence without the timeline's name: "  fence active: seqno / value"; a point the
  // last close signalled stays listed, "fence error@sec.nsec", until it goes). The
  // points are kept alive in `keep`, to go after the caller's locks: a point's last reference
  // may be its timeline's, whose end takes the timeline list's lock.
  void show(std::string& out, std::vector<std::shared_ptr<SwSyncPoint>>& keep) const {
    const MutexLocker lock(mutex_);
    const auto value = static_cast<std::int32_t>(
        static_cast<std::uint32_t>(passed_.load(std::memory_order_relaxed)));
    out += fmt::format("{}: {}\n", name_, value);
    for (const auto& [key, weak] : pending_) {
      if (auto point = weak.lock()) {
        const int status = point->status();
        out += fmt::format("  fence {}", status < 0 ? "error" : status > 0 ? "signaled" : "active");
        if (status != 0) {  // signalled: the time it was
          const std::uint64_t ns = point->timestampNs();
          out += fmt::format("@{}.{:09}", ns / 1'000'000'000U, ns % 1'000'000'000U);
        }
        out += fmt::format(": {} / {}\n", point->seqno(), value);
        keep.push_back(std::move(point));
      }
    }
  }

  // sw_sync_debugfs_release: every point still pending signals with -ENOENT.
  void release() {
    std::vector<std::shared_ptr<SwSyncPoint>> signalled;
    {
      const MutexLocker lock(mutex_);
      released_ = true;
      // The points stay in pending_ (the kernel's pt_list keeps them until they are freed),
      // so /sys/kernel/debug/sync/info shows them signalled with the error.
      for (auto& [key, weak] : pending_) {
        if (auto point = weak.lock()) {
          point->setError(-ENOENT);
          point->signal();
          signalled.push_back(std::move(point));
        }
      }
    }
  }

 private:
  const std::string name_;  // the opener's comm (sync_timeline.name, 32 bytes)
  std::list<const SwSyncTimeline*>::iterator listed_;  // in TimelineList, under its mutex
  const std::uint64_t context_;
  std::atomic<std::uint64_t> passed_{0};  // written under mutex_, read without it
  mutable Mutex mutex_;
  std::map<std::uint64_t, std::weak_ptr<SwSyncPoint>> pending_ ZBUF_GUARDED_BY(mutex_);
  bool released_ ZBUF_GUARDED_BY(mutex_) = false;
};

SwSyncPoint::SwSyncPoint(std::shared_ptr<const SwSyncTimeline> timeline, std::uint64_t context,
                         std::uint32_t value, std::uint64_t key) noexcept
    : Fence(context, value), timeline_(std::move(timeline)), key_(key) {}

std::string_view SwSyncPoint::timelineName() const {
  return timeline_->name();
}

bool SwSyncPoint::checkSignaled() {
  return key_ <= timeline_->passed();
}

// sync_info_debugfs_show: the timelines with their pending points, then the "fences:" heading
// (newer kernels list no sync files there and keep the heading). A timeline is reached through
// the list without a reference: its destructor waits for the list's lock, so it stays whole
// while the list is held.
std::string syncInfoText() {
  std::string out = "objs:\n--------------\n";
  std::vector<std::shared_ptr<SwSyncPoint>> keep;
  auto& list = TimelineList::get();
  {
    const MutexLocker lock(list.mutex);
    for (const SwSyncTimeline* timeline : list.timelines) {
      timeline->show(out, keep);
      out += '\n';
    }
  }
  out += "fences:\n--------------\n";
  return out;
}

Result<long> createFence(const OpenFile& f, SwSyncTimeline& timeline, void* arg) {
  constexpr const char* kOp = "SW_SYNC_IOC_CREATE_FENCE";
  ZBUF_ASSIGN_OR_RETURN(auto data, copyFromUser<SwSyncCreateFenceData>(arg, kOp));
  // The name is not used: sync_file_create names the file after its fence.
  ZBUF_ASSIGN_OR_RETURN(auto fd, f.context().installSyncFile(timeline.createPoint(data.value)));
  data.fence = fd.get();
  ZBUF_TRY(copyToUser(arg, data, kOp));
  (void)fd.release();
  return 0L;
}

Result<long> inc(SwSyncTimeline& timeline, const void* arg) {
  ZBUF_ASSIGN_OR_RETURN(auto value, copyFromUser<std::uint32_t>(arg, "SW_SYNC_IOC_INC"));
  constexpr auto kMax = static_cast<std::uint32_t>(INT_MAX);
  while (value > kMax) {
    timeline.signal(kMax);
    value -= kMax;
  }
  timeline.signal(value);
  return 0L;
}

Result<long> getDeadline(const OpenFile& f, void* arg) {
  constexpr const char* kOp = "SW_SYNC_GET_DEADLINE";
  ZBUF_ASSIGN_OR_RETURN(auto data, copyFromUser<SwSyncGetDeadline>(arg, kOp));
  if (data.deadlineNs != 0 || data.pad != 0) {
    return Error(EINVAL, kOp,
                 fmt::format("deadline_ns {} and pad {:#x} must be 0", data.deadlineNs, data.pad));
  }
  auto fence = f.context().syncFileFence(data.fenceFd);
  if (!fence.ok()) {
    return Error(EINVAL, kOp, fmt::format("fence_fd {} is not a sync file", data.fenceFd));
  }
  const auto* point = dynamic_cast<const SwSyncPoint*>(fence->get());
  if (point == nullptr) {
    return Error(EINVAL, kOp,
                 fmt::format("fence_fd {} holds a {} fence, not a sw_sync one", data.fenceFd,
                             (*fence)->driverName()));
  }
  const auto deadline = point->deadline();
  if (!deadline) {
    return Error(ENOENT, kOp, fmt::format("fence_fd {}: no deadline set", data.fenceFd));
  }
  data.deadlineNs = *deadline;
  ZBUF_TRY(copyToUser(arg, data, kOp));
  return 0L;
}

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class SwSyncOps final : public FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "sw_sync"; }

  // sw_sync_ioctl: the three requests, ENOTTY for any other.
  Result<long> ioctl(const OpenFile& f, unsigned cmd, void* arg) const override {
    SwSyncTimeline& timeline = f.file().data<SwSyncTimeline>();
    switch (cmd) {
      case kSwSyncIocCreateFence:
        return createFence(f, timeline, arg);
      case kSwSyncIocInc:
        return inc(timeline, arg);
      case kSwSyncGetDeadline:
        return getDeadline(f, arg);
      default:
        return FileOperations::ioctl(f, cmd, arg);
    }
  }

  // A debugfs file of mode 0644.
  void stat(const File& /*file*/, FileStat& st) const override { st.mode = S_IFREG | 0644; }

  [[nodiscard]] std::string linkName(const File& /*file*/) const override { return kSwSyncPath; }

  void release(File& file) const override { file.data<SwSyncTimeline>().release(); }
};

static_assert(IsFileOperations<SwSyncOps>);
constinit const SwSyncOps kSwSyncOps;

}  // namespace

void detail::addSwSyncNode(Context& context) {
  // sw_sync_debugfs_open: a timeline named after the opener (get_task_comm(current)).
  (void)context.addNode(kSwSyncPath, [](Context& ctx, int flags) {
    auto timeline = std::make_shared<SwSyncTimeline>(Context::callerName());
    return ctx.installFile(kSwSyncOps, std::move(timeline), "sw_sync", flags);
  });
  (void)addSysfsAttr(context, kSyncInfoPath,
                     {[]() -> Result<std::string> { return syncInfoText(); }, {}});
}

}  // namespace zbuf::uapi
