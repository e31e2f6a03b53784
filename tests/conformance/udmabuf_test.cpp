// Mirrors tools/testing/selftests/drivers/dma-buf/udmabuf.c on zbuf's Udmabuf (one scenario
// per numbered check of the selftest), plus the data checks of its newer versions.
#include "zbuf/heaps/udmabuf.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/memfd.h>
#include <sys/mman.h>

#include <cstring>

namespace zbuf {
namespace {

constexpr std::uint64_t kNumPages = 4;
constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kSize = kNumPages * kPage;

class UdmabufSelftest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto fd = sys::memfdCreate("udmabuf-test", MFD_ALLOW_SEALING | MFD_CLOEXEC);
    ASSERT_TRUE(fd.ok());
    memfd_ = std::move(*fd);
    ASSERT_TRUE(sys::addSeals(memfd_.get(), F_SEAL_SHRINK).ok());
    ASSERT_TRUE(sys::ftruncate(memfd_.get(), kSize).ok());
  }
  UniqueFd memfd_;
  Udmabuf udmabuf_;
};

// test-1: should fail (offset not page aligned)
TEST_F(UdmabufSelftest, OffsetNotPageAligned) {
  EXPECT_EQ(udmabuf_.create(memfd_.get(), 0, kPage / 2, kPage).code(), EINVAL);
}

// test-2: should fail (size not multiple of page)
TEST_F(UdmabufSelftest, SizeNotMultipleOfPage) {
  EXPECT_EQ(udmabuf_.create(memfd_.get(), 0, 0, kPage / 2).code(), EINVAL);
}

// test-3: should fail (not memfd)
TEST_F(UdmabufSelftest, NotMemfd) {
  auto pipe = sys::pipe();
  ASSERT_TRUE(pipe.ok());
  EXPECT_EQ(udmabuf_.create(pipe->first.get(), 0, 0, kSize).code(), EBADFD);
}

// test-4: should fail (F_SEAL_WRITE)
TEST_F(UdmabufSelftest, WriteSealedMemfd) {
  auto fd = sys::memfdCreate("udmabuf-test", MFD_ALLOW_SEALING | MFD_CLOEXEC);
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(sys::ftruncate(fd->get(), kSize).ok());
  ASSERT_TRUE(sys::addSeals(fd->get(), F_SEAL_SHRINK | F_SEAL_WRITE).ok());
  EXPECT_EQ(udmabuf_.create(fd->get(), 0, 0, kSize).code(), EINVAL);
}

// test-5: should work
TEST_F(UdmabufSelftest, SealedMemfdAccepted) {
  auto b = udmabuf_.create(memfd_.get(), 0, 0, kSize);
  ASSERT_TRUE(b.ok()) << b.error().describe();
  EXPECT_EQ((*b)->size(), kSize);
}

// Newer selftests: writes through the memfd are seen through the udmabuf, and back.
TEST_F(UdmabufSelftest, DataSharedBothWays) {
  auto b = udmabuf_.create(memfd_.get(), 0, 0, kSize);
  ASSERT_TRUE(b.ok());
  auto viaMemfd = sys::mmap(kSize, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_.get(), 0);
  auto viaBuf = (*b)->mmap(0, kSize, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(viaMemfd.ok() && viaBuf.ok());
  for (std::uint64_t i = 0; i < kSize; i += kPage) {
    viaMemfd->data()[i] = static_cast<std::byte>(i / kPage + 1);
  }
  {
    auto sync = CpuAccess::begin(*b, DmaDirection::FromDevice);
    ASSERT_TRUE(sync.ok());
    for (std::uint64_t i = 0; i < kSize; i += kPage) {
      EXPECT_EQ(viaBuf->data()[i], static_cast<std::byte>(i / kPage + 1));
    }
  }
  std::memset(viaBuf->data(), 0x77, kSize);
  EXPECT_EQ(viaMemfd->data()[kSize - 1], std::byte{0x77});
}

// Observed on 6.12: fd -1 is EBADFD, a range past the end and size 0 are EINVAL.
TEST_F(UdmabufSelftest, ObservedErrors) {
  EXPECT_EQ(udmabuf_.create(-1, 0, 0, kSize).code(), EBADFD);
  EXPECT_EQ(udmabuf_.create(memfd_.get(), 0, kPage, kSize).code(), EINVAL);
  EXPECT_EQ(udmabuf_.create(memfd_.get(), 0, 0, 0).code(), EINVAL);
  EXPECT_EQ(udmabuf_.createList(0, {}).code(), EINVAL);
}

}  // namespace
}  // namespace zbuf
