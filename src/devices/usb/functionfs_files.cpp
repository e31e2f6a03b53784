// The FunctionFS files (functionfs_files.h): ep0 and the data endpoints as uapi File kinds over
// FunctionFs and EndpointFile, and the mount that adds and removes their nodes.
#include "zbuf/devices/usb/functionfs_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/ioctl.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "zbuf/base/mutex.h"
#include "zbuf/devices/usb/functionfs_uapi.h"
#include "zbuf/uapi/user_copy.h"

#if __has_include(<linux/usb/functionfs.h>)
#include <linux/usb/functionfs.h>
#define ZBUF_HAVE_LINUX_FUNCTIONFS_H 1
#endif

namespace zbuf::usb {

// --- the ABI, checked against the kernel's macros and the system's header -----------------------

static_assert(kFunctionfsFifoStatus == _IO('g', 1));
static_assert(kFunctionfsFifoFlush == _IO('g', 2));
static_assert(kFunctionfsClearHalt == _IO('g', 3));
static_assert(kFunctionfsInterfaceRevmap == _IO('g', 128));
static_assert(kFunctionfsEndpointRevmap == _IO('g', 129));
static_assert(kFunctionfsEndpointDesc == _IOR('g', 130, UsbEndpointDescriptor));
static_assert(kFunctionfsDmabufAttach == _IOW('g', 131, int));
static_assert(kFunctionfsDmabufDetach == _IOW('g', 132, int));
static_assert(kFunctionfsDmabufTransfer == _IOW('g', 133, DmabufTransferReq));
#ifdef ZBUF_HAVE_LINUX_FUNCTIONFS_H
static_assert(kFunctionfsFifoStatus == FUNCTIONFS_FIFO_STATUS);
static_assert(kFunctionfsFifoFlush == FUNCTIONFS_FIFO_FLUSH);
static_assert(kFunctionfsClearHalt == FUNCTIONFS_CLEAR_HALT);
static_assert(kFunctionfsInterfaceRevmap == FUNCTIONFS_INTERFACE_REVMAP);
static_assert(kFunctionfsEndpointRevmap == FUNCTIONFS_ENDPOINT_REVMAP);
static_assert(kFunctionfsEndpointDesc == FUNCTIONFS_ENDPOINT_DESC);
static_assert(kFfsDescriptorsMagic == FUNCTIONFS_DESCRIPTORS_MAGIC);
static_assert(kFfsStringsMagic == FUNCTIONFS_STRINGS_MAGIC);
static_assert(kFfsDescriptorsMagicV2 == FUNCTIONFS_DESCRIPTORS_MAGIC_V2);
static_assert(kFfsHasFsDesc == FUNCTIONFS_HAS_FS_DESC && kFfsHasHsDesc == FUNCTIONFS_HAS_HS_DESC);
static_assert(kFfsHasSsDesc == FUNCTIONFS_HAS_SS_DESC);
static_assert(kFfsHasMsOsDesc == FUNCTIONFS_HAS_MS_OS_DESC);
static_assert(kFfsVirtualAddr == FUNCTIONFS_VIRTUAL_ADDR && kFfsEventfd == FUNCTIONFS_EVENTFD);
static_assert(kFfsAllCtrlRecip == FUNCTIONFS_ALL_CTRL_RECIP);
static_assert(kFfsConfig0Setup == FUNCTIONFS_CONFIG0_SETUP);
static_assert(static_cast<int>(FfsEventType::Bind) == FUNCTIONFS_BIND);
static_assert(static_cast<int>(FfsEventType::Unbind) == FUNCTIONFS_UNBIND);
static_assert(static_cast<int>(FfsEventType::Enable) == FUNCTIONFS_ENABLE);
static_assert(static_cast<int>(FfsEventType::Disable) == FUNCTIONFS_DISABLE);
static_assert(static_cast<int>(FfsEventType::Setup) == FUNCTIONFS_SETUP);
static_assert(static_cast<int>(FfsEventType::Suspend) == FUNCTIONFS_SUSPEND);
static_assert(static_cast<int>(FfsEventType::Resume) == FUNCTIONFS_RESUME);
static_assert(sizeof(UsbFunctionfsEvent) == sizeof(struct usb_functionfs_event));
static_assert(offsetof(struct usb_functionfs_event, type) == offsetof(UsbFunctionfsEvent, type));
static_assert(sizeof(UsbCtrlRequest) == sizeof(struct usb_ctrlrequest));
static_assert(sizeof(UsbEndpointDescriptor) == sizeof(struct usb_endpoint_descriptor));
#endif

namespace {

using uapi::OpenFile;

// What the mount keeps: where its nodes go and which endpoint nodes it added.
struct Mount {
  std::weak_ptr<uapi::Context> context;
  std::weak_ptr<FunctionFs> function;
  std::string mountPoint;
  Mutex mutex;
  std::vector<std::string> endpointPaths ZBUF_GUARDED_BY(mutex);
};

struct Ep0Handle {
  std::shared_ptr<FunctionFs> function;
  std::string path;
};

struct EndpointHandle {
  std::unique_ptr<EndpointFile> endpoint;
  std::string path;
};

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class Ep0Ops final : public uapi::FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "functionfs:ep0"; }

