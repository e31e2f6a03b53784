// Buffers and fences over the real kernel's dma-bufs and sync files (kernel_objects.h).
#include "zbuf/uapi/kernel_objects.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <thread>

#include "zbuf/base/log.h"
#include "zbuf/base/mutex.h"
#include "zbuf/base/sys.h"
#include "zbuf/core/page_run.h"
#include "zbuf/core/resv_lock.h"
#include "zbuf/core/sg_table.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/kernel_calls.h"

namespace zbuf::uapi {

namespace {

ZBUF_LOG_CATEGORY(Kernel);

// readlink(/proc/self/fd/<fd>): what the kernel says the file is.
Result<std::string> linkOf(int fd) {
  return KernelCalls().fdPath(fd);
}

// The value of `key` in the kernel's fdinfo of `fd` ("exp_name:\tsystem" -> "system").
std::string fdinfoValue(int fd, std::string_view key) {
  auto info = KernelCalls().fdinfo(fd);
  if (!info.ok()) {
    return {};
  }
  const std::string_view text = *info;
  const std::string needle = std::string(key) + ":";
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = std::min(text.find('\n', at), text.size());
    std::string_view line = text.substr(at, end - at);
    if (line.starts_with(needle)) {
      line.remove_prefix(needle.size());
      while (!line.empty() && (line.front() == '\t' || line.front() == ' ')) {
        line.remove_prefix(1);
      }
      return std::string(line);
    }
    at = end + 1;
  }
  return {};
}

// --- dma-buf -----------------------------------------------------------------------------------

struct KernelDmaBuf {
  SharedFd fd;        // zbuf's own description of the real dma-buf
  sys::Mapping host;  // the whole buffer, mapped once (the "kernel mapping")
  std::vector<PageRun> runs;
};

KernelDmaBuf& dataOf(Buffer& buffer) {
  return *static_cast<KernelDmaBuf*>(buffer.priv());
}

std::uint64_t syncFlags(DmaDirection dir) {
  switch (dir) {
    case DmaDirection::FromDevice:
      return kDmaBufSyncRead;
    case DmaDirection::ToDevice:
      return kDmaBufSyncWrite;
    default:
      return kDmaBufSyncRw;
  }
}

Result<void> realSync(Buffer& b, std::uint64_t flags) {
  DmaBufSync arg{flags};
  ZBUF_TRY(sys::ioctl(dataOf(b).fd.get(), kDmaBufIoctlSync, &arg));
  return {};
}

const std::shared_ptr<const ExporterOps>& kernelOps() {
  static const std::shared_ptr<const ExporterOps> ops = [] {
    auto o = std::make_shared<ExporterOps>();
    o->map = [](Attachment& a, DmaDirection dir) {
      return mapPageRuns(a.device(), dataOf(a.buffer()).runs, dir);
    };
    o->unmap = [](Attachment& a, SgTable& table, DmaDirection /*dir*/) {
      unmapSgTable(a.device(), table);
    };
    o->release = [](Buffer& /*b*/) {};  // the KernelDmaBuf (priv) closes zbuf's description
    o->beginCpuAccess = [](Buffer& b, DmaDirection dir) {
      return realSync(b, kDmaBufSyncStart | syncFlags(dir));
    };
    o->endCpuAccess = [](Buffer& b, DmaDirection dir) {
      return realSync(b, kDmaBufSyncEnd | syncFlags(dir));
    };
    o->mmap = [](Buffer& b, std::uint64_t pageOffset, std::uint64_t length, int prot,
                 int flags) -> Result<sys::Mapping> {
      return sys::mmap(length, prot, flags, dataOf(b).fd.get(),
                       static_cast<off_t>(pageOffset * sys::pageSize()));
    };
    o->vmap = [](Buffer& b) -> Result<std::span<std::byte>> {
      KernelDmaBuf& d = dataOf(b);
      return std::span<std::byte>(d.host.data(), d.host.size());
    };
    o->vunmap = [](Buffer& /*b*/, std::span<std::byte> /*map*/) {};
    return std::shared_ptr<const ExporterOps>(std::move(o));
  }();
  return ops;
}

// --- sync_file ---------------------------------------------------------------------------------

// The kernel's status of the sync file `fd`: 1 signalled, 0 pending, a negative errno.
int kernelStatus(int fd) {
  SyncFileInfo info{};
  if (!sys::ioctl(fd, kSyncIocFileInfo, &info).ok()) {
    return 0;
  }
  return info.status;
}

class KernelSyncFileFence;

// Sleeps on every pending wrapped sync file at once (epoll) and signals each fence when its
// fd polls readable. Started on first use, never destroyed (a process-wide service, as
// Context::embedded()); it blocks in epoll_wait while nothing is pending.
class Watcher {
 public:
  static Watcher& instance() {
    static auto* w = new Watcher();  // NOLINT(cppcoreguidelines-owning-memory): never destroyed
    return *w;
  }
  // Watches `fd` for `fence`; returns the registration's id (for remove()).
  Result<std::uint64_t> add(int fd, std::weak_ptr<KernelSyncFileFence> fence) {
    const MutexLocker lock(mutex_);
    if (!epoll_) {
      const int e = ::epoll_create1(EPOLL_CLOEXEC);
      if (e < 0) {
        return Error(errno, "epoll_create1");
      }
      epoll_ = UniqueFd::adopt(e);
      std::thread([this] { run(); }).detach();
    }
    const std::uint64_t id = next_++;
    struct epoll_event ev {};
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u64 = id;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
      return Error(errno, "epoll_ctl");
    }
    pending_.emplace(id, Entry{fd, std::move(fence)});
    return id;
  }
  void remove(std::uint64_t id) {
    const MutexLocker lock(mutex_);
    auto it = pending_.find(id);
    if (it != pending_.end()) {
      (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
      pending_.erase(it);
    }
  }

 private:
  struct Entry {
    int fd;
    std::weak_ptr<KernelSyncFileFence> fence;
  };
  void run();

  Mutex mutex_;
  UniqueFd epoll_ ZBUF_GUARDED_BY(mutex_);
  std::uint64_t next_ ZBUF_GUARDED_BY(mutex_) = 1;
  std::map<std::uint64_t, Entry> pending_ ZBUF_GUARDED_BY(mutex_);
};

class KernelSyncFileFence final : public Fence {
 public:
  KernelSyncFileFence(UniqueFd fd, std::string driver, std::string timeline)
      : Fence(Timeline::allocateContexts(1), 1),
        fd_(std::move(fd)),
        driver_(std::move(driver)),
        timeline_(std::move(timeline)) {}
  ~KernelSyncFileFence() override {
    if (id_ != 0) {
      Watcher::instance().remove(id_);
    }
  }
  KernelSyncFileFence(const KernelSyncFileFence&) = delete;
  KernelSyncFileFence& operator=(const KernelSyncFileFence&) = delete;
  KernelSyncFileFence(KernelSyncFileFence&&) = delete;
  KernelSyncFileFence& operator=(KernelSyncFileFence&&) = delete;

