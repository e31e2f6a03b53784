// The function's enable state and the fileio interface. Each data endpoint keeps its seqno
// counter in EndpointState (shared by every open file of the endpoint, like the kernel's
// epfile). A fileio call is synchronous, like the kernel's ffs_epfile_io without AIO: it queues
// one request and sleeps until the link completes it.
#include "zbuf/devices/usb/functionfs.h"

#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "devices/usb/endpoint_state.h"

namespace zbuf::usb {

namespace {
std::atomic<std::uint64_t> gNextFunctionId{1};
}  // namespace

// --- FunctionFs ------------------------------------------------------------------------------

struct FunctionFs::Private {};
struct EndpointFile::Private {};

FunctionFs::FunctionFs(Private /*key*/, FunctionConfig config)
    : config_(std::move(config)), id_(gNextFunctionId.fetch_add(1)) {
  for (EndpointDir dir : config_.endpoints) {
    auto ep = std::make_unique<EndpointState>();
    ep->in = dir == EndpointDir::In;
    eps_.push_back(std::move(ep));
  }
}

std::shared_ptr<FunctionFs> FunctionFs::create(FunctionConfig config) {
  return std::make_shared<FunctionFs>(Private{}, std::move(config));
}

FunctionFs::~FunctionFs() {
  std::shared_ptr<UsbLink> link;
  {
    const std::lock_guard lock(m_);
    link = std::move(link_);
  }
  if (link) {
    link->unbindGadget(id_);
  }
}

unsigned FunctionFs::dataEndpoints() const noexcept {
  return static_cast<unsigned>(eps_.size());
}

Result<void> FunctionFs::bind(std::shared_ptr<UsbLink> link) {
  {
    const std::lock_guard lock(m_);
    if (link_) {
      return Error(EEXIST, "FunctionFs::bind",
                   fmt::format("function '{}' is already bound", config_.name));
    }
  }
  ZBUF_TRY(link->bindGadget(shared_from_this(), id_));
  const std::lock_guard lock(m_);
  link_ = std::move(link);
  return {};
}

void FunctionFs::unbind() {
  std::shared_ptr<UsbLink> link;
  {
    const std::lock_guard lock(m_);
    link = link_;
  }
  if (link) {
    link->unbindGadget(id_);  // calls onDisabled()
  }
  {
    const std::lock_guard lock(m_);
    link_.reset();
  }
  cv_.notify_all();
}

bool FunctionFs::bound() const {
  const std::lock_guard lock(m_);
  return link_ != nullptr;
}

bool FunctionFs::enabled() const {
  const std::lock_guard lock(m_);
  return enabled_;
}

void FunctionFs::onConfigured() {
  {
    const std::lock_guard lock(m_);
    enabled_ = true;
    ++generation_;
  }
  cv_.notify_all();
}

void FunctionFs::onDisabled() {
  {
    const std::lock_guard lock(m_);
    enabled_ = false;
    ++generation_;
  }
  cv_.notify_all();
}

Result<FunctionFs::Enabled> FunctionFs::waitEnabled(bool nonblock) const {
  std::unique_lock lock(m_);
  if (!link_) {
    return Error(ENODEV, "ffs_epfile_wait_ep",
                 fmt::format("function '{}' is not bound to a controller", config_.name));
  }
  if (!enabled_) {
    if (nonblock) {
      return Error(EAGAIN, "ffs_epfile_wait_ep",
                   "the endpoint is not enabled yet (the host has not configured the function)");
    }
    cv_.wait(lock, [&] { return enabled_ || !link_; });
    if (!link_) {
      return Error(ENODEV, "ffs_epfile_wait_ep",
                   fmt::format("function '{}' was unbound while waiting", config_.name));
    }
  }
  return Enabled{link_, generation_};
}

std::shared_ptr<UsbLink> FunctionFs::link() const {
  const std::lock_guard lock(m_);
  return link_;
}

bool FunctionFs::stillEnabled(std::uint64_t generation) const {
  const std::lock_guard lock(m_);
  return enabled_ && generation_ == generation;
}

Result<std::unique_ptr<EndpointFile>> FunctionFs::open(unsigned index, int flags) {
  if (index > eps_.size()) {
    return Error(ENOENT, "FunctionFs::open",
                 fmt::format("function '{}' has no endpoint ep{} (it has ep0..ep{})", config_.name,
                             index, eps_.size()));
  }
  return std::make_unique<EndpointFile>(EndpointFile::Private{}, shared_from_this(), index, flags);
}

// --- EndpointFile: fileio --------------------------------------------------------------------

EndpointFile::EndpointFile(Private /*key*/, std::shared_ptr<FunctionFs> function, unsigned index,
                           int flags)
    : function_(std::move(function)),
      index_(index),
      in_(index != 0 && function_->eps_[index - 1]->in),
      nonblock_((flags & O_NONBLOCK) != 0),
      state_(index == 0 ? nullptr : function_->eps_[index - 1].get()),
      fileio_(std::make_shared<FileioRequest>()) {}

Result<void> EndpointFile::refuseOnEp0(const char* op) const {
  if (isEp0()) {
    return Error(EINVAL, op, "ep0 carries control requests; data goes through ep1 and up");
  }
  return {};
}

namespace {

// Queues the fileio request and waits for its completion; returns the bytes moved.
Result<std::size_t> runFileio(FunctionFs& function, const std::shared_ptr<FileioRequest>& req,
                              const std::shared_ptr<UsbLink>& link, const char* op) {
  req->reset();
  ZBUF_TRY(link->queue(req));
  const auto [status, actual] = req->wait();
  (void)function;
  if (status < 0) {
    return Error(-status, op, fmt::format("the transfer on ep{} failed", req->endpoint));
  }
  return static_cast<std::size_t>(actual);
}

}  // namespace

Result<std::size_t> EndpointFile::write(std::span<const std::byte> data) {
  ZBUF_TRY(refuseOnEp0("ffs_epfile_write"));
  // ffs_epfile_io waits for the endpoint first and only then halts a wrong-direction call.
  auto enabled = function_->waitEnabled(nonblock_);
  ZBUF_TRY(enabled);
  if (!in_) {
    return Error(EBADMSG, "ffs_epfile_write",
                 fmt::format("ep{} is an OUT endpoint: writing halts it", index_));
  }
  if (fileioBuffer_.size() < data.size()) {
    fileioBuffer_.resize(data.size());
  }
  if (!data.empty()) {  // a zero-length write (a ZLP) may come with a null pointer
    std::memcpy(fileioBuffer_.data(), data.data(), data.size());
  }
  FileioRequest& r = *fileio_;
  r.owner = function_->id_;
  r.endpoint = index_;
  r.in = true;
  r.length = data.size();
  r.cpu = std::span(fileioBuffer_).first(data.size());
  return runFileio(*function_, fileio_, enabled->link, "ffs_epfile_write");
}

Result<std::size_t> EndpointFile::read(std::span<std::byte> out) {
  ZBUF_TRY(refuseOnEp0("ffs_epfile_read"));
  auto enabled = function_->waitEnabled(nonblock_);
  ZBUF_TRY(enabled);
  if (in_) {
    return Error(EBADMSG, "ffs_epfile_read",
                 fmt::format("ep{} is an IN endpoint: reading halts it", index_));
  }
  if (fileioBuffer_.size() < out.size()) {
    fileioBuffer_.resize(out.size());
  }
  FileioRequest& r = *fileio_;
  r.owner = function_->id_;
  r.endpoint = index_;
  r.in = false;
  r.length = out.size();
  r.cpu = std::span(fileioBuffer_).first(out.size());
  auto n = runFileio(*function_, fileio_, enabled->link, "ffs_epfile_read");
  ZBUF_TRY(n);
  if (*n != 0) {  // both pointers may be null for a zero-length read
    std::memcpy(out.data(), fileioBuffer_.data(), *n);
  }
  return *n;
}

}  // namespace zbuf::usb
