// The virtio video pair (virtio_video.h): the decoder's virtio exporter, the display's import
// by UUID, their workers, and their files.
#include "zbuf/devices/virtio/virtio_video.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <atomic>
#include <cstring>
#include <list>
#include <map>
#include <utility>

#include "zbuf/base/hw_thread.h"
#include "zbuf/base/mutex.h"
#include "zbuf/core/fence.h"
#include "zbuf/heaps/system_heap.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/sysfs_attr.h"
#include "zbuf/uapi/user_copy.h"

namespace zbuf::virtio {
namespace {

// A device's command queue: jobs run in order on one hardware thread. A job's node is made
// before the caller publishes a fence (post() only splices it in: no allocation), as a
// driver allocates its descriptors before dma_resv_add_fence.
class Worker {
 public:
  using Jobs = std::list<std::function<void()>>;

  explicit Worker(std::string name) : thread_(std::move(name), [this] { run(); }) {}
  ~Worker() {
    {
      const MutexLocker lock(mutex_);
      stopping_ = true;
    }
    wake_.notifyAll();
    thread_.join();
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  Worker(Worker&&) = delete;
  Worker& operator=(Worker&&) = delete;

  // `job` holds one node (Jobs{std::move(fn)}).
  void post(Jobs& job) noexcept {
    {
      const MutexLocker lock(mutex_);
      queue_.splice(queue_.end(), job);
    }
    wake_.notifyOne();
  }

 private:
  void run() {
    MutexLocker lock(mutex_);
    for (;;) {
      wake_.wait(lock,
                 [this]() ZBUF_NO_THREAD_SAFETY_ANALYSIS { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        return;  // stopping, and everything queued has run
      }
      Jobs job;
      job.splice(job.end(), queue_, queue_.begin());
      lock.unlock();
      job.front()();
      job.clear();
      lock.lock();
    }
  }

  Mutex mutex_;
  ConditionVariable wake_;
  Jobs queue_ ZBUF_GUARDED_BY(mutex_);
  bool stopping_ ZBUF_GUARDED_BY(mutex_) = false;
  HardwareThread thread_;  // last: it starts with the members above made
};

constexpr int kPending = -1;

// One frame buffer of the decoder: its UUID and where its registration stands.
struct FrameBuffer {
  Uuid uuid{};
  std::span<std::byte> memory;  // the exporter's own mapping of its memory
  Mutex mutex;
  ConditionVariable registered;
  int status ZBUF_GUARDED_BY(mutex) = kPending;  // kPending, 0, or the registration's errno
};

void writeFrame(std::span<std::byte> memory, std::uint64_t frame) {
  const std::size_t words = memory.size() / sizeof(std::uint64_t);
  for (std::size_t i = 0; i < words; ++i) {
    const std::uint64_t w = frameWord(frame, i);
    std::memcpy(memory.data() + i * sizeof w, &w, sizeof w);
  }
}

}  // namespace

// --- the decoder --------------------------------------------------------------------------------

struct VideoDecoder::Private {};

struct VideoDecoder::Impl {
  std::shared_ptr<VirtioHost> host;
  std::shared_ptr<Timeline> timeline = Timeline::create("virtio-video", "decoder");
  mutable Mutex mutex;
  std::map<std::uint64_t, std::shared_ptr<FrameBuffer>> buffers ZBUF_GUARDED_BY(mutex);  // inode
  std::atomic<std::uint64_t> exported{0};
  std::atomic<std::uint64_t> decoded{0};
  std::atomic<std::uint64_t> deviceAttaches{0};
  Worker worker{"virtio-decoder"};  // last: its jobs use the members above

