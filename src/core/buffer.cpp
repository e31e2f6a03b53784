// Buffer: export checks, the process-wide list of live buffers (the bufinfo list),
// names, attach/detach, CPU access, mmap and vmap. Attachment mapping lives in attachment.cpp.
#include "zbuf/core/buffer.h"

#include <fcntl.h>
#include <sys/mman.h>

#include <map>

#include "buffer_state.h"
#include "zbuf/base/log.h"
#include "zbuf/core/fence.h"

namespace zbuf {

ZBUF_LOG_CATEGORY(Buffer);

namespace {

// The process-wide list of live buffers (the kernel's db_list). Buffers are registered as the
// last step of export and removed first thing in their destructor; entries are weak, so a
// buffer being destroyed is simply skipped by lookups.
struct Registry {
  Mutex mutex;
  std::map<std::uint64_t, std::weak_ptr<Buffer>> byInode ZBUF_GUARDED_BY(mutex);
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: buffers may outlive static dtors
  return *r;
}

std::atomic<std::uint64_t> gNextInode{0};

Error exportError(const ExportInfo& info, const char* rule) {
  return Error(EINVAL, "dma_buf_export", fmt::format("exporter '{}': {}", info.exporterName, rule));
}

}  // namespace

Result<BufferPtr> Buffer::exportBuffer(ExportInfo info) {
  if (!info.priv) {
    return exportError(info, "priv (the exporter's private data) is required");
  }
  if (!info.ops) {
    return exportError(info, "ops are required");
  }
  const ExporterOps& ops = *info.ops;
  if (!ops.map || !ops.unmap || !ops.release) {
    return exportError(info, "map, unmap and release are required operations");
  }
  if (static_cast<bool>(ops.pin) != static_cast<bool>(ops.unpin)) {
    return exportError(info, "pin and unpin must be given together");
  }
  if (ops.pin && (ops.beginDeviceAccess || ops.endDeviceAccess)) {
    return exportError(info,
                       "a dynamic exporter (with pin) cannot offer begin/end device access: "
                       "its memory may move, so device access bracketing cannot hold");
  }
  if (!info.fd.isValid()) {
    return exportError(info, "the buffer needs a valid fd (a memfd)");
  }
  if (!sys::fstat(info.fd.get()).ok()) {
    return exportError(info, "the buffer's fd cannot be queried");
  }
  if (!info.resv) {
    info.resv = std::make_shared<Resv>();
  }

  auto buffer = std::make_shared<Buffer>(Private{}, std::move(info));
  Registry& reg = registry();
  const MutexLocker lock(reg.mutex);
  reg.byInode.emplace(buffer->state_->inode, buffer);
  return buffer;
}

Buffer::Buffer(Private /*key*/, ExportInfo info) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.size = info.size;
  s.exporterName = std::move(info.exporterName);
  s.fileFlags = info.flags & (O_ACCMODE | O_NONBLOCK);
  s.fd = std::move(info.fd);
  s.resv = std::move(info.resv);
  s.ops = std::move(info.ops);
  s.priv = std::move(info.priv);
  s.inode = gNextInode.fetch_add(1) + 1;
}

Buffer::~Buffer() {
  {
    Registry& reg = registry();
    const MutexLocker lock(reg.mutex);
    reg.byInode.erase(state_->inode);
  }
  if (state_->vmapCount != 0) {
    log(LogBuffer, LogLevel::Warn, "buffer {} ({}) released with {} vmap(s) outstanding",
        state_->inode, state_->exporterName, state_->vmapCount);
  }
  state_->ops->release(*this);
}

std::vector<BufferPtr> Buffer::liveBuffers() {
  std::vector<BufferPtr> out;
  Registry& reg = registry();
  const MutexLocker lock(reg.mutex);
  out.reserve(reg.byInode.size());
  for (const auto& [ino, weak] : reg.byInode) {
    if (BufferPtr b = weak.lock()) {
      out.push_back(std::move(b));
    }
  }
  return out;
}

std::uint64_t Buffer::size() const noexcept {
  return state_->size;
}
const std::string& Buffer::exporterName() const noexcept {
  return state_->exporterName;
}
Resv& Buffer::resv() const noexcept {
  return *state_->resv;
}
const SharedFd& Buffer::fd() const noexcept {
  return state_->fd;
}
int Buffer::fileFlags() const noexcept {
  return state_->fileFlags;
}
std::uint64_t Buffer::inode() const noexcept {
  return state_->inode;
}
const ExporterOps& Buffer::ops() const noexcept {
  return *state_->ops;
}
const std::shared_ptr<const ExporterOps>& Buffer::opsPtr() const noexcept {
  return state_->ops;
}
void* Buffer::priv() const noexcept {
  return state_->priv.get();
}
bool Buffer::isDynamic() const noexcept {
  return static_cast<bool>(state_->ops->pin);
}

