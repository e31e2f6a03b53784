// The function's binding and enable state, its open-file count (and the reset when the last file
// of a descriptors-from-ep0 function closes), and the fileio interface. Each data endpoint keeps
// its state in an EndpointState shared by every open file of it, like the kernel's epfile. A
// fileio call is synchronous, like the kernel's ffs_epfile_io without AIO: it queues the
// endpoint's request and sleeps until the link completes it.
#include "zbuf/devices/usb/functionfs.h"

#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "devices/usb/endpoint_state.h"
#include "devices/usb/ffs_descriptors.h"

namespace zbuf::usb {

namespace {
std::atomic<std::uint64_t> gNextFunctionId{1};

constexpr std::uint16_t kBulkMaxPacket[3] = {64, 512, 1024};  // full, high, super speed

// The descriptors a built-in endpoint has (bulk, at every speed).
void builtInDescriptors(EndpointState& ep) {
  for (unsigned s = 0; s < 3; ++s) {
    UsbEndpointDescriptor d{};
    d.bLength = 7;
    d.bDescriptorType = kUsbDtEndpoint;
    d.bEndpointAddress = static_cast<std::uint8_t>(ep.index | (ep.in ? kUsbEndpointDirIn : 0));
    d.bmAttributes = kUsbEndpointXferBulk;
    d.wMaxPacketSize = kBulkMaxPacket[s];
    ep.descs[s] = d;
  }
}
}  // namespace

std::shared_ptr<EndpointState> detail::makeEndpointState(unsigned index, bool in) {
  auto ep = std::make_shared<EndpointState>();
  ep->index = index;
  ep->in = in;
  return ep;
}

// --- FunctionFs ------------------------------------------------------------------------------

struct FunctionFs::Private {};
struct EndpointFile::Private {};

FunctionFs::FunctionFs(Private /*key*/, FunctionConfig config)
    : config_(std::move(config)), id_(gNextFunctionId.fetch_add(1)) {
  if (config_.descriptorsFromEp0) {
    state_ = FfsState::ReadDescriptors;
    interfaces_ = 0;
    return;
  }
  for (EndpointDir dir : config_.endpoints) {
    auto ep =
        detail::makeEndpointState(static_cast<unsigned>(eps_.size()) + 1, dir == EndpointDir::In);
    builtInDescriptors(*ep);
    epNames_.push_back(fmt::format("ep{}", ep->index));
    eps_.push_back(std::move(ep));
  }
}

std::shared_ptr<FunctionFs> FunctionFs::create(FunctionConfig config) {
  return std::make_shared<FunctionFs>(Private{}, std::move(config));
}

FunctionFs::~FunctionFs() {
  std::shared_ptr<UsbLink> link;
  {
    const MutexLocker lock(mutex_);
    link = std::move(link_);
  }
  if (link) {
    link->unbindGadget(id_);
  }
}

FfsState FunctionFs::state() const {
  const MutexLocker lock(mutex_);
  return state_;
}

unsigned FunctionFs::dataEndpoints() const {
  const MutexLocker lock(mutex_);
  return static_cast<unsigned>(eps_.size());
}

std::vector<std::string> FunctionFs::endpointFileNames() const {
  const MutexLocker lock(mutex_);
  return epNames_;
}

Result<void> FunctionFs::bindNow(const std::shared_ptr<UsbLink>& link) {
  ZBUF_TRY(link->bindGadget(shared_from_this(), id_));
  {
    const MutexLocker lock(mutex_);
    link_ = link;
  }
  addEvent(FfsEventType::Bind);  // functionfs_bind
  link->connect();
  return {};
}

Result<void> FunctionFs::bind(std::shared_ptr<UsbLink> link) {
  {
    const MutexLocker lock(mutex_);
    if (link_ || pendingLink_) {
      return Error(EEXIST, "FunctionFs::bind",
                   fmt::format("function '{}' is already bound", config_.name));
    }
    if (state_ != FfsState::Active) {
      pendingLink_ = std::move(link);  // bound once the descriptors and strings are in
      return {};
    }
    pendingLink_ = link;
  }
  auto bound = bindNow(link);
  if (!bound.ok()) {
    const MutexLocker lock(mutex_);
    pendingLink_.reset();
  }
  return bound;
}

void FunctionFs::unbind() {
  std::shared_ptr<UsbLink> link;
  {
    const MutexLocker lock(mutex_);
    link = link_;
    pendingLink_.reset();
  }
  if (link) {
    link->unbindGadget(id_);  // calls onDisabled()
  }
  bool wasBound = false;
  {
    const MutexLocker lock(mutex_);
    wasBound = link_ != nullptr;
    link_.reset();
  }
  cv_.notifyAll();
  if (wasBound) {
    addEvent(FfsEventType::Unbind);  // functionfs_unbind
  }
}

bool FunctionFs::bound() const {
  const MutexLocker lock(mutex_);
  return link_ != nullptr;
}

bool FunctionFs::enabled() const {
  const MutexLocker lock(mutex_);
  return enabled_;
}

void FunctionFs::onConfigured() {
  {
    const MutexLocker lock(mutex_);
    enabled_ = true;
    ++generation_;
  }
  cv_.notifyAll();
  addEvent(FfsEventType::Enable);  // ffs_func_set_alt
}

void FunctionFs::onDisabled() {
  bool was = false;
  {
    const MutexLocker lock(mutex_);
    was = enabled_;
    enabled_ = false;
    ++generation_;
  }
  cv_.notifyAll();
  if (was) {
    addEvent(FfsEventType::Disable);  // ffs_func_disable
  }
}

void FunctionFs::onSuspend() {
  addEvent(FfsEventType::Suspend);
}

void FunctionFs::onResume() {
  addEvent(FfsEventType::Resume);
}

Result<FunctionFs::Enabled> FunctionFs::waitEnabled(bool nonblock) const {
  MutexLocker lock(mutex_);
  if (!link_) {
    return Error(ENODEV, "ffs_epfile_wait_ep",
                 fmt::format("function '{}' is not bound to a controller", config_.name));
  }
  if (!enabled_) {
    if (nonblock) {
      return Error(EAGAIN, "ffs_epfile_wait_ep",
                   "the endpoint is not enabled yet (the host has not configured the function)");
    }
    cv_.wait(lock, [&]() ZBUF_REQUIRES(mutex_) { return enabled_ || !link_; });
    if (!link_) {
      return Error(ENODEV, "ffs_epfile_wait_ep",
                   fmt::format("function '{}' was unbound while waiting", config_.name));
    }
  }
  return Enabled{link_, generation_};
}

std::shared_ptr<UsbLink> FunctionFs::link() const {
  const MutexLocker lock(mutex_);
  return link_;
}

bool FunctionFs::stillEnabled(std::uint64_t generation) const {
  const MutexLocker lock(mutex_);
  return enabled_ && generation_ == generation;
}

LinkSpeed FunctionFs::speed() const {
  const MutexLocker lock(mutex_);
  return link_ ? link_->config().speed : LinkSpeed::Unlimited;
}

Result<long> FunctionFs::interfaceRevmap(unsigned long intf) const {
  const MutexLocker lock(mutex_);
  if (!link_) {
    return Error(ENODEV, "ffs_ep0_ioctl", "the function is not bound (no ffs_function)");
  }
  // The function is the configuration's only one: its interfaces keep their numbers.
  if (intf >= interfaces_) {
    return Error(EDOM, "ffs_func_revmap_intf",
                 fmt::format("the function has no interface {}", intf));
  }
  return static_cast<long>(intf);
}

void FunctionFs::fileOpened() {
  const MutexLocker lock(mutex_);
  ++opened_;
}

Result<void> FunctionFs::ep0Opened() {
  const MutexLocker lock(mutex_);
  if (state_ == FfsState::Closing) {
    return Error(EBUSY, "ffs_ep0_open", fmt::format("function '{}' is closing", config_.name));
  }
  ++opened_;
  return {};
}

void FunctionFs::fileClosed() {
  {
    const MutexLocker lock(mutex_);
    if (--opened_ > 0 || !config_.descriptorsFromEp0) {
      return;
    }
    state_ = FfsState::Closing;
  }
  reset();
}

// ffs_data_reset after the last close: unbind (ffs_closed), drop the endpoint files, forget the
// descriptors and events, wait for descriptors again.
void FunctionFs::reset() {
  std::shared_ptr<UsbLink> link;
  std::function<void()> destroyed;
  {
    const MutexLocker lock(mutex_);
    link = link_;
    destroyed = hooks_.destroyed;
  }
  if (link) {
    link->unbindGadget(id_);
  }
  if (destroyed) {
    destroyed();
  }
  {
    const MutexLocker lock(mutex_);
    link_.reset();
    eps_.clear();
    epNames_.clear();
    descs_.reset();
    userFlags_ = 0;
    interfaces_ = 0;
    stringsNeeded_ = 0;
    state_ = FfsState::ReadDescriptors;
    const MutexLocker evLock(evMutex_);
    events_.clear();
    eventfd_.reset();
  }
  cv_.notifyAll();
}

Result<void> FunctionFs::setFilesHooks(FilesHooks hooks) {
  std::vector<std::string> names;
  std::function<Result<void>(const std::vector<std::string>&)> created;
  {
    const MutexLocker lock(mutex_);
    if (mounted_) {
      return Error(EBUSY, "ffs_acquire_dev",
                   fmt::format("function '{}' is already mounted", config_.name));
    }
    mounted_ = true;
    hooks_ = std::move(hooks);
    created = hooks_.created;
    if (state_ == FfsState::Active) {
      names = epNames_;
    }
  }
  if (!names.empty() && created) {
    return created(names);
  }
  return {};
}

Result<std::unique_ptr<EndpointFile>> FunctionFs::open(unsigned index, int flags) {
  std::shared_ptr<EndpointState> ep;
  {
    const MutexLocker lock(mutex_);
    if (index == 0 || index > eps_.size()) {
      return Error(ENOENT, "FunctionFs::open",
                   fmt::format("function '{}' has no endpoint file ep{} ({} data endpoints)",
                               config_.name, index, eps_.size()));
    }
    ep = eps_[index - 1];
  }
  return std::make_unique<EndpointFile>(EndpointFile::Private{}, shared_from_this(), std::move(ep),
                                        index, flags);
}

// --- EndpointFile: fileio --------------------------------------------------------------------

EndpointFile::EndpointFile(Private /*key*/, std::shared_ptr<FunctionFs> function,
                           std::shared_ptr<EndpointState> state, unsigned index, int flags)
    : function_(std::move(function)),
      state_(std::move(state)),
      index_(index),
      nonblock_((flags & O_NONBLOCK) != 0) {
  function_->fileOpened();
}

EndpointFile::~EndpointFile() {
  close();
}

void EndpointFile::close() {
  if (closed_.exchange(true)) {
    return;
  }
  detachAll();
  function_->fileClosed();
}

bool EndpointFile::isIn() const noexcept {
  return state_->in;
}

std::uint8_t EndpointFile::address() const noexcept {
  return static_cast<std::uint8_t>(index_ | (state_->in ? kUsbEndpointDirIn : 0));
}

Result<void> EndpointFile::waitEnabled() const {
  auto enabled = function_->waitEnabled(nonblocking());
  ZBUF_TRY(enabled);
  return {};
}

UsbEndpointDescriptor EndpointFile::descriptor() const {
  // config_ep_by_speed: the link's speed, else the next lower one the function describes.
  const std::size_t preferred = function_->speed() == LinkSpeed::Usb2 ? 1 : 2;
  std::optional<UsbEndpointDescriptor> found;
  for (std::size_t s = preferred + 1; s-- > 0 && !found;) {
    found = state_->descs[s];
  }
  for (std::size_t s = preferred + 1; s < 3 && !found; ++s) {
    found = state_->descs[s];
  }
  UsbEndpointDescriptor d = found.value_or(UsbEndpointDescriptor{});
  bool virtualAddr = false;
  {
    const MutexLocker lock(function_->mutex_);
    virtualAddr = (function_->userFlags_ & kFfsVirtualAddr) != 0;
  }
  if (!virtualAddr) {
    d.bEndpointAddress = address();
  }
  return d;
}

namespace {

// Queues the fileio request and waits for its completion; returns the bytes moved.
Result<std::size_t> runFileio(const std::shared_ptr<FileioRequest>& req,
                              const std::shared_ptr<UsbLink>& link, const char* op) {
  req->reset();
  ZBUF_TRY(link->queue(req));
  const auto [status, actual] = req->wait();
  if (status < 0) {
    return Error(-status, op, fmt::format("the transfer on ep{} failed", req->endpoint));
  }
  return static_cast<std::size_t>(actual);
}

// ffs_mutex_lock on the endpoint's mutex failed: trylock (non-blocking) found it taken.
Error fileioBusy(const EndpointState& ep, const char* op) {
  return Error(EAGAIN, op, fmt::format("another call is using ep{} (non-blocking)", ep.index));
}

}  // namespace

Result<std::size_t> EndpointFile::write(std::span<const std::byte> data) {
  constexpr const char* kOp = "ffs_epfile_write";
  const bool nonblock = nonblocking();
  auto enabled = function_->waitEnabled(nonblock);
  ZBUF_TRY(enabled);
  if (!state_->fileioMutex.lockUnlessNonblock(nonblock)) {
    return fileioBusy(*state_, kOp);
  }
  const MutexLocker lock(state_->fileioMutex, std::adopt_lock);
  if (!function_->stillEnabled(enabled->generation)) {
    return Error(ESHUTDOWN, kOp, fmt::format("ep{} was disabled meanwhile", index_));
  }
  if (!state_->in) {
    return Error(EBADMSG, kOp, fmt::format("ep{} is an OUT endpoint: writing halts it", index_));
  }
  auto& buffer = state_->fileioBuffer;
  if (buffer.size() < data.size()) {
    buffer.resize(data.size());
  }
  if (!data.empty()) {  // a zero-length write (a ZLP) may come with a null pointer
    std::memcpy(buffer.data(), data.data(), data.size());
  }
  FileioRequest& r = *state_->fileio;
  r.owner = function_->id_;
  r.endpoint = index_;
  r.in = true;
  r.length = data.size();
  r.cpu = std::span(buffer).first(data.size());
  return runFileio(state_->fileio, enabled->link, kOp);
}

Result<std::size_t> EndpointFile::read(std::span<std::byte> out) {
  constexpr const char* kOp = "ffs_epfile_read";
  const bool nonblock = nonblocking();
  auto enabled = function_->waitEnabled(nonblock);
  ZBUF_TRY(enabled);
  if (!state_->fileioMutex.lockUnlessNonblock(nonblock)) {
    return fileioBusy(*state_, kOp);
  }
  const MutexLocker lock(state_->fileioMutex, std::adopt_lock);
  if (!function_->stillEnabled(enabled->generation)) {
    return Error(ESHUTDOWN, kOp, fmt::format("ep{} was disabled meanwhile", index_));
  }
  if (state_->in) {
    return Error(EBADMSG, kOp, fmt::format("ep{} is an IN endpoint: reading halts it", index_));
  }
  auto& buffer = state_->fileioBuffer;
  if (buffer.size() < out.size()) {
    buffer.resize(out.size());
  }
  FileioRequest& r = *state_->fileio;
  r.owner = function_->id_;
  r.endpoint = index_;
  r.in = false;
  r.length = out.size();
  r.cpu = std::span(buffer).first(out.size());
  auto n = runFileio(state_->fileio, enabled->link, kOp);
  ZBUF_TRY(n);
  if (*n != 0) {  // both pointers may be null for a zero-length read
    std::memcpy(out.data(), buffer.data(), *n);
  }
  return *n;
}

}  // namespace zbuf::usb
