// The fd-level IIO files: a registry from (st_dev, st_ino) of a private memfd to the device or
// buffer file it stands for.
#include "zbuf/uapi/context.h"
#include "zbuf/devices/iio/iio_ioctl.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>

#include <map>
#include <mutex>
#include <variant>

#include "zbuf/base/sys.h"

namespace zbuf::iio {
namespace {

struct Key {
  std::uint64_t device;
  std::uint64_t inode;
  friend bool operator<(const Key& a, const Key& b) {
    return a.device != b.device ? a.device < b.device : a.inode < b.inode;
  }
};

using Target = std::variant<std::shared_ptr<IioDevice>, std::shared_ptr<IioBufferFile>>;

struct Registry {
  std::mutex m;  // guards files
  std::map<Key, Target> files;
};

Registry& registry() {
  static Registry r;
  return r;
}

Result<Key> keyOf(int fd) {
  if (fd < 0) {
    return Error(EBADF, "iio_file", fmt::format("fd {} is not open", fd));
  }
  auto st = sys::fstat(fd);
  if (!st.ok()) {
    return Error(EBADF, "iio_file", fmt::format("fd {} is not open", fd));
  }
  return Key{st->device, st->inode};
}

Result<Target> lookup(int fd) {
  auto key = keyOf(fd);
  if (!key.ok()) {
    return std::move(key).error();
  }
  Registry& r = registry();
  const std::lock_guard lock(r.m);
  auto it = r.files.find(*key);
  if (it == r.files.end()) {
    return Error(ENOTTY, "iio_ioctl", fmt::format("fd {} is not an IIO device or buffer", fd));
  }
  return it->second;
}

Result<UniqueFd> registerFile(const char* name, Target target) {
  auto fd = sys::memfdCreate(name, MFD_CLOEXEC);
  if (!fd.ok()) {
    return std::move(fd).error();
  }
  auto key = keyOf(fd->get());
  if (!key.ok()) {
    return std::move(key).error();
  }
  Registry& r = registry();
  const std::lock_guard lock(r.m);
  r.files.emplace(*key, std::move(target));
  return std::move(*fd);
}

bool nonBlocking(int fd) {
  auto flags = sys::getFileFlags(fd);
  return flags.ok() && (*flags & O_NONBLOCK) != 0;
}

Result<std::shared_ptr<IioBufferFile>> bufferFile(int fd, const char* op) {
  auto target = lookup(fd);
  if (!target.ok()) {
    return std::move(target).error();
  }
  if (auto* file = std::get_if<std::shared_ptr<IioBufferFile>>(&*target)) {
    (*file)->setNonBlocking(nonBlocking(fd));
    return *file;
  }
  return Error(EINVAL, op, "not a buffer fd");
}

Result<long> deviceIoctl(const std::shared_ptr<IioDevice>& device, unsigned long request,
                         void* arg) {
  if (request != kGetFdIoctl) {
    return Error(ENODEV, "iio_ioctl", fmt::format("unhandled ioctl {:#x}", request));
  }
  if (arg == nullptr) {
    return Error(EFAULT, "iio_device_buffer_getfd", "null argument");
  }
  int* inout = static_cast<int*>(arg);
  if (*inout < 0) {
    return Error(ENODEV, "iio_device_buffer_getfd", fmt::format("no buffer {}", *inout));
  }
  auto file = device->openBuffer(static_cast<unsigned>(*inout));
  if (!file.ok()) {
    return std::move(file).error();
  }
  auto fd = registerFile("iio:buffer", std::shared_ptr<IioBufferFile>(std::move(*file)));
  if (!fd.ok()) {
    return std::move(fd).error();
  }
  *inout = fd->release();
  return 0L;
}

Result<long> bufferIoctl(int fd, unsigned long request, void* arg) {
  auto file = bufferFile(fd, "iio_buffer_ioctl");
  if (!file.ok()) {
    return std::move(file).error();
  }
  IioBufferFile& f = **file;
  if (request != kDmabufAttachIoctl && request != kDmabufDetachIoctl &&
      request != kDmabufEnqueueIoctl) {
    return Error(EINVAL, "iio_buffer_ioctl", fmt::format("unknown ioctl {:#x}", request));
  }
  if (arg == nullptr) {
    return Error(EFAULT, "iio_buffer_ioctl", "null argument");
  }
  if (request == kDmabufEnqueueIoctl) {
    const auto& req = *static_cast<const iio_dmabuf*>(arg);
    // The kernel checks the flags before it looks the fd up.
    if ((req.flags & ~kDmabufSupportedFlags) != 0) {
      return Error(EINVAL, "iio_buffer_enqueue_dmabuf",
                   fmt::format("unknown flags {:#x}", req.flags));
    }
    if ((req.flags & kDmabufCyclic) != 0 && f.buffer().isInput()) {
      return Error(EINVAL, "iio_buffer_enqueue_dmabuf", "CYCLIC is only supported on output");
    }
    auto buffer = uapi::Context::current().bufferFromFd(static_cast<int>(req.fd));
    if (!buffer.ok()) {
      return std::move(buffer).error();
    }
    auto fence = f.enqueue(**buffer, req.bytes_used, req.flags);
    if (!fence.ok()) {
      return std::move(fence).error();
    }
    return 0L;
  }
  auto buffer = uapi::Context::current().bufferFromFd(*static_cast<const int*>(arg));
  if (!buffer.ok()) {
    return std::move(buffer).error();
  }
  if (request == kDmabufAttachIoctl) {
    ZBUF_TRY(f.attach(*buffer));
  } else {
    ZBUF_TRY(f.detach(**buffer));
  }
  return 0L;
}

}  // namespace

Result<UniqueFd> openDeviceFd(std::shared_ptr<IioDevice> device) {
  if (!device) {
    return Error(ENODEV, "iio_chrdev_open", "no device");
  }
  return registerFile("iio:device", std::move(device));
}

Result<long> ioctl(int fd, unsigned long request, void* arg) {
  auto target = lookup(fd);
  if (!target.ok()) {
    return std::move(target).error();
  }
  if (auto* device = std::get_if<std::shared_ptr<IioDevice>>(&*target)) {
    return deviceIoctl(*device, request, arg);
  }
  return bufferIoctl(fd, request, arg);
}

Result<std::size_t> read(int fd, std::span<std::byte> out) {
  auto file = bufferFile(fd, "iio_buffer_read");
  if (!file.ok()) {
    return std::move(file).error();
  }
  return (*file)->read(out);
}

Result<std::size_t> write(int fd, std::span<const std::byte> in) {
  auto file = bufferFile(fd, "iio_buffer_write");
  if (!file.ok()) {
    return std::move(file).error();
  }
  return (*file)->write(in);
}

Result<void> close(int fd) {
  auto key = keyOf(fd);
  if (!key.ok()) {
    return std::move(key).error();
  }
  Target released;
  {
    Registry& r = registry();
    const std::lock_guard lock(r.m);
    auto it = r.files.find(*key);
    if (it != r.files.end()) {
      released = std::move(it->second);
      r.files.erase(it);
    }
  }
  UniqueFd::adopt(fd).reset();
  return {};  // `released` goes here, outside the registry lock
}

Result<std::shared_ptr<IioBufferFile>> bufferFileFromFd(int fd) {
  return bufferFile(fd, "iio_buffer_file");
}

}  // namespace zbuf::iio
