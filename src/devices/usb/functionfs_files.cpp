// FunctionFS files (functionfs_files.h): each open of an endpoint path is an EndpointFile.
#include "zbuf/devices/usb/functionfs_files.h"

#include <fcntl.h>
#include <fmt/format.h>

#include "zbuf/devices/usb/functionfs_uapi.h"
#include "zbuf/uapi/user_copy.h"

namespace zbuf::usb {
namespace {

using uapi::OpenFile;

struct EndpointNode {
  std::shared_ptr<FunctionFs> function;
  unsigned index;
  std::string path;
};

struct OpenEndpoint {
  std::shared_ptr<EndpointNode> node;
  std::unique_ptr<EndpointFile> file;
};

class EndpointOps final : public uapi::FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "functionfs"; }

  Result<long> ioctl(const OpenFile& f, unsigned cmd, void* arg) const override {
    EndpointFile& ep = *f.file().data<OpenEndpoint>().file;
    ep.setNonblocking(f.nonBlocking());
    // The endpoint resolves fds through the current context: make it this file's.
    const uapi::Context::Scope scope(f.context());
    switch (cmd) {
      case kFunctionfsDmabufAttach:
      case kFunctionfsDmabufDetach: {
        if (ep.isEp0()) {
          return Error(ENOTTY, "ffs_ep0_ioctl", "no DMABUF ioctls on ep0");
        }
        auto fd = uapi::copyFromUser<int>(arg, "ffs_dmabuf_attach");
        if (!fd.ok()) {
          return std::move(fd).error();
        }
        ZBUF_TRY(cmd == kFunctionfsDmabufAttach ? ep.attachDmabuf(*fd) : ep.detachDmabuf(*fd));
        return 0L;
      }
      case kFunctionfsDmabufTransfer: {
        if (ep.isEp0()) {
          return Error(ENOTTY, "ffs_ep0_ioctl", "no DMABUF ioctls on ep0");
        }
        auto req = uapi::copyFromUser<DmabufTransferReq>(arg, "ffs_dmabuf_transfer");
        if (!req.ok()) {
          return std::move(req).error();
        }
        ZBUF_TRY(ep.transferDmabuf(*req));
        return 0L;
      }
      default:
        return FileOperations::ioctl(f, cmd, arg);
    }
  }

  Result<std::size_t> read(const OpenFile& f, std::span<std::byte> out,
                           std::int64_t& /*pos*/) const override {
    EndpointFile& ep = *f.file().data<OpenEndpoint>().file;
    ep.setNonblocking(f.nonBlocking());
    return ep.read(out);
  }

  Result<std::size_t> write(const OpenFile& f, std::span<const std::byte> in,
                            std::int64_t& /*pos*/) const override {
    EndpointFile& ep = *f.file().data<OpenEndpoint>().file;
    ep.setNonblocking(f.nonBlocking());
    return ep.write(in);
  }

  [[nodiscard]] std::string linkName(const uapi::File& file) const override {
    return file.data<OpenEndpoint>().node->path;
  }
};

const EndpointOps kEndpointOps;

}  // namespace

Result<void> mountFunctionFs(uapi::Context& context, std::shared_ptr<FunctionFs> function,
                             const std::string& mountPoint) {
  for (unsigned i = 0; i <= function->dataEndpoints(); ++i) {
    auto node = std::make_shared<EndpointNode>(
        EndpointNode{function, i, fmt::format("{}/ep{}", mountPoint, i)});
    ZBUF_TRY(context.addNode(node->path, [node](uapi::Context& ctx, int flags) -> Result<UniqueFd> {
      auto file = node->function->open(node->index, flags & O_NONBLOCK);
      if (!file.ok()) {
        return std::move(file).error();
      }
      auto open = std::make_shared<OpenEndpoint>(OpenEndpoint{node, std::move(*file)});
      return ctx.installFile(kEndpointOps, std::move(open), "functionfs", flags);
    }));
  }
  return {};
}

}  // namespace zbuf::usb
