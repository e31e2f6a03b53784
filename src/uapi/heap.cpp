// Heap and udmabuf device fds: a registry of placeholder memfds (one per heap name, one for
// udmabuf), keyed by their file, and the ioctls the kernel's dma-heap and udmabuf drivers
// implement, on top of the heaps layer.
#include "zbuf/uapi/heap.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "file_key.h"
#include "zbuf/base/sys.h"
#include "zbuf/heaps/heap.h"
#include "zbuf/heaps/udmabuf.h"
#include "zbuf/uapi/buffer_fd.h"

namespace zbuf::uapi {
namespace {

using Key = detail::FileKey;

struct Device {
  DeviceKind kind = DeviceKind::None;
  HeapPtr heap;  // kind Heap
};

struct Devices {
  std::mutex mutex;                         // guards every member
  std::map<std::string, UniqueFd> masters;  // device name -> the fd open*() dups
  std::map<Key, Device> byFile;
  Udmabuf udmabuf;  // the kernel's default limits; immutable
};

// Never destroyed: device fds may be used during static destruction.
Devices& devices() {
  static Devices* d = new Devices;
  return *d;
}

// A dup of the device `name`'s fd, creating and registering it on first use.
Result<UniqueFd> openDevice(const std::string& name, Device device) {
  Devices& d = devices();
  const std::lock_guard lock(d.mutex);
  auto it = d.masters.find(name);
  if (it == d.masters.end()) {
    auto memfd = sys::memfdCreate(name.c_str(), MFD_CLOEXEC);
    if (!memfd.ok()) {
      return std::move(memfd).error();
    }
    auto key = detail::fileKeyOf(memfd->get());
    if (!key.ok()) {
      return std::move(key).error();
    }
    d.byFile.emplace(*key, std::move(device));
    it = d.masters.emplace(name, std::move(*memfd)).first;
  }
  return sys::dup(it->second.get());
}

Result<Device> deviceOf(int fd) {
  auto key = detail::fileKeyOf(fd);
  if (!key.ok()) {
    return std::move(key).error();
  }
  Devices& d = devices();
  const std::lock_guard lock(d.mutex);
  auto it = d.byFile.find(*key);
  if (it == d.byFile.end()) {
    return Error(ENOTTY, "ioctl", fmt::format("fd {} is not a zbuf device", fd));
  }
  return it->second;
}

Result<HeapPtr> heapOf(int fd, const char* op) {
  auto device = deviceOf(fd);
  if (!device.ok() || device->kind != DeviceKind::Heap) {
    return Error(ENOTTY, op, fmt::format("fd {} is not a heap device", fd));
  }
  return device->heap;
}

Result<void> udmabufOf(int fd, const char* op) {
  auto device = deviceOf(fd);
  if (!device.ok() || device->kind != DeviceKind::Udmabuf) {
    return Error(ENOTTY, op, fmt::format("fd {} is not the udmabuf device", fd));
  }
  return {};
}

Result<UniqueFd> installUdmabuf(Result<BufferPtr> buffer, std::uint32_t flags) {
  if (!buffer.ok()) {
    return std::move(buffer).error();
  }
  const int fdFlags = O_RDWR | ((flags & kUdmabufFlagsCloexec) != 0 ? O_CLOEXEC : 0);
  return installBuffer(std::move(*buffer), fdFlags);
}

// dma_heap_ioctl: the number picks the command, the size may differ (zero-extended).
Result<long> heapIoctl(int fd, unsigned long request, void* arg) {
  constexpr const char* kOp = "DMA_HEAP_IOCTL_ALLOC";
  const unsigned long nr = request & 0xff;
  if (nr >= 1) {
    return Error(EINVAL, "dma_heap_ioctl", fmt::format("unknown heap ioctl nr {}", nr));
  }
  const std::size_t userSize = (request >> 16) & 0x3fff;
  const unsigned long dir = request >> 30;
  const std::size_t inSize = (dir & kIocWrite) != 0 ? userSize : 0;
  const std::size_t outSize = (dir & kIocRead) != 0 ? userSize : 0;
  if ((inSize != 0 || outSize != 0) && arg == nullptr) {
    return Error(EFAULT, kOp, "argument pointer is null");
  }
  DmaHeapAllocationData data{};
  if (inSize != 0) {
    std::memcpy(&data, arg, std::min(inSize, sizeof data));
  }
  ZBUF_TRY(heapAlloc(fd, &data));
  if (outSize != 0) {
    std::memcpy(arg, &data, std::min(outSize, sizeof data));
  }
  return 0L;
}

Result<long> udmabufIoctl(int fd, unsigned long request, void* arg) {
  Result<UniqueFd> created = Error(ENOTTY, "udmabuf_ioctl", "unknown request");
  switch (request) {
    case kUdmabufCreate:
      created = udmabufCreate(fd, static_cast<const UdmabufCreate*>(arg));
      break;
    case kUdmabufCreateList:
      created = udmabufCreateList(fd, static_cast<const UdmabufCreateList*>(arg));
      break;
    default:
      return Error(ENOTTY, "udmabuf_ioctl",
                   fmt::format("request {:#x} is not a udmabuf ioctl", request));
  }
  if (!created.ok()) {
    return std::move(created).error();
  }
  return static_cast<long>(created->release());
}

}  // namespace

Result<UniqueFd> openHeap(std::string_view name) {
  auto heap = findHeap(name);
  if (!heap.ok()) {
    return Error(ENOENT, "open", fmt::format("/dev/dma_heap/{}: no such heap", name));
  }
  return openDevice(fmt::format("dma_heap:{}", name), Device{DeviceKind::Heap, *heap});
}

Result<UniqueFd> openUdmabuf() {
  return openDevice("udmabuf", Device{DeviceKind::Udmabuf, {}});
}

Result<void> heapAlloc(int heapFd, DmaHeapAllocationData* data) {
  constexpr const char* kOp = "DMA_HEAP_IOCTL_ALLOC";
  auto heap = heapOf(heapFd, kOp);
  if (!heap.ok()) {
    return std::move(heap).error();
  }
  if (data == nullptr) {
    return Error(EFAULT, kOp, "argument pointer is null");
  }
  if (data->fd != 0) {
    return Error(EINVAL, kOp, fmt::format("fd must be 0 on input, not {}", data->fd));
  }
  auto buffer = (*heap)->allocate(data->len, static_cast<int>(data->fdFlags), data->heapFlags);
  if (!buffer.ok()) {
    return std::move(buffer).error();
  }
  auto fd = installBuffer(std::move(*buffer), static_cast<int>(data->fdFlags));
  if (!fd.ok()) {
    return std::move(fd).error();
  }
  data->fd = static_cast<std::uint32_t>(fd->release());
  return {};
}

Result<UniqueFd> udmabufCreate(int udmabufFd, const UdmabufCreate* create) {
  constexpr const char* kOp = "UDMABUF_CREATE";
  ZBUF_TRY(udmabufOf(udmabufFd, kOp));
  if (create == nullptr) {
    return Error(EFAULT, kOp, "argument pointer is null");
  }
  return installUdmabuf(devices().udmabuf.create(static_cast<int>(create->memfd), create->flags,
                                                 create->offset, create->size),
                        create->flags);
}

Result<UniqueFd> udmabufCreateList(int udmabufFd, const UdmabufCreateList* list) {
  constexpr const char* kOp = "UDMABUF_CREATE_LIST";
  ZBUF_TRY(udmabufOf(udmabufFd, kOp));
  if (list == nullptr) {
    return Error(EFAULT, kOp, "argument pointer is null");
  }
  const Udmabuf& udmabuf = devices().udmabuf;
  if (list->count > udmabuf.config().listLimit) {
    return Error(
        EINVAL, kOp,
        fmt::format("count {} over list_limit {}", list->count, udmabuf.config().listLimit));
  }
  // The items follow the header, as in the kernel's flexible array.
  const auto* raw = reinterpret_cast<const UdmabufCreateItem*>(list + 1);
  std::vector<UdmabufItem> items(list->count);
  for (std::uint32_t i = 0; i < list->count; ++i) {
    UdmabufCreateItem item{};
    std::memcpy(&item, raw + i, sizeof item);
    items[i] = UdmabufItem{static_cast<int>(item.memfd), item.offset, item.size};
  }
  return installUdmabuf(udmabuf.createList(list->flags, items), list->flags);
}

Result<UniqueFd> allocate(std::string_view heap, std::uint64_t len, std::uint32_t fdFlags) {
  auto heapFd = openHeap(heap);
  if (!heapFd.ok()) {
    return std::move(heapFd).error();
  }
  DmaHeapAllocationData data{};
  data.len = len;
  data.fdFlags = fdFlags;
  ZBUF_TRY(heapAlloc(heapFd->get(), &data));
  return UniqueFd::adopt(static_cast<int>(data.fd));
}

DeviceKind deviceKind(int fd) {
  auto device = deviceOf(fd);
  return device.ok() ? device->kind : DeviceKind::None;
}

Result<long> deviceIoctl(int fd, unsigned long request, void* arg) {
  switch (deviceKind(fd)) {
    case DeviceKind::Heap:
      return heapIoctl(fd, request, arg);
    case DeviceKind::Udmabuf:
      return udmabufIoctl(fd, request, arg);
    case DeviceKind::None:
      break;
  }
  return Error(ENOTTY, "ioctl", fmt::format("fd {} is not a zbuf device", fd));
}

}  // namespace zbuf::uapi
