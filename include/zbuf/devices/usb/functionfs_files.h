// A FunctionFS function as files of a context (mount -t functionfs <name> <mountPoint>), with
// the kernel's names and errnos, so an application is written with paths and fd-level calls
// alone (docs/usb.md):
//
//   <mountPoint>/ep0     write: the descriptors, then the strings; read: struct
//                        usb_functionfs_event (whole events; EINVAL below 12 bytes; EAGAIN
//                        when non-blocking and none is queued; EBADFD before the strings);
//                        poll: POLLIN with an event queued, POLLOUT while waiting for
//                        descriptors or strings; ioctl FUNCTIONFS_INTERFACE_REVMAP, others ENOTTY
//   <mountPoint>/ep1...  the data endpoints, present once the function is active (ENOENT
//                        before; "ep%02x" of the address with FUNCTIONFS_VIRTUAL_ADDR): read and
//                        write (fileio), ioctl FUNCTIONFS_DMABUF_ATTACH/DETACH/TRANSFER (fds
//                        resolved through the context), and, after waiting for the endpoint to
//                        be enabled (EAGAIN when non-blocking, ENODEV when unbound),
//                        FUNCTIONFS_ENDPOINT_REVMAP, FUNCTIONFS_ENDPOINT_DESC,
//                        FUNCTIONFS_FIFO_STATUS (EOPNOTSUPP: the emulated controller has no
//                        FIFO), FUNCTIONFS_FIFO_FLUSH and FUNCTIONFS_CLEAR_HALT (0); any other
//                        request waits the same way and is then ENOTTY (ffs_epfile_ioctl)
//
// The check order is the kernel's: the DMABUF requests copy their argument in first (any
// alignment; null EFAULT), then ATTACH checks the controller's scatter-gather support (EPERM)
// before the fd, TRANSFER checks its flags before the fd and the length before the attachment.
// O_NONBLOCK is read from the caller's open file description at every call. Releasing any file
// of a data endpoint (its last close anywhere) detaches every buffer attached to the endpoint;
// releasing the last file of a function whose descriptors came from ep0 resets it (the endpoint
// files disappear; ep0 waits for descriptors again). No llseek (ESPIPE) and no mmap (ENODEV).
//
// Thread-safety: thread-safe.
#pragma once

#include <memory>
#include <string>

#include "zbuf/base/result.h"
#include "zbuf/devices/usb/functionfs.h"
#include "zbuf/uapi/context.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::usb {

// Mounts `function` at `mountPoint` (absolute, e.g. "/dev/usb-ffs/zbuf") in `context`: adds
// <mountPoint>/ep0 at once and the endpoint files whenever the function is active. EBUSY if the
// function is mounted already; EEXIST or EINVAL as Context::addNode. The mount lasts as long as
// the context (there is no umount).
[[nodiscard]] Result<void> mountFunctionFs(uapi::Context& context,
                                           const std::shared_ptr<FunctionFs>& function,
                                           const std::string& mountPoint);

// The kinds of the files (for drivers that recognise one).
[[nodiscard]] const uapi::FileOperations& ep0FileOperations() noexcept;
[[nodiscard]] const uapi::FileOperations& endpointFileOperations() noexcept;

}  // namespace zbuf::usb
#pragma GCC visibility pop
