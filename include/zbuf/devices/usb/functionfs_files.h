// A FunctionFS function as files of a context: the mount's ep0 and data endpoints ep1, ep2, ...
// (docs/usb.md). Opening a data endpoint gives a file whose read/write are fileio and whose
// ioctls are FUNCTIONFS_DMABUF_ATTACH/DETACH/TRANSFER with fds resolved through the context.
//
// Thread-safety: thread-safe.
#pragma once

#include <memory>
#include <string>

#include "zbuf/base/result.h"
#include "zbuf/devices/usb/functionfs.h"
#include "zbuf/uapi/context.h"

namespace zbuf::usb {

// Registers `<mountPoint>/ep0` and one node per data endpoint. EEXIST if a path is taken.
[[nodiscard]] Result<void> mountFunctionFs(uapi::Context& context,
                                           std::shared_ptr<FunctionFs> function,
                                           const std::string& mountPoint);

}  // namespace zbuf::usb
