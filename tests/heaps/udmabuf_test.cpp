#include "zbuf/heaps/udmabuf.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/memfd.h>
#include <sys/mman.h>

#include <cstring>

#include "zbuf/base/sys.h"

namespace zbuf {
namespace {

constexpr std::uint64_t kPage = 4096;

UniqueFd sealedMemfd(std::uint64_t size, int seals = F_SEAL_SHRINK) {
  auto fd = sys::memfdCreate("udmabuf-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  EXPECT_TRUE(fd.ok());
  EXPECT_TRUE(sys::ftruncate(fd->get(), static_cast<off_t>(size)).ok());
  if (seals != 0) {
    EXPECT_TRUE(sys::addSeals(fd->get(), seals).ok());
  }
  return std::move(*fd);
}

TEST(UdmabufTest, CreatesBufferSharingTheMemfdPages) {
  UniqueFd memfd = sealedMemfd(4 * kPage);
  auto cpu = sys::mmap(4 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, memfd.get(), 0);
  ASSERT_TRUE(cpu.ok());
  std::memset(cpu->data() + kPage, 0x33, kPage);
  Udmabuf u;
  auto b = u.create(memfd.get(), 0, kPage, 2 * kPage);
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ((*b)->size(), 2 * kPage);
  EXPECT_EQ((*b)->exporterName(), "udmabuf");
  EXPECT_EQ((*b)->fileFlags() & O_ACCMODE, O_RDWR);
  auto m = (*b)->mmap(0, 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->data()[0], std::byte{0x33});
  m->data()[kPage] = std::byte{0x44};
  EXPECT_EQ(cpu->data()[2 * kPage], std::byte{0x44});  // same pages, no copy
  auto st = sys::fstat((*b)->fd().get());
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, 2 * kPage);  // the buffer's own file has the buffer's size
  // Installed as a dma-buf file it is found again: tests/uapi/buffer_file_test.cpp.
}

TEST(UdmabufTest, TwoBuffersOnOneMemfd) {
  UniqueFd memfd = sealedMemfd(4 * kPage);
  Udmabuf u;
  auto a = u.create(memfd.get(), 0, 0, 2 * kPage);
  auto b = u.create(memfd.get(), 0, 2 * kPage, 2 * kPage);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->inode(), (*b)->inode());
}

TEST(UdmabufTest, NotAMemfdIsEbadfd) {
  Udmabuf u;
  EXPECT_EQ(u.create(-1, 0, 0, kPage).code(), EBADFD);
  auto pipe = sys::pipe();
  ASSERT_TRUE(pipe.ok());
  EXPECT_EQ(u.create(pipe->first.get(), 0, 0, kPage).code(), EBADFD);
  auto devnull = sys::open("/dev/null", O_RDWR);
  ASSERT_TRUE(devnull.ok());
  EXPECT_EQ(u.create(devnull->get(), 0, 0, kPage).code(), EBADFD);
  UniqueFd memfd = sealedMemfd(kPage);
  const int closed = memfd.get();
  memfd.reset();
  EXPECT_EQ(u.create(closed, 0, 0, kPage).code(), EBADFD);
}

TEST(UdmabufTest, SealsAreChecked) {
  Udmabuf u;
  UniqueFd noShrink = sealedMemfd(kPage, 0);
  EXPECT_EQ(u.create(noShrink.get(), 0, 0, kPage).code(), EINVAL);
  UniqueFd writeSealed = sealedMemfd(kPage, F_SEAL_SHRINK | F_SEAL_WRITE);
  EXPECT_EQ(u.create(writeSealed.get(), 0, 0, kPage).code(), EINVAL);
  UniqueFd futureWrite = sealedMemfd(kPage, F_SEAL_SHRINK | F_SEAL_FUTURE_WRITE);
  EXPECT_EQ(u.create(futureWrite.get(), 0, 0, kPage).code(), EINVAL);
  UniqueFd grow = sealedMemfd(kPage, F_SEAL_SHRINK | F_SEAL_GROW);
  EXPECT_TRUE(u.create(grow.get(), 0, 0, kPage).ok());
}

TEST(UdmabufTest, AlignmentSizeAndRange) {
  Udmabuf u;
  UniqueFd memfd = sealedMemfd(4 * kPage);
  EXPECT_EQ(u.create(memfd.get(), 0, kPage / 2, kPage).code(), EINVAL);
  EXPECT_EQ(u.create(memfd.get(), 0, 0, kPage / 2).code(), EINVAL);
  EXPECT_EQ(u.create(memfd.get(), 0, 0, 0).code(), EINVAL);
  EXPECT_EQ(u.create(memfd.get(), 0, 2 * kPage, 3 * kPage).code(), EINVAL);  // past the end
  EXPECT_EQ(u.create(memfd.get(), 0, 8 * kPage, kPage).code(), EINVAL);
  EXPECT_EQ(u.create(memfd.get(), 0, ~std::uint64_t{0} - kPage + 1, kPage).code(), EINVAL);
}

TEST(UdmabufTest, UnknownFlagsAreAccepted) {
  Udmabuf u;
  UniqueFd memfd = sealedMemfd(kPage);
  EXPECT_TRUE(u.create(memfd.get(), 0xfe | Udmabuf::kFlagCloexec, 0, kPage).ok());
}

TEST(UdmabufTest, ListJoinsRangesInOrder) {
  UniqueFd m1 = sealedMemfd(2 * kPage);
  UniqueFd m2 = sealedMemfd(2 * kPage);
  auto c1 = sys::mmap(2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, m1.get(), 0);
  auto c2 = sys::mmap(2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, m2.get(), 0);
  ASSERT_TRUE(c1.ok() && c2.ok());
  c1->data()[kPage] = std::byte{1};
  c2->data()[0] = std::byte{2};
  Udmabuf u;
  const UdmabufItem items[] = {{m1.get(), kPage, kPage}, {m2.get(), 0, 2 * kPage}};
  auto b = u.createList(0, items);
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ((*b)->size(), 3 * kPage);
  auto m = (*b)->mmap(0, 3 * kPage, PROT_READ, MAP_SHARED);
  ASSERT_TRUE(m.ok()) << m.error().describe();
  EXPECT_EQ(m->data()[0], std::byte{1});
  EXPECT_EQ(m->data()[kPage], std::byte{2});
  auto tail = (*b)->mmap(1, 2 * kPage, PROT_READ, MAP_SHARED);  // spans both ranges
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->data()[0], std::byte{2});
}