  [[nodiscard]] std::shared_ptr<FrameBuffer> find(const Buffer& buffer) const {
    const MutexLocker lock(mutex);
    auto it = buffers.find(buffer.inode());
    return it == buffers.end() ? nullptr : it->second;
  }
};

VideoDecoder::VideoDecoder(Private /*key*/, std::shared_ptr<VirtioHost> host)
    : impl_(std::make_shared<Impl>()) {
  impl_->host = std::move(host);
}

VideoDecoder::~VideoDecoder() = default;

std::shared_ptr<VideoDecoder> VideoDecoder::create(std::shared_ptr<VirtioHost> host) {
  return std::make_shared<VideoDecoder>(Private{}, std::move(host));
}

Result<BufferPtr> VideoDecoder::allocate(std::uint64_t size, int fdFlags, const Uuid* uuid,
                                         uid_t owner) {
  ZBUF_ASSIGN_OR_RETURN(auto info, SystemHeap::exportInfo(size, fdFlags));
  auto frame = std::make_shared<FrameBuffer>();
  frame->uuid = uuid != nullptr ? *uuid : randomUuid();

  // The system heap's operations for the memory, the virtio ones around them.
  auto ops = std::make_shared<VirtioExporterOps>();
  static_cast<ExporterOps&>(*ops) = *info.ops;
  ops->attach = &virtioDmaBufAttach;
  const std::weak_ptr<Impl> weakImpl = impl_;
  // virtio_dma_buf_ops.device_attach: another device attaches (the display's import).
  ops->deviceAttach = [weakImpl](Buffer& /*buffer*/, Attachment& /*attachment*/) -> Result<void> {
    if (auto impl = weakImpl.lock()) {
      impl->deviceAttaches.fetch_add(1);
    }
    return {};
  };
  // virtgpu_virtio_get_uuid: wait until the host answered the registration.
  ops->getUuid = [frame](Buffer& buffer) -> Result<Uuid> {
    MutexLocker lock(frame->mutex);
    frame->registered.wait(
        lock, [&]() ZBUF_NO_THREAD_SAFETY_ANALYSIS { return frame->status != kPending; });
    if (frame->status != 0) {
      return Error(frame->status, "virtio_dma_buf_get_uuid",
                   fmt::format("buffer {}: registering UUID {} with the host failed",
                               buffer.inode(), toString(frame->uuid)));
    }
    return frame->uuid;
  };
  const std::weak_ptr<VirtioHost> weakHost = impl_->host;
  ops->release = [weakImpl, weakHost, frame, heapRelease = info.ops->release](Buffer& buffer) {
    if (auto host = weakHost.lock()) {
      host->unregister(frame->uuid, buffer.inode());
    }
    if (auto impl = weakImpl.lock()) {
      const MutexLocker lock(impl->mutex);
      impl->buffers.erase(buffer.inode());
    }
    heapRelease(buffer);
  };
  info.exporterName = kExporterName;
  info.ops = ops;
  ZBUF_ASSIGN_OR_RETURN(auto buffer, virtioDmaBufExport(std::move(info)));
  ZBUF_ASSIGN_OR_RETURN(frame->memory, ops->vmap(*buffer));
  {
    const MutexLocker lock(impl_->mutex);
    impl_->buffers[buffer->inode()] = frame;
  }
  impl_->exported.fetch_add(1);
  // RESOURCE_ASSIGN_UUID: sent now, answered after the round trip.
  impl_->host->requestRegistration(frame->uuid, buffer, owner, [frame](int error) {
    {
      const MutexLocker lock(frame->mutex);
      frame->status = error;
    }
    frame->registered.notifyAll();
  });
  return buffer;
}

bool VideoDecoder::registrationPending(const Buffer& buffer) const {
  auto frame = impl_->find(buffer);
  if (!frame) {
    return false;
  }
  const MutexLocker lock(frame->mutex);
  return frame->status == kPending;
}

Result<void> VideoDecoder::decode(const BufferPtr& buffer, std::uint64_t frameNumber,
                                  bool nonBlocking) {
  constexpr const char* kOp = "virtio_video_decode";
  auto frame = impl_->find(*buffer);
  if (!frame) {
    return Error(EINVAL, kOp,
                 fmt::format("buffer {} was not allocated by this decoder", buffer->inode()));
  }
  FencePtr fence = impl_->timeline->createFence();
  Worker::Jobs job;
  job.emplace_back([impl = impl_.get(), frame, fence, frameNumber, buffer] {
    writeFrame(frame->memory, frameNumber);
    impl->decoded.fetch_add(1);
    fence->signal();
  });
  // The decoder overwrites the picture: it waits for every reader and writer.
  ZBUF_ASSIGN_OR_RETURN(auto slot, FenceSlot::reserve(buffer->resv(), ResvUsage::Read,
                                                      kFenceTimeout, nonBlocking, kOp));
  slot.publish(fence, ResvUsage::Write);
  impl_->worker.post(job);
  return {};
}

std::optional<Uuid> VideoDecoder::assignedUuid(const Buffer& buffer) const {
  auto frame = impl_->find(buffer);
  if (!frame) {
    return std::nullopt;
  }
  return frame->uuid;
}

DecoderStats VideoDecoder::stats() const {
  return DecoderStats{.exported = impl_->exported.load(),
                      .decoded = impl_->decoded.load(),
                      .deviceAttaches = impl_->deviceAttaches.load()};
}

// --- the display --------------------------------------------------------------------------------

struct VideoDisplay::Private {};

struct VideoDisplay::Impl {
  std::shared_ptr<VirtioHost> host;
  std::shared_ptr<Device> device = Device::create(DeviceConfig{.name = "virtio-video1"});
  std::shared_ptr<Timeline> timeline = Timeline::create("virtio-video", "display");
  std::atomic<std::uint64_t> imported{0};
  std::atomic<std::uint64_t> frames{0};
  std::atomic<std::uint64_t> verified{0};
  std::atomic<std::uint64_t> mismatches{0};
  Worker worker{"virtio-display"};  // last: its jobs use the members above

