// vgem, the kernel's virtual GEM driver, as IGT uses it: buffers exported as real dma-bufs
// (PRIME) and fences attached to them that the test signals by ioctl (or that time out after
// 10 s and signal). The lane loads it (scripts/qemu-lane.sh) so the real kernel has pending
// fences: Debian's kernel has no sw_sync. The structs are the kernel's (include/uapi/drm/drm.h,
// drm_mode.h, vgem_drm.h); zbuf emulates no DRM device, so they live here, beside the one test
// that drives a real one, not in zbuf's ABI header.
#pragma once

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "zbuf/base/result.h"
#include "zbuf/base/sys.h"
#include "zbuf/base/unique_fd.h"

namespace zbuf::lane {

struct DrmModeCreateDumb {  // struct drm_mode_create_dumb
  std::uint32_t height, width, bpp, flags;
  std::uint32_t handle, pitch;  // out
  std::uint64_t size;           // out
};
struct DrmPrimeHandle {  // struct drm_prime_handle
  std::uint32_t handle;
  std::uint32_t flags;  // DRM_CLOEXEC | DRM_RDWR: O_CLOEXEC | O_RDWR
  std::int32_t fd;      // out
};
struct VgemFenceAttach {  // struct drm_vgem_fence_attach
  std::uint32_t handle;
  std::uint32_t flags;  // VGEM_FENCE_WRITE
  std::uint32_t outFence;
  std::uint32_t pad;
};
struct VgemFenceSignal {  // struct drm_vgem_fence_signal
  std::uint32_t fence;
  std::uint32_t flags;
};
inline constexpr std::uint32_t kVgemFenceWrite = 0x1;
inline constexpr unsigned long kDrmIoctlModeCreateDumb = _IOWR('d', 0xB2, DrmModeCreateDumb);
inline constexpr unsigned long kDrmIoctlPrimeHandleToFd = _IOWR('d', 0x2d, DrmPrimeHandle);
inline constexpr unsigned long kDrmIoctlVgemFenceAttach = _IOWR('d', 0x41, VgemFenceAttach);
inline constexpr unsigned long kDrmIoctlVgemFenceSignal = _IOW('d', 0x42, VgemFenceSignal);
static_assert(sizeof(DrmModeCreateDumb) == 32 && sizeof(DrmPrimeHandle) == 12);
static_assert(kDrmIoctlModeCreateDumb == 0xC02064B2UL && kDrmIoctlPrimeHandleToFd == 0xC00C642DUL);
static_assert(kDrmIoctlVgemFenceAttach == 0xC0106441UL && kDrmIoctlVgemFenceSignal == 0x40086442UL);

// The vgem device (the lane's VM has no other DRM device: QEMU runs with -vga none).
class Vgem {
 public:
  static Result<Vgem> open(const char* path = "/dev/dri/card0") {
    ZBUF_ASSIGN_OR_RETURN(auto fd, sys::open(path, O_RDWR));
    return Vgem(std::move(fd));
  }
  // A buffer of `bytes` (a multiple of 4096), exported as a real dma-buf fd; its handle in
  // `handle`.
  Result<UniqueFd> createDmaBuf(std::uint32_t bytes, std::uint32_t& handle) {
    DrmModeCreateDumb dumb{1, bytes / 4, 32, 0, 0, 0, 0};
    ZBUF_TRY(sys::ioctl(fd_.get(), kDrmIoctlModeCreateDumb, &dumb));
    handle = dumb.handle;
    DrmPrimeHandle prime{handle, O_CLOEXEC | O_RDWR, -1};
    ZBUF_TRY(sys::ioctl(fd_.get(), kDrmIoctlPrimeHandleToFd, &prime));
    return UniqueFd::adopt(prime.fd);
  }
  // Attaches a new unsignalled fence to the buffer (a writer with kVgemFenceWrite); its id.
  Result<std::uint32_t> attachFence(std::uint32_t handle, std::uint32_t flags) {
    VgemFenceAttach arg{handle, flags, 0, 0};
    ZBUF_TRY(sys::ioctl(fd_.get(), kDrmIoctlVgemFenceAttach, &arg));
    return arg.outFence;
  }
  Result<void> signal(std::uint32_t fence) {
    VgemFenceSignal arg{fence, 0};
    ZBUF_TRY(sys::ioctl(fd_.get(), kDrmIoctlVgemFenceSignal, &arg));
    return {};
  }

 private:
  explicit Vgem(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace zbuf::lane