std::string Buffer::name() const {
  const MutexLocker lock(state_->nameMutex);
  return state_->name;
}

bool Buffer::hasName() const {
  const MutexLocker lock(state_->nameMutex);
  return state_->hasName;
}

Result<void> Buffer::setName(std::string_view name) {
  if (name.size() > kNameMax) {
    return Error(EINVAL, "dma_buf_set_name",
                 fmt::format("buffer {}: name of {} characters is longer than {}", inode(),
                             name.size(), kNameMax));
  }
  if (name.find('\0') != std::string_view::npos) {
    name = name.substr(0, name.find('\0'));  // the kernel copies up to the NUL
  }
  std::string copy(name);
  const MutexLocker lock(state_->nameMutex);
  state_->name = std::move(copy);
  state_->hasName = true;
  return {};
}

Result<AttachmentPtr> Buffer::attach(std::shared_ptr<Device> device,
                                     const ImporterOps* importerOps) {
  if (!device) {
    return Error(EINVAL, "dma_buf_attach", fmt::format("buffer {}: no device", inode()));
  }
  if (importerOps != nullptr && !importerOps->moveNotify) {
    return Error(EINVAL, "dma_buf_dynamic_attach",
                 fmt::format("buffer {}, device {}: a dynamic importer must provide move_notify",
                             inode(), device->name()));
  }
  auto attachment = std::make_shared<Attachment>(Attachment::Private{}, shared_from_this(),
                                                 std::move(device), importerOps);
  if (ops().attach) {
    auto r = ops().attach(*this, *attachment);
    if (!r.ok()) {
      // Never published: mark detached so the destructor does not run the exporter's detach.
      attachment->state_->detached = true;
      return std::move(r).error();
    }
  }
  const MutexLocker lock(state_->attachMutex);
  state_->attachments.emplace_back(attachment.get(), attachment);
  return attachment;
}

void Buffer::State::detach(Buffer& buffer, Attachment& attachment) {
  {
    const MutexLocker lock(attachMutex);
    if (attachment.state_->detached) {
      return;
    }
    attachment.state_->detached = true;
    std::erase_if(attachments, [&](const auto& e) { return e.first == &attachment; });
  }
  if (ops->detach) {
    ops->detach(buffer, attachment);
  }
}

void Buffer::detach(const AttachmentPtr& attachment) {
  if (!attachment || &attachment->buffer() != this) {
    log(LogBuffer, LogLevel::Warn, "buffer {}: detach of an attachment of another buffer", inode());
    return;
  }
  if (attachment->mapCount() != 0) {
    log(LogBuffer, LogLevel::Warn, "buffer {}: device {} detaches with {} mapping(s) live", inode(),
        attachment->device().name(), attachment->mapCount());
  }
  state_->detach(*this, *attachment);
}

std::vector<AttachmentPtr> Buffer::attachments() const {
  std::vector<AttachmentPtr> out;
  const MutexLocker lock(state_->attachMutex);
  out.reserve(state_->attachments.size());
  for (const auto& [raw, weak] : state_->attachments) {
    if (AttachmentPtr a = weak.lock()) {
      out.push_back(std::move(a));
    }
  }
  return out;
}

Result<void> Buffer::beginCpuAccess(DmaDirection dir) {
  if (ops().beginCpuAccess) {
    ZBUF_TRY(ops().beginCpuAccess(*this, dir));
  }
  const bool write = dir != DmaDirection::FromDevice;
  ZBUF_TRY(resv().waitTimeout(usageRw(write), Fence::kWaitForever));
  if (CpuMappingGuard* g = state_->guardRaw.load(std::memory_order_acquire)) {
    g->begin(dir);
  }
  return {};
}

Result<void> Buffer::endCpuAccess(DmaDirection dir) {
  if (CpuMappingGuard* g = state_->guardRaw.load(std::memory_order_acquire)) {
    g->end(dir);
  }
  if (ops().endCpuAccess) {
    return ops().endCpuAccess(*this, dir);
  }
  return {};
}