  // Reads the frame through the display's mapping, as its scan-out would.
  void check(const ImportedBuffer& import, std::uint64_t frameNumber) {
    Iommu& iommu = device->iommu();
    std::uint64_t index = 0;
    std::uint64_t good = 0;
    std::uint64_t bad = 0;
    for (const SgSegment& s : import.table().segments()) {
      auto host = iommu.translate(s.dmaAddress, s.length, /*write=*/false);
      const std::uint64_t words = s.length / sizeof(std::uint64_t);
      if (!host.ok()) {
        bad += words;  // the mapping is gone: nothing of this segment was seen
        index += words;
        continue;
      }
      for (std::uint64_t i = 0; i < words; ++i, ++index) {
        std::uint64_t w = 0;
        std::memcpy(&w, host->data() + i * sizeof w, sizeof w);
        if (w == frameWord(frameNumber, index)) {
          ++good;
        } else {
          ++bad;
        }
      }
    }
    verified.fetch_add(good * sizeof(std::uint64_t));
    mismatches.fetch_add(bad);
    frames.fetch_add(1);
  }
};

VideoDisplay::VideoDisplay(Private /*key*/, std::shared_ptr<VirtioHost> host)
    : impl_(std::make_shared<Impl>()) {
  impl_->host = std::move(host);
}

VideoDisplay::~VideoDisplay() = default;

std::shared_ptr<VideoDisplay> VideoDisplay::create(std::shared_ptr<VirtioHost> host) {
  return std::make_shared<VideoDisplay>(Private{}, std::move(host));
}

const std::shared_ptr<Device>& VideoDisplay::device() const noexcept {
  return impl_->device;
}

Result<std::shared_ptr<ImportedBuffer>> VideoDisplay::import(const Uuid& uuid, bool nonBlocking,
                                                             uid_t requester) {
  ZBUF_ASSIGN_OR_RETURN(auto buffer, impl_->host->resolve(uuid, nonBlocking, requester));
  ZBUF_ASSIGN_OR_RETURN(auto imported,
                        ImportedBuffer::create(buffer, impl_->device, DmaDirection::ToDevice,
                                               nonBlocking, "virtio_video_import"));
  impl_->imported.fetch_add(1);
  return std::make_shared<ImportedBuffer>(std::move(imported));
}

Result<void> VideoDisplay::display(const std::shared_ptr<ImportedBuffer>& import,
                                   std::uint64_t frameNumber, bool nonBlocking) {
  constexpr const char* kOp = "virtio_video_display";
  if (!import || !import->isImported()) {
    return Error(EINVAL, kOp, "no imported buffer");
  }
  FencePtr fence = impl_->timeline->createFence();
  Worker::Jobs job;
  job.emplace_back([impl = impl_.get(), import, fence, frameNumber] {
    impl->check(*import, frameNumber);
    fence->signal();
  });
  // Scan-out reads: it waits for the writers (the decoder) only.
  ZBUF_ASSIGN_OR_RETURN(auto slot, FenceSlot::reserve(import->buffer()->resv(), ResvUsage::Write,
                                                      kFenceTimeout, nonBlocking, kOp));
  slot.publish(fence, ResvUsage::Read);
  impl_->worker.post(job);
  return {};
}

DisplayStats VideoDisplay::stats() const {
  return DisplayStats{.imported = impl_->imported.load(),
                      .frames = impl_->frames.load(),
                      .verified = impl_->verified.load(),
                      .mismatches = impl_->mismatches.load()};
}

// --- the files ----------------------------------------------------------------------------------

namespace {

using uapi::OpenFile;

struct DecoderNode {
  std::shared_ptr<VideoDecoder> decoder;
};

// One open display file: the buffers imported through it.
struct DisplayFile {
  std::shared_ptr<VideoDisplay> display;
  Mutex mutex;
  std::map<std::uint64_t, std::shared_ptr<ImportedBuffer>> imports ZBUF_GUARDED_BY(mutex);