TEST(UdmabufTest, ListLimits) {
  UniqueFd memfd = sealedMemfd(4 * kPage);
  Udmabuf u(UdmabufConfig{.listLimit = 2, .sizeLimitMb = 64});
  EXPECT_EQ(u.createList(0, {}).code(), EINVAL);  // count 0
  const UdmabufItem three[] = {
      {memfd.get(), 0, kPage}, {memfd.get(), kPage, kPage}, {memfd.get(), 2 * kPage, kPage}};
  EXPECT_EQ(u.createList(0, three).code(), EINVAL);  // over list_limit
  EXPECT_TRUE(u.createList(0, std::span(three).first(2)).ok());
  EXPECT_EQ(Udmabuf().config().listLimit, 1024U);
  EXPECT_EQ(Udmabuf().config().sizeLimitMb, 64U);
}

TEST(UdmabufTest, SizeLimit) {
  UniqueFd memfd = sealedMemfd(2ULL << 20);
  Udmabuf oneMb(UdmabufConfig{.listLimit = 1024, .sizeLimitMb = 1});
  EXPECT_EQ(oneMb.create(memfd.get(), 0, 0, 2ULL << 20).code(), EINVAL);
  EXPECT_TRUE(oneMb.create(memfd.get(), 0, 0, 1ULL << 20).ok());
  // The default limit, 64 MiB, is checked before the memfd (which is only 2 MiB).
  EXPECT_EQ(Udmabuf().create(memfd.get(), 0, 0, 65ULL << 20).code(), EINVAL);
}

TEST(UdmabufTest, EndCpuAccessBeforeBeginIsEinval) {
  UniqueFd memfd = sealedMemfd(kPage);
  auto b = Udmabuf().create(memfd.get(), 0, 0, kPage);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->endCpuAccess(DmaDirection::Bidirectional).code(), EINVAL);
  ASSERT_TRUE((*b)->beginCpuAccess(DmaDirection::Bidirectional).ok());
  EXPECT_TRUE((*b)->endCpuAccess(DmaDirection::Bidirectional).ok());
  EXPECT_TRUE((*b)->endCpuAccess(DmaDirection::Bidirectional).ok());  // no bracket state after
}

TEST(UdmabufTest, MmapPrivateIsEinval) {
  UniqueFd memfd = sealedMemfd(kPage);
  auto b = Udmabuf().create(memfd.get(), 0, 0, kPage);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->mmap(0, kPage, PROT_READ, MAP_PRIVATE).code(), EINVAL);
}

TEST(UdmabufTest, MapsForADevice) {
  UniqueFd memfd = sealedMemfd(8 * kPage);
  auto b = Udmabuf().create(memfd.get(), 0, 0, 8 * kPage);
  ASSERT_TRUE(b.ok());
  auto dev = Device::create({.name = "dev", .maxSegmentSize = 1ULL << 30});
  auto a = (*b)->attach(dev);
  ASSERT_TRUE(a.ok());
  auto m = MappedAttachment::create(*a, DmaDirection::ToDevice);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->table().segmentCount(), 8U);
}

}  // namespace
}  // namespace zbuf
