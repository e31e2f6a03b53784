// udmabuf through device fds and the kernel's structs: behaviour and every errno (reference
// section 7).
#include "zbuf/uapi/udmabuf.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>
#include <sys/mman.h>

#include <cstring>
#include <vector>

#include "zbuf/base/sys.h"
#include "zbuf/core/buffer.h"
#include "zbuf/uapi/calls.h"
#include "zbuf/uapi/dma_buf.h"
#include "zbuf/uapi/heap.h"

namespace zbuf::uapi {
namespace {

// A sealed memfd of `size` bytes, as udmabuf wants it.
UniqueFd sealedMemfd(std::uint64_t size, int seals = F_SEAL_SHRINK) {
  auto fd = sys::memfdCreate("udmabuf-src", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  EXPECT_TRUE(fd.ok());
  EXPECT_TRUE(sys::ftruncate(fd->get(), static_cast<off_t>(size)).ok());
  if (seals != 0) {
    EXPECT_TRUE(sys::addSeals(fd->get(), seals).ok());
  }
  return std::move(*fd);
}

TEST(UapiUdmabuf, CreateSharesTheCallersPages) {
  UniqueFd memfd = sealedMemfd(8192);
  auto dev = openUdmabuf();
  ASSERT_TRUE(dev.ok());
  udmabuf_create create{static_cast<__u32>(memfd.get()), UDMABUF_FLAGS_CLOEXEC, 4096, 4096};
  auto r = ioctl(dev->get(), UDMABUF_CREATE, &create);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  UniqueFd buf = UniqueFd::adopt(static_cast<int>(*r));
  EXPECT_EQ(*sys::getFdFlags(buf.get()) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(*size(buf.get()), 4096U);
  auto src = sys::mmap(8192, PROT_READ | PROT_WRITE, MAP_SHARED, memfd.get(), 0);
  ASSERT_TRUE(src.ok());
  std::memcpy(src->data() + 4096, "udma", 4);
  auto view = mmap(buf.get(), 4096, PROT_READ, MAP_SHARED);
  ASSERT_TRUE(view.ok()) << view.error().describe();
  EXPECT_EQ(std::memcmp(view->data(), "udma", 4), 0);
}

TEST(UapiUdmabuf, CreateWithoutCloexecFlag) {
  UniqueFd memfd = sealedMemfd(4096);
  auto dev = openUdmabuf();
  ASSERT_TRUE(dev.ok());
  UdmabufCreate create{static_cast<std::uint32_t>(memfd.get()), 0, 0, 4096};
  auto buf = udmabufCreate(dev->get(), &create);
  ASSERT_TRUE(buf.ok());
  EXPECT_EQ(*sys::getFdFlags(buf->get()) & FD_CLOEXEC, 0);
}

TEST(UapiUdmabuf, CreateListJoinsRanges) {
  UniqueFd a = sealedMemfd(4096);
  UniqueFd b = sealedMemfd(8192);
  auto dev = openUdmabuf();
  ASSERT_TRUE(dev.ok());
  std::vector<std::byte> raw(sizeof(udmabuf_create_list) + 2 * sizeof(udmabuf_create_item));
  auto* list = reinterpret_cast<udmabuf_create_list*>(raw.data());
  list->flags = UDMABUF_FLAGS_CLOEXEC;
  list->count = 2;
  list->list[0] = {static_cast<__u32>(a.get()), 0, 0, 4096};
  list->list[1] = {static_cast<__u32>(b.get()), 0, 4096, 4096};
  auto r = ioctl(dev->get(), UDMABUF_CREATE_LIST, list);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  UniqueFd buf = UniqueFd::adopt(static_cast<int>(*r));
  EXPECT_EQ(*size(buf.get()), 8192U);
}

int createErrno(int memfd, std::uint64_t offset, std::uint64_t size) {
  auto dev = openUdmabuf();
  EXPECT_TRUE(dev.ok());
  UdmabufCreate create{static_cast<std::uint32_t>(memfd), 0, offset, size};
  return udmabufCreate(dev->get(), &create).code();
}

// UDMABUF_CREATE of the whole of `memfd`, through the device node.
Result<UniqueFd> ioctlCreate(int memfd) {
  auto dev = openUdmabuf();
  if (!dev.ok()) {
    return std::move(dev).error();
  }
  UdmabufCreate create{static_cast<std::uint32_t>(memfd), kUdmabufFlagsCloexec, 0, 4096};
  return udmabufCreate(dev->get(), &create);
}

TEST(UapiUdmabuf, ABadMemfdIsEbadfd) {
  auto other = sys::pipe();
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(createErrno(other->first.get(), 0, 4096), EBADFD);
  EXPECT_EQ(createErrno(-1, 0, 4096), EBADFD);
}

TEST(UapiUdmabuf, AZbufFileIsNotAMemfdEvenWhenItsBackingIsOne) {
  // A system-heap buffer is backed by a sealed memfd, but its fd is a dma-buf to the kernel:
  // EBADFD, as udmabuf says for every file that is not shmem. So is a sync file.
  auto buffer = allocate("system", 4096);
  ASSERT_TRUE(buffer.ok());
  EXPECT_EQ(createErrno(buffer->get(), 0, 4096), EBADFD);
  auto sync = Context::current().installSyncFile(Fence::stub());
  ASSERT_TRUE(sync.ok());
  EXPECT_EQ(createErrno(sync->get(), 0, 4096), EBADFD);
  // A udmabuf buffer is no memfd either.
  UniqueFd memfd = sealedMemfd(4096);
  auto made = ioctlCreate(memfd.get());
  ASSERT_TRUE(made.ok()) << made.error().describe();
  EXPECT_EQ(createErrno(made->get(), 0, 4096), EBADFD);
  // In a list too.
  auto dev = openUdmabuf();
  ASSERT_TRUE(dev.ok());
  std::vector<std::byte> raw(sizeof(udmabuf_create_list) + 2 * sizeof(udmabuf_create_item));
  auto* list = reinterpret_cast<udmabuf_create_list*>(raw.data());
  list->count = 2;
  list->list[0] = {static_cast<__u32>(memfd.get()), 0, 0, 4096};
  list->list[1] = {static_cast<__u32>(buffer->get()), 0, 0, 4096};
  EXPECT_EQ(ioctl(dev->get(), UDMABUF_CREATE_LIST, list).code(), EBADFD);
  // And the real sealed memfd alone works.
  list->count = 1;
  auto ok = ioctl(dev->get(), UDMABUF_CREATE_LIST, list);
  ASSERT_TRUE(ok.ok()) << ok.error().describe();
  UniqueFd listed = UniqueFd::adopt(static_cast<int>(*ok));
  EXPECT_EQ(*size(listed.get()), 4096U);
}

TEST(UapiUdmabuf, SealRulesAreEinval) {
  UniqueFd noShrinkSeal = sealedMemfd(4096, 0);
  EXPECT_EQ(createErrno(noShrinkSeal.get(), 0, 4096), EINVAL);
  UniqueFd writeSealed = sealedMemfd(4096, F_SEAL_SHRINK | F_SEAL_WRITE);
  EXPECT_EQ(createErrno(writeSealed.get(), 0, 4096), EINVAL);
}

TEST(UapiUdmabuf, AlignmentSizeAndRangeAreEinval) {
  UniqueFd memfd = sealedMemfd(8192);
  EXPECT_EQ(createErrno(memfd.get(), 100, 4096), EINVAL);
  EXPECT_EQ(createErrno(memfd.get(), 0, 100), EINVAL);
  EXPECT_EQ(createErrno(memfd.get(), 0, 0), EINVAL);
  EXPECT_EQ(createErrno(memfd.get(), 4096, 8192), EINVAL);
}

TEST(UapiUdmabuf, ListCountZeroOrOverTheLimitIsEinval) {
  auto dev = openUdmabuf();
  ASSERT_TRUE(dev.ok());
  UdmabufCreateList empty{0, 0};
  EXPECT_EQ(udmabufCreateList(dev->get(), &empty).code(), EINVAL);
  UdmabufCreateList tooMany{0, 1025};  // checked before any item is read
  EXPECT_EQ(udmabufCreateList(dev->get(), &tooMany).code(), EINVAL);
}

TEST(UapiUdmabuf, OtherRequestsAreEnottyAndNullIsEfault) {
  auto dev = openUdmabuf();
  ASSERT_TRUE(dev.ok());
  std::uint64_t arg[4] = {};
  EXPECT_EQ(ioctl(dev->get(), iocNumber(kIocWrite, 'u', 0x44, 8), arg).code(), ENOTTY);
  EXPECT_EQ(ioctl(dev->get(), DMA_HEAP_IOCTL_ALLOC, arg).code(), ENOTTY);
  EXPECT_EQ(ioctl(dev->get(), UDMABUF_CREATE, nullptr).code(), EFAULT);
  EXPECT_EQ(ioctl(dev->get(), UDMABUF_CREATE_LIST, nullptr).code(), EFAULT);
  auto heap = openHeap("system");
  ASSERT_TRUE(heap.ok());
  // On the heap device they are the heap's answer: nr 0x42 and 0x43 are >= 1, EINVAL.
  UdmabufCreate create{};
  EXPECT_EQ(udmabufCreate(heap->get(), &create).code(), EINVAL);
  UdmabufCreateList list{};
  EXPECT_EQ(udmabufCreateList(heap->get(), &list).code(), EINVAL);
  // On any other file, ENOTTY.
  auto memfd = sys::memfdCreate("x", MFD_CLOEXEC);
  ASSERT_TRUE(memfd.ok());
  EXPECT_EQ(udmabufCreate(memfd->get(), &create).code(), ENOTTY);
}

}  // namespace
}  // namespace zbuf::uapi