  // ffs_ep0_ioctl: INTERFACE_REVMAP takes the interface number as the argument itself; the
  // emulated controller has no ioctls of its own.
  Result<long> ioctl(const OpenFile& f, unsigned cmd, void* arg) const override {
    if (cmd == kFunctionfsInterfaceRevmap) {
      return f.file().data<Ep0Handle>().function->interfaceRevmap(
          reinterpret_cast<std::uintptr_t>(arg));  // NOLINT(performance-no-int-to-ptr)
    }
    return Error(ENOTTY, "ffs_ep0_ioctl",
                 fmt::format("ioctl {:#x} is not an ep0 request (fd {})", cmd, f.fd()));
  }

  Result<std::size_t> read(const OpenFile& f, std::span<std::byte> out,
                           std::int64_t& /*pos*/) const override {
    return f.file().data<Ep0Handle>().function->ep0Read(out, f.nonBlocking());
  }

  Result<std::size_t> write(const OpenFile& f, std::span<const std::byte> in,
                            std::int64_t& /*pos*/) const override {
    return f.file().data<Ep0Handle>().function->ep0Write(in, f.nonBlocking());
  }

  short poll(const OpenFile& f, short events, uapi::PollTable* table) const override {
    return f.file().data<Ep0Handle>().function->ep0Poll(events, table);
  }

  void stat(const uapi::File& /*file*/, uapi::FileStat& st) const override {
    st.mode = S_IFREG | 0600;  // the mount's default fmode
  }

  [[nodiscard]] std::string linkName(const uapi::File& file) const override {
    return file.data<Ep0Handle>().path;
  }

  // ffs_ep0_release.
  void release(uapi::File& file) const override { file.data<Ep0Handle>().function->fileClosed(); }
};

// ffs_epfile_ioctl after the DMABUF requests: wait for the endpoint, then the request.
Result<long> endpointRequest(const OpenFile& f, EndpointFile& ep, unsigned cmd, void* arg) {
  constexpr const char* kOp = "ffs_epfile_ioctl";
  ZBUF_TRY(ep.waitEnabled());
  switch (cmd) {
    case kFunctionfsFifoStatus:
      return Error(EOPNOTSUPP, "usb_ep_fifo_status", "the emulated controller has no FIFO");
    case kFunctionfsFifoFlush:
    case kFunctionfsClearHalt:
      return 0L;
    case kFunctionfsEndpointRevmap:
      // ffs_epfile_ioctl returns epfile->ep->num, which ffs_func_bind sets to -1 (a u8) and
      // nothing sets again: 255 for every endpoint, as Debian's 6.12 answered in the kernel lane
      // (docs/kernel-lane.md). The endpoint's address is in ENDPOINT_DESC.
      return 255L;
    case kFunctionfsEndpointDesc: {
      const UsbEndpointDescriptor desc = ep.descriptor();
      ZBUF_TRY(uapi::copyToUser(arg, desc, "FUNCTIONFS_ENDPOINT_DESC"));
      return 0L;
    }
    default:
      return Error(ENOTTY, kOp,
                   fmt::format("ioctl {:#x} is not an endpoint request (ep{}, fd {})", cmd,
                               ep.index(), f.fd()));
  }
}

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class EndpointOps final : public uapi::FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "functionfs:ep"; }

  Result<long> ioctl(const OpenFile& f, unsigned cmd, void* arg) const override {
    EndpointFile& ep = *f.file().data<EndpointHandle>().endpoint;
    ep.setNonblocking(f.nonBlocking());
    switch (cmd) {
      case kFunctionfsDmabufAttach: {
        auto fd = uapi::copyFromUser<int>(arg, "FUNCTIONFS_DMABUF_ATTACH");
        ZBUF_TRY(fd);
        ZBUF_TRY(ep.attachDmabuf(f.context(), *fd));
        return 0L;
      }
      case kFunctionfsDmabufDetach: {
        auto fd = uapi::copyFromUser<int>(arg, "FUNCTIONFS_DMABUF_DETACH");
        ZBUF_TRY(fd);
        ZBUF_TRY(ep.detachDmabuf(f.context(), *fd));
        return 0L;
      }
      case kFunctionfsDmabufTransfer: {
        auto req = uapi::copyFromUser<DmabufTransferReq>(arg, "FUNCTIONFS_DMABUF_TRANSFER");
        ZBUF_TRY(req);
        ZBUF_TRY(ep.transferDmabuf(f.context(), *req));
        return 0L;
      }
      default:
        return endpointRequest(f, ep, cmd, arg);
    }
  }

  Result<std::size_t> read(const OpenFile& f, std::span<std::byte> out,
                           std::int64_t& /*pos*/) const override {
    EndpointFile& ep = *f.file().data<EndpointHandle>().endpoint;
    ep.setNonblocking(f.nonBlocking());
    return ep.read(out);
  }

  Result<std::size_t> write(const OpenFile& f, std::span<const std::byte> in,
                            std::int64_t& /*pos*/) const override {
    EndpointFile& ep = *f.file().data<EndpointHandle>().endpoint;
    ep.setNonblocking(f.nonBlocking());
    return ep.write(in);
  }

  void stat(const uapi::File& /*file*/, uapi::FileStat& st) const override {
    st.mode = S_IFREG | 0600;
  }

  [[nodiscard]] std::string linkName(const uapi::File& file) const override {
    return file.data<EndpointHandle>().path;
  }

  // ffs_epfile_release: every buffer attached to the endpoint goes.
  void release(uapi::File& file) const override { file.data<EndpointHandle>().endpoint->close(); }
};