  [[nodiscard]] std::shared_ptr<ImportedBuffer> find(const Buffer& buffer) {
    const MutexLocker lock(mutex);
    auto it = imports.find(buffer.inode());
    return it == imports.end() ? nullptr : it->second;
  }
};

Result<void> checkFdFlags(std::uint32_t fdFlags, const char* op) {
  if ((fdFlags & ~static_cast<std::uint32_t>(O_ACCMODE | O_CLOEXEC)) != 0) {
    return Error(EINVAL, op, fmt::format("fd flags {:#o} beyond O_ACCMODE | O_CLOEXEC", fdFlags));
  }
  return {};
}

Result<long> decoderAlloc(const OpenFile& f, VideoDecoder& decoder, void* arg) {
  constexpr const char* kOp = "ZBUF_VIRTIO_VIDEO_ALLOC";
  ZBUF_ASSIGN_OR_RETURN(auto req, uapi::copyFromUser<uapi::VirtioVideoAlloc>(arg, kOp));
  if ((req.flags & ~uapi::kVirtioVideoAllocUuid) != 0 || req.pad != 0 || req.fd != 0) {
    return Error(EINVAL, kOp, "unknown flags, or pad or fd not 0 on input");
  }
  ZBUF_TRY(checkFdFlags(req.fdFlags, kOp));
  Uuid given{};
  std::memcpy(given.data(), req.uuid, given.size());
  const bool useGiven = (req.flags & uapi::kVirtioVideoAllocUuid) != 0;
  ZBUF_ASSIGN_OR_RETURN(auto buffer,
                        decoder.allocate(req.size, static_cast<int>(req.fdFlags),
                                         useGiven ? &given : nullptr, uapi::Context::callerUid()));
  // At once: the decoder knows the UUID it sent the host (getUuid would wait for the answer).
  const Uuid uuid = decoder.assignedUuid(*buffer).value_or(Uuid{});
  std::memcpy(req.uuid, uuid.data(), uuid.size());
  ZBUF_ASSIGN_OR_RETURN(auto fd, f.context().installBuffer(buffer, static_cast<int>(req.fdFlags)));
  req.fd = static_cast<std::uint32_t>(fd.get());
  ZBUF_TRY(uapi::copyToUser(arg, req, kOp));
  (void)fd.release();
  return 0L;
}

Result<long> decoderGetUuid(const OpenFile& f, VideoDecoder& decoder, void* arg) {
  constexpr const char* kOp = "ZBUF_VIRTIO_VIDEO_GET_UUID";
  ZBUF_ASSIGN_OR_RETURN(auto req, uapi::copyFromUser<uapi::VirtioVideoUuid>(arg, kOp));
  if (req.pad != 0) {
    return Error(EINVAL, kOp, "pad must be 0");
  }
  ZBUF_ASSIGN_OR_RETURN(auto buffer, f.context().bufferFromFd(static_cast<int>(req.fd)));
  if (f.nonBlocking() && decoder.registrationPending(*buffer)) {
    return Error(EAGAIN, kOp,
                 fmt::format("buffer {}: its UUID is still being registered with the host",
                             buffer->inode()));
  }
  ZBUF_ASSIGN_OR_RETURN(auto uuid, virtioDmaBufGetUuid(*buffer));
  std::memcpy(req.uuid, uuid.data(), uuid.size());
  ZBUF_TRY(uapi::copyToUser(arg, req, kOp));
  return 0L;
}

Result<uapi::VirtioVideoFrame> frameRequest(void* arg, const char* op) {
  ZBUF_ASSIGN_OR_RETURN(auto req, uapi::copyFromUser<uapi::VirtioVideoFrame>(arg, op));
  if (req.flags != 0) {
    return Error(EINVAL, op, fmt::format("unknown flags {:#x}", req.flags));
  }
  return req;
}

// What the two device files share: a character device at its node's path.
// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) a base of statics never destroyed
class VideoDeviceOps : public uapi::FileOperations {
 public:
  explicit constexpr VideoDeviceOps(const char* path) noexcept : path_(path) {}

