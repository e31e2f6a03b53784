// The numbers are checked against the kernel's own macros from <linux/ioctl.h>.
#include "zbuf/devices/usb/functionfs_uapi.h"

#include <fmt/format.h>
#include <linux/ioctl.h>

#include <cstring>

namespace zbuf::usb {

static_assert(kFunctionfsDmabufAttach == _IOW('g', 131, int));
static_assert(kFunctionfsDmabufDetach == _IOW('g', 132, int));
static_assert(kFunctionfsDmabufTransfer == _IOW('g', 133, DmabufTransferReq));

Result<long> endpointIoctl(EndpointFile& endpoint, unsigned long request, void* arg) {
  constexpr const char* kOp = "ffs_epfile_ioctl";
  const bool dmabuf = request == kFunctionfsDmabufAttach || request == kFunctionfsDmabufDetach ||
                      request == kFunctionfsDmabufTransfer;
  if (!dmabuf || endpoint.isEp0()) {
    return Error(ENOTTY, kOp,
                 fmt::format("ioctl {:#x} is not supported on ep{}", request, endpoint.index()));
  }
  if (arg == nullptr) {
    return Error(EFAULT, kOp, "the argument pointer is null");
  }
  if (request == kFunctionfsDmabufTransfer) {
    DmabufTransferReq req;
    std::memcpy(&req, arg, sizeof(req));
    ZBUF_TRY(endpoint.transferDmabuf(req));
    return 0L;
  }
  int fd = -1;
  std::memcpy(&fd, arg, sizeof(fd));
  if (request == kFunctionfsDmabufAttach) {
    ZBUF_TRY(endpoint.attachDmabuf(fd));
  } else {
    ZBUF_TRY(endpoint.detachDmabuf(fd));
  }
  return 0L;
}

}  // namespace zbuf::usb