static_assert(uapi::IsFileOperations<Ep0Ops>);
constinit const Ep0Ops kEp0Ops;
static_assert(uapi::IsFileOperations<EndpointOps>);
constinit const EndpointOps kEndpointOps;

// The endpoint files appear: one node per name, ep1 first.
Result<void> addEndpointNodes(const std::shared_ptr<Mount>& mount,
                              const std::vector<std::string>& names) {
  auto ctx = mount->context.lock();
  if (!ctx) {
    return Error(ENODEV, "ffs_epfiles_create", "the mount's context is gone");
  }
  const MutexLocker lock(mount->mutex);
  for (std::size_t i = 0; i < names.size(); ++i) {
    const unsigned index = static_cast<unsigned>(i) + 1;
    std::string path = fmt::format("{}/{}", mount->mountPoint, names[i]);
    std::weak_ptr<FunctionFs> weak = mount->function;
    auto added =
        ctx->addNode(path, [weak, index, path](uapi::Context& c, int flags) -> Result<UniqueFd> {
          auto function = weak.lock();
          if (!function || function->state() != FfsState::Active) {
            return Error(ENOENT, "open", fmt::format("{}: no such file or directory", path));
          }
          auto ep = function->open(index, flags);  // ffs_epfile_open
          if (!ep.ok()) {
            return Error(ENOENT, "open", fmt::format("{}: no such file or directory", path));
          }
          auto handle = std::make_shared<EndpointHandle>(EndpointHandle{std::move(*ep), path});
          return c.installFile(kEndpointOps, std::move(handle), "functionfs:ep", flags);
        });
    if (!added.ok()) {
      for (const std::string& p : mount->endpointPaths) {
        ctx->removeNode(p);
      }
      mount->endpointPaths.clear();
      return added;
    }
    mount->endpointPaths.push_back(std::move(path));
  }
  return {};
}

void removeEndpointNodes(const std::shared_ptr<Mount>& mount) {
  auto ctx = mount->context.lock();
  const MutexLocker lock(mount->mutex);
  if (ctx) {
    for (const std::string& p : mount->endpointPaths) {
      ctx->removeNode(p);
    }
  }
  mount->endpointPaths.clear();
}

}  // namespace

const uapi::FileOperations& ep0FileOperations() noexcept {
  return kEp0Ops;
}

const uapi::FileOperations& endpointFileOperations() noexcept {
  return kEndpointOps;
}

Result<void> mountFunctionFs(uapi::Context& context, const std::shared_ptr<FunctionFs>& function,
                             const std::string& mountPoint) {
  if (!function) {
    return Error(EINVAL, "ffs_fs_mount", "no function");
  }
  std::string root = mountPoint;
  while (root.size() > 1 && root.back() == '/') {
    root.pop_back();
  }
  auto mount = std::make_shared<Mount>();
  mount->context = context.weak_from_this();
  mount->function = function;
  mount->mountPoint = root;
  const std::string ep0 = root + "/ep0";
  ZBUF_TRY(context.addNode(ep0, [function, ep0](uapi::Context& c, int flags) -> Result<UniqueFd> {
    ZBUF_TRY(function->ep0Opened());  // ffs_ep0_open
    auto handle = std::make_shared<Ep0Handle>(Ep0Handle{function, ep0});
    auto fd = c.installFile(kEp0Ops, std::move(handle), "functionfs:ep0", flags);
    if (!fd.ok()) {
      function->fileClosed();
    }
    return fd;
  }));
  std::weak_ptr<Mount> weak = mount;
  auto hooked = function->setFilesHooks(FunctionFs::FilesHooks{
      // The hooks keep the mount alive (the function lives as long as the nodes and the board).
      [mount](const std::vector<std::string>& names) { return addEndpointNodes(mount, names); },
      [weak] {
        if (auto m = weak.lock()) {
          removeEndpointNodes(m);
        }
      }});
  if (!hooked.ok()) {
    context.removeNode(ep0);
    return hooked;
  }
  return {};
}

}  // namespace zbuf::usb