  [[nodiscard]] std::string_view driverName() const override { return driver_; }
  [[nodiscard]] std::string_view timelineName() const override { return timeline_; }

  // The watcher saw the fd readable: take the kernel's status and signal.
  void completed() {
    takeStatus();
    signal();
  }

 protected:
  bool enableSignalingLocked() override {
    if (readable()) {
      takeStatus();
      return false;  // done: the fence signals at once
    }
    auto id = Watcher::instance().add(fd_.get(), weak_from_this_fence());
    if (!id.ok()) {
      log(LogKernel, LogLevel::Warn, "sync file fd {}: cannot be watched: {}", fd_.get(),
          id.error().describe());
      trySetError(-id.code());
      return false;
    }
    id_ = *id;
    return true;
  }
  bool checkSignaled() override {
    if (!readable()) {
      return false;
    }
    takeStatus();
    return true;
  }

 private:
  std::weak_ptr<KernelSyncFileFence> weak_from_this_fence() {
    return std::static_pointer_cast<KernelSyncFileFence>(Fence::shared_from_this());
  }
  [[nodiscard]] bool readable() const {
    auto r = sys::pollOne(fd_.get(), POLLIN, std::chrono::milliseconds(0));
    return r.ok() && (*r & POLLIN) != 0;
  }
  void takeStatus() {
    const int status = kernelStatus(fd_.get());
    if (status < 0) {
      trySetError(status);
    }
  }

