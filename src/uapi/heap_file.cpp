// The device files /dev/dma_heap/<name> (dma_heap_fops) and /dev/udmabuf (udmabuf_fops): their
// ioctls with the kernel's argument handling, on top of the heaps layer.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "file_kinds.h"
#include "zbuf/heaps/heap.h"
#include "zbuf/heaps/udmabuf.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/user_copy.h"

namespace zbuf::uapi {
namespace {

struct HeapDevice {
  HeapPtr heap;
  std::string path;
};

struct UdmabufDevice {
  Udmabuf udmabuf;  // the kernel's default limits; immutable
};

constexpr const char* kUdmabufPath = "/dev/udmabuf";

Result<long> heapAlloc(const OpenFile& f, Heap& heap, DmaHeapAllocationData& data) {
  constexpr const char* kOp = "DMA_HEAP_IOCTL_ALLOC";
  if (data.fd != 0) {
    return Error(EINVAL, kOp, fmt::format("fd must be 0 on input, not {}", data.fd));
  }
  ZBUF_ASSIGN_OR_RETURN(auto buffer,
                        heap.allocate(data.len, static_cast<int>(data.fdFlags), data.heapFlags));
  ZBUF_ASSIGN_OR_RETURN(
      auto fd, f.context().installBuffer(std::move(buffer), static_cast<int>(data.fdFlags)));
  data.fd = static_cast<std::uint32_t>(fd.release());
  return 0L;
}

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class HeapOps final : public FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "dma_heap"; }

  // dma_heap_ioctl: the number picks the command; the size may differ (zero-extended in,
  // truncated out).
  Result<long> ioctl(const OpenFile& f, unsigned cmd, void* arg) const override {
    constexpr const char* kOp = "DMA_HEAP_IOCTL_ALLOC";
    const unsigned nr = cmd & 0xffU;
    if (nr >= 1) {
      return Error(EINVAL, "dma_heap_ioctl", fmt::format("unknown heap ioctl nr {}", nr));
    }
    const std::size_t userSize = (cmd >> 16) & 0x3fffU;
    const unsigned dir = cmd >> 30;
    const std::size_t inSize = (dir & kIocWrite) != 0 ? userSize : 0;
    const std::size_t outSize = (dir & kIocRead) != 0 ? userSize : 0;
    if ((inSize != 0 || outSize != 0) && arg == nullptr) {
      return Error(EFAULT, kOp, "argument pointer is null");
    }
    DmaHeapAllocationData data{};
    if (inSize != 0) {
      std::memcpy(&data, arg, std::min(inSize, sizeof data));
    }
    auto r = heapAlloc(f, *f.file().data<HeapDevice>().heap, data);
    if (!r.ok()) {
      return r;
    }
    if (outSize != 0) {
      std::memcpy(arg, &data, std::min(outSize, sizeof data));
    }
    return 0L;
  }

  void stat(const File& /*file*/, FileStat& st) const override { st.mode = S_IFCHR | 0600; }

  [[nodiscard]] std::string linkName(const File& file) const override {
    return file.data<HeapDevice>().path;
  }
};

static_assert(IsFileOperations<HeapOps>);
constinit const HeapOps kHeapOps;

// A zbuf file given as a memfd is not a memfd to the kernel (a dma-buf or sync file is not a
// shmem file): EBADFD before anything else looks at it.
Result<void> notZbufFile(const OpenFile& f, int memfd, const char* op) {
  auto file = f.context().lookup(memfd);
  if (file.ok() && *file) {
    return Error(EBADFD, op,
                 fmt::format("fd {} is a {} file, not a memfd", memfd, (*file)->ops().name()));
  }
  return {};
}

Result<long> installUdmabuf(const OpenFile& f, Result<BufferPtr> buffer, std::uint32_t flags) {
  if (!buffer.ok()) {
    return std::move(buffer).error();
  }
  const int fdFlags = O_RDWR | ((flags & kUdmabufFlagsCloexec) != 0 ? O_CLOEXEC : 0);
  ZBUF_ASSIGN_OR_RETURN(auto fd, f.context().installBuffer(std::move(*buffer), fdFlags));
  return static_cast<long>(fd.release());
}

Result<long> udmabufCreate(const OpenFile& f, const Udmabuf& udmabuf, const void* arg) {
  constexpr const char* kOp = "UDMABUF_CREATE";
  ZBUF_ASSIGN_OR_RETURN(auto create, copyFromUser<UdmabufCreate>(arg, kOp));
  const int memfd = static_cast<int>(create.memfd);
  ZBUF_TRY(notZbufFile(f, memfd, kOp));
  return installUdmabuf(f, udmabuf.create(memfd, create.flags, create.offset, create.size),
                        create.flags);
}

Result<long> udmabufCreateList(const OpenFile& f, const Udmabuf& udmabuf, const void* arg) {
  constexpr const char* kOp = "UDMABUF_CREATE_LIST";
  ZBUF_ASSIGN_OR_RETURN(auto list, copyFromUser<UdmabufCreateList>(arg, kOp));
  if (list.count > udmabuf.config().listLimit) {
    return Error(
        EINVAL, kOp,
        fmt::format("count {} over list_limit {}", list.count, udmabuf.config().listLimit));
  }
  // The items follow the header, as in the kernel's flexible array.
  const auto* raw = static_cast<const std::byte*>(arg) + sizeof(UdmabufCreateList);
  std::vector<UdmabufItem> items(list.count);
  for (std::uint32_t i = 0; i < list.count; ++i) {
    UdmabufCreateItem item{};
    std::memcpy(&item, raw + i * sizeof item, sizeof item);
    ZBUF_TRY(notZbufFile(f, static_cast<int>(item.memfd), kOp));
    items[i] = UdmabufItem{static_cast<int>(item.memfd), item.offset, item.size};
  }
  return installUdmabuf(f, udmabuf.createList(list.flags, items), list.flags);
}

// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class UdmabufOps final : public FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "udmabuf"; }

  Result<long> ioctl(const OpenFile& f, unsigned cmd, void* arg) const override {
    const Udmabuf& udmabuf = f.file().data<UdmabufDevice>().udmabuf;
    switch (cmd) {
      case kUdmabufCreate:
        return udmabufCreate(f, udmabuf, arg);
      case kUdmabufCreateList:
        return udmabufCreateList(f, udmabuf, arg);
      default:
        return FileOperations::ioctl(f, cmd, arg);
    }
  }

  void stat(const File& /*file*/, FileStat& st) const override { st.mode = S_IFCHR | 0600; }

  [[nodiscard]] std::string linkName(const File& /*file*/) const override { return kUdmabufPath; }
};

static_assert(IsFileOperations<UdmabufOps>);
constinit const UdmabufOps kUdmabufOps;

}  // namespace

void detail::addHeapNodes(Context& context) {
  for (const HeapPtr& heap : heaps()) {
    auto device = std::make_shared<HeapDevice>(
        HeapDevice{heap, fmt::format("/dev/dma_heap/{}", heap->name())});
    const std::string path = device->path;
    (void)context.addNode(path, [device](Context& ctx, int flags) {
      return ctx.installFile(kHeapOps, device, "dma_heap", flags);
    });
  }
  auto udmabuf = std::make_shared<UdmabufDevice>();
  (void)context.addNode(kUdmabufPath, [udmabuf](Context& ctx, int flags) {
    return ctx.installFile(kUdmabufOps, udmabuf, "udmabuf", flags);
  });
}

}  // namespace zbuf::uapi