Result<sys::Mapping> Buffer::mmap(std::uint64_t pageOffset, std::uint64_t length, int prot,
                                  int mapFlags) {
  if (!ops().mmap) {
    return Error(
        EINVAL, "dma_buf_mmap",
        fmt::format("buffer {} ({}): the exporter does not support mmap", inode(), exporterName()));
  }
  if (length == 0) {
    return Error(EINVAL, "dma_buf_mmap", fmt::format("buffer {}: length 0", inode()));
  }
  const std::uint64_t page = sys::pageSize();
  const std::uint64_t pages = length / page + (length % page != 0 ? 1 : 0);
  if (pageOffset + pages < pageOffset) {
    return Error(
        EOVERFLOW, "dma_buf_mmap",
        fmt::format("buffer {}: page offset {} + {} pages overflows", inode(), pageOffset, pages));
  }
  if (pageOffset + pages > size() / page) {
    return Error(EINVAL, "dma_buf_mmap",
                 fmt::format("buffer {}: pages [{}, {}) run past its {} pages", inode(), pageOffset,
                             pageOffset + pages, size() / page));
  }
  if ((prot & PROT_WRITE) != 0 && (mapFlags & MAP_SHARED) != 0 &&
      (fileFlags() & O_ACCMODE) == O_RDONLY) {
    return Error(EACCES, "dma_buf_mmap",
                 fmt::format("buffer {}: writable shared mapping of a read-only buffer", inode()));
  }
  auto mapping = ops().mmap(*this, pageOffset, length, prot, mapFlags);
  if (mapping.ok() && cpuAccessChecked()) {
    CpuMappingGuard* g = state_->guardRaw.load(std::memory_order_acquire);
    if (g == nullptr) {
      const MutexLocker lock(state_->guardMutex);
      if (!state_->guard) {
        state_->guard = std::make_shared<CpuMappingGuard>(exporterName(), size(), inode());
        state_->guardRaw.store(state_->guard.get(), std::memory_order_release);
      }
      g = state_->guard.get();
    }
    g->adopt(*mapping, pageOffset * page, prot, name());
  }
  return mapping;
}

void Buffer::setCpuAccessChecked(bool on) noexcept {
  state_->cpuCheck.store(on ? 1 : 0, std::memory_order_relaxed);
}

bool Buffer::cpuAccessChecked() const noexcept {
  const int v = state_->cpuCheck.load(std::memory_order_relaxed);
  return v < 0 ? CpuAccessChecker::enabledByDefault() : v == 1;
}

Result<std::span<std::byte>> Buffer::vmapLocked() {
  resv().assertHeld();
  if (!ops().vmap) {
    return Error(
        EINVAL, "dma_buf_vmap",
        fmt::format("buffer {} ({}): the exporter does not support vmap", inode(), exporterName()));
  }
  State& s = *state_;
  if (s.vmapCount > 0) {
    ++s.vmapCount;
    s.vmapCountSnapshot.store(s.vmapCount);
    return s.vmapSpan;
  }
  ZBUF_ASSIGN_OR_RETURN(auto r, ops().vmap(*this));
  s.vmapSpan = r;
  s.vmapCount = 1;
  s.vmapCountSnapshot.store(1);
  return s.vmapSpan;
}

void Buffer::vunmapLocked() {
  resv().assertHeld();
  State& s = *state_;
  if (s.vmapCount == 0) {
    log(LogBuffer, LogLevel::Warn, "buffer {}: vunmap without vmap", inode());
    return;
  }
  if (--s.vmapCount == 0) {
    if (ops().vunmap) {
      ops().vunmap(*this, s.vmapSpan);
    }
    s.vmapSpan = {};
  }
  s.vmapCountSnapshot.store(s.vmapCount);
}

unsigned Buffer::vmapCount() const noexcept {
  return state_->vmapCountSnapshot.load();
}

// Not const: it announces that the backing storage moved; const would advertise an observer.
// NOLINTNEXTLINE(readability-make-member-function-const): see above
void Buffer::moveNotifyLocked() {
  resv().assertHeld();
  for (const AttachmentPtr& a : attachments()) {
    if (const ImporterOps* imp = a->importerOps()) {
      imp->moveNotify(*a);
    }
  }
}

// --- CpuAccess -------------------------------------------------------------------------------

Result<CpuAccess> CpuAccess::begin(BufferPtr buffer, DmaDirection dir) {
  ZBUF_TRY(buffer->beginCpuAccess(dir));
  CpuAccess access;
  access.buffer_ = std::move(buffer);
  access.dir_ = dir;
  return access;
}

CpuAccess& CpuAccess::operator=(CpuAccess&& other) noexcept {
  if (this != &other) {
    (void)end();
    buffer_ = std::move(other.buffer_);
    dir_ = other.dir_;
  }
  return *this;
}

Result<void> CpuAccess::end() {
  if (!buffer_) {
    return {};
  }
  BufferPtr b = std::move(buffer_);
  buffer_.reset();
  return b->endCpuAccess(dir_);
}

}  // namespace zbuf