  void stat(const uapi::File& /*file*/, uapi::FileStat& st) const override {
    st.mode = S_IFCHR | 0600;
  }
  [[nodiscard]] std::string linkName(const uapi::File& /*file*/) const override { return path_; }

 private:
  const char* path_;
};

Error notImported(const Buffer& buffer, const char* op) {
  return Error(EPERM, op,
               fmt::format("buffer {} was not imported through this file", buffer.inode()));
}

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class DecoderOps final : public VideoDeviceOps {
 public:
  constexpr DecoderOps() noexcept : VideoDeviceOps(kDecoderPath) {}
  [[nodiscard]] std::string_view name() const noexcept override { return "virtio-video"; }

  Result<long> ioctl(const OpenFile& f, unsigned cmd, void* arg) const override {
    VideoDecoder& decoder = *f.file().data<DecoderNode>().decoder;
    switch (cmd) {
      case uapi::kVirtioVideoAlloc:
        return decoderAlloc(f, decoder, arg);
      case uapi::kVirtioVideoGetUuid:
        return decoderGetUuid(f, decoder, arg);
      case uapi::kVirtioVideoDecode: {
        constexpr const char* kOp = "ZBUF_VIRTIO_VIDEO_DECODE";
        ZBUF_ASSIGN_OR_RETURN(auto req, frameRequest(arg, kOp));
        ZBUF_ASSIGN_OR_RETURN(auto buffer, f.context().bufferFromFd(static_cast<int>(req.fd)));
        ZBUF_TRY(decoder.decode(buffer, req.frame, f.nonBlocking()));
        return 0L;
      }
      default:
        return FileOperations::ioctl(f, cmd, arg);
    }
  }
};

static_assert(uapi::IsFileOperations<DecoderOps>);
constinit const DecoderOps kDecoderOps;

Result<long> displayImport(const OpenFile& f, DisplayFile& file, void* arg) {
  constexpr const char* kOp = "ZBUF_VIRTIO_VIDEO_IMPORT";
  ZBUF_ASSIGN_OR_RETURN(auto req, uapi::copyFromUser<uapi::VirtioVideoImport>(arg, kOp));
  if (req.fd != 0) {
    return Error(EINVAL, kOp, "fd must be 0 on input");
  }
  ZBUF_TRY(checkFdFlags(req.fdFlags, kOp));
  Uuid uuid{};
  std::memcpy(uuid.data(), req.uuid, uuid.size());
  ZBUF_ASSIGN_OR_RETURN(auto import,
                        file.display->import(uuid, f.nonBlocking(), uapi::Context::callerUid()));
  ZBUF_ASSIGN_OR_RETURN(auto fd,
                        f.context().installBuffer(import->buffer(), static_cast<int>(req.fdFlags)));
  req.fd = static_cast<std::uint32_t>(fd.get());
  ZBUF_TRY(uapi::copyToUser(arg, req, kOp));
  {
    const MutexLocker lock(file.mutex);
    // Imported twice through one file: one attachment (the older) serves both.
    (void)file.imports.try_emplace(import->buffer()->inode(), import);
  }
  (void)fd.release();
  return 0L;
}

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class DisplayOps final : public VideoDeviceOps {
 public:
  constexpr DisplayOps() noexcept : VideoDeviceOps(kDisplayPath) {}
  [[nodiscard]] std::string_view name() const noexcept override { return "virtio-video"; }

  Result<long> ioctl(const OpenFile& f, unsigned cmd, void* arg) const override {
    DisplayFile& file = f.file().data<DisplayFile>();
    switch (cmd) {
      case uapi::kVirtioVideoImport:
        return displayImport(f, file, arg);
      case uapi::kVirtioVideoDisplay: {
        constexpr const char* kOp = "ZBUF_VIRTIO_VIDEO_DISPLAY";
        ZBUF_ASSIGN_OR_RETURN(auto req, frameRequest(arg, kOp));
        ZBUF_ASSIGN_OR_RETURN(auto buffer, f.context().bufferFromFd(static_cast<int>(req.fd)));
        auto import = file.find(*buffer);
        if (!import) {
          return notImported(*buffer, kOp);
        }
        ZBUF_TRY(file.display->display(import, req.frame, f.nonBlocking()));
        return 0L;
      }
      case uapi::kVirtioVideoDetach: {
        constexpr const char* kOp = "ZBUF_VIRTIO_VIDEO_DETACH";
        ZBUF_ASSIGN_OR_RETURN(auto fd, uapi::copyFromUser<int>(arg, kOp));
        ZBUF_ASSIGN_OR_RETURN(auto buffer, f.context().bufferFromFd(fd));
        std::shared_ptr<ImportedBuffer> import;  // released outside the lock
        {
          const MutexLocker lock(file.mutex);
          auto it = file.imports.find(buffer->inode());
          if (it == file.imports.end()) {
            return notImported(*buffer, kOp);
          }
          import = std::move(it->second);
          file.imports.erase(it);
        }
        return 0L;
      }
      default:
        return FileOperations::ioctl(f, cmd, arg);
    }
  }

  // The imports go with the file (a display job still reading holds its own).
  void release(uapi::File& f) const override {
    DisplayFile& file = f.data<DisplayFile>();
    std::map<std::uint64_t, std::shared_ptr<ImportedBuffer>> imports;
    {
      const MutexLocker lock(file.mutex);
      imports.swap(file.imports);
    }
  }
};

static_assert(uapi::IsFileOperations<DisplayOps>);
constinit const DisplayOps kDisplayOps;

// "key value" lines, the bench files' format.
std::string lines(std::initializer_list<std::pair<const char*, std::uint64_t>> values) {
  std::string out;
  for (const auto& [key, value] : values) {
    out += fmt::format("{} {}\n", key, value);
  }
  return out;
}

template <typename T, typename F>
uapi::SysfsAttr readOnly(const std::shared_ptr<T>& object, F show) {
  const std::weak_ptr<T> weak = object;
  return {[weak, show]() -> Result<std::string> {
            auto o = weak.lock();
            if (!o) {
              return Error(ENODEV, "virtio bench", "the device is gone");
            }
            return show(*o);
          },
          {}};
}

}  // namespace

Result<void> addToContext(uapi::Context& context, const std::shared_ptr<VirtioHost>& host,
                          const std::shared_ptr<VideoDecoder>& decoder,
                          const std::shared_ptr<VideoDisplay>& display) {
  auto node = std::make_shared<DecoderNode>(DecoderNode{decoder});
  ZBUF_TRY(context.addNode(kDecoderPath, [node](uapi::Context& ctx, int flags) {
    return ctx.installFile(kDecoderOps, node, "virtio-video0", flags);
  }));
  ZBUF_TRY(context.addNode(kDisplayPath, [display](uapi::Context& ctx, int flags) {
    auto file = std::make_shared<DisplayFile>();
    file->display = display;
    return ctx.installFile(kDisplayOps, file, "virtio-video1", flags);
  }));
  const std::string dir = kBenchDir;
  ZBUF_TRY(uapi::addSysfsAttr(
      context, dir + "/host", readOnly(host, [](VirtioHost& h) {
        const VirtioHostStats s = h.stats();
        return lines(
            {{"latency_ns", static_cast<std::uint64_t>(h.config().registrationLatency.count())},
             {"entries", s.entries},
             {"pending", s.pending},
             {"registered", s.registered},
             {"duplicates", s.duplicates},
             {"orphaned", s.orphaned},
             {"resolved", s.resolved},
             {"refused", s.refused},
             {"unknown", s.unknown}});
      })));
  ZBUF_TRY(uapi::addSysfsAttr(context, dir + "/uuids",
                              readOnly(host, [](VirtioHost& h) { return h.describe(); })));
  ZBUF_TRY(uapi::addSysfsAttr(context, dir + "/decoder", readOnly(decoder, [](VideoDecoder& d) {
                                const DecoderStats s = d.stats();
                                return lines({{"exported", s.exported},
                                              {"decoded", s.decoded},
                                              {"device_attaches", s.deviceAttaches}});
                              })));
  ZBUF_TRY(uapi::addSysfsAttr(context, dir + "/display", readOnly(display, [](VideoDisplay& d) {
                                const DisplayStats s = d.stats();
                                return lines({{"imported", s.imported},
                                              {"frames", s.frames},
                                              {"verified", s.verified},
                                              {"mismatches", s.mismatches}});
                              })));
  return {};
}

}  // namespace zbuf::virtio