  UniqueFd fd_;
  std::string driver_;
  std::string timeline_;
  std::uint64_t id_ = 0;  // the watcher's registration (set under the fence's mutex)
};

void Watcher::run() {
  for (;;) {
    int epoll = -1;
    {
      const MutexLocker lock(mutex_);
      epoll = epoll_.get();
    }
    std::array<struct epoll_event, 16> events{};
    const int n = ::epoll_wait(epoll, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      continue;  // EINTR
    }
    for (int i = 0; i < n; ++i) {
      std::shared_ptr<KernelSyncFileFence> fence;
      {
        const MutexLocker lock(mutex_);
        auto it = pending_.find(events[static_cast<std::size_t>(i)].data.u64);
        if (it == pending_.end()) {
          continue;
        }
        fence = it->second.fence.lock();
        (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
        pending_.erase(it);
      }
      if (fence) {
        fence->completed();
      }
    }
  }
}

}  // namespace

bool isKernelDmaBufLink(std::string_view link) noexcept {
  return link.starts_with("/dmabuf:") || link == "anon_inode:dmabuf";
}

bool isKernelSyncFileLink(std::string_view link) noexcept {
  return link == "anon_inode:sync_file";
}

Result<BufferPtr> wrapKernelDmaBuf(int fd) {
  constexpr const char* kOp = "dma_buf_get";
  ZBUF_ASSIGN_OR_RETURN(auto link, linkOf(fd));
  if (!isKernelDmaBufLink(link)) {
    return Error(EINVAL, kOp, fmt::format("fd {} ({}) is not a dma-buf", fd, link));
  }
  auto data = std::make_shared<KernelDmaBuf>();
  ZBUF_ASSIGN_OR_RETURN(auto own, sys::dup(fd));
  data->fd = SharedFd::adopt(std::move(own));
  const off_t size = ::lseek(fd, 0, SEEK_END);
  if (size <= 0) {
    return Error(size < 0 ? errno : EINVAL, kOp, fmt::format("fd {}: the dma-buf's size", fd));
  }
  (void)::lseek(fd, 0, SEEK_SET);
  const int mode = sys::getFileFlags(fd).valueOr(O_RDWR) & O_ACCMODE;
  const int prot = mode == O_RDONLY ? PROT_READ : PROT_READ | PROT_WRITE;
  ZBUF_ASSIGN_OR_RETURN(
      data->host, sys::mmap(static_cast<std::size_t>(size), prot, MAP_SHARED, data->fd.get(), 0));
  const std::uint64_t page = sys::pageSize();
  data->runs = scatteredPageRuns({data->host.data(), data->host.size()}, page,
                                 reservePhysical(2 * data->host.size(), page));
  std::string exporter = fdinfoValue(fd, "exp_name");
  ExportInfo info;
  info.exporterName = exporter.empty() ? "kernel" : exporter;
  info.ops = kernelOps();
  info.size = static_cast<std::uint64_t>(size);
  info.flags = mode;
  info.fd = data->fd;
  info.priv = data;
  return Buffer::exportBuffer(std::move(info));
}

bool isKernelDmaBuf(const Buffer& buffer) noexcept {
  return buffer.opsPtr() == kernelOps();
}

Result<void> importKernelFences(Buffer& buffer) {
  if (!isKernelDmaBuf(buffer)) {
    return Error(EINVAL, "importKernelFences", "not a wrapped kernel dma-buf");
  }
  const int fd = dataOf(buffer).fd.get();
  for (const auto& [flags, usage] : {std::pair{kDmaBufSyncRead, ResvUsage::Write},
                                     std::pair{kDmaBufSyncWrite, ResvUsage::Read}}) {
    DmaBufExportSyncFile arg{static_cast<std::uint32_t>(flags), -1};
    ZBUF_TRY(sys::ioctl(fd, kDmaBufIoctlExportSyncFile, &arg));
    const UniqueFd syncFile = UniqueFd::adopt(arg.fd);
    auto ready = sys::pollOne(syncFile.get(), POLLIN, std::chrono::milliseconds(0));
    if (ready.ok() && (*ready & POLLIN) != 0) {
      continue;  // nothing of that kind pending
    }
    ZBUF_ASSIGN_OR_RETURN(auto fence, wrapKernelSyncFile(syncFile.get()));
    Resv& resv = buffer.resv();
    const ResvLock lock(resv);
    ZBUF_TRY(resv.reserveFencesLocked(1));
    resv.addFenceLocked(std::move(fence), usage);
  }
  return {};
}

Result<FencePtr> wrapKernelSyncFile(int fd) {
  constexpr const char* kOp = "sync_file_get_fence";
  ZBUF_ASSIGN_OR_RETURN(auto link, linkOf(fd));
  if (!isKernelSyncFileLink(link)) {
    return Error(EINVAL, kOp, fmt::format("fd {} ({}) is not a sync file", fd, link));
  }
  ZBUF_ASSIGN_OR_RETURN(auto own, sys::dup(fd));
  std::array<SyncFenceInfo, 1> first{};
  SyncFileInfo info{};
  ZBUF_TRY(sys::ioctl(fd, kSyncIocFileInfo, &info));
  std::string driver = "kernel";
  std::string timeline(info.name, strnlen(info.name, sizeof(info.name)));
  if (info.numFences == 1) {
    SyncFileInfo one{};
    one.numFences = 1;
    one.syncFenceInfo = reinterpret_cast<std::uintptr_t>(first.data());
    if (sys::ioctl(fd, kSyncIocFileInfo, &one).ok()) {
      driver.assign(first[0].driverName, strnlen(first[0].driverName, sizeof(first[0].driverName)));
      timeline.assign(first[0].objName, strnlen(first[0].objName, sizeof(first[0].objName)));
    }
  }
  auto fence = std::make_shared<KernelSyncFileFence>(std::move(own), driver, timeline);
  return FencePtr(fence);
}

}  // namespace zbuf::uapi
