#include "zbuf/uapi/user_copy.h"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace zbuf::uapi {
namespace {

struct Args {
  std::uint32_t fd;
  std::uint32_t flags;
  std::uint64_t size;
};

TEST(UserCopy, ANullPointerIsEfault) {
  auto in = copyFromUser<Args>(nullptr, "TEST_IOCTL");
  ASSERT_FALSE(in.ok());
  EXPECT_EQ(in.code(), EFAULT);
  EXPECT_STREQ(in.error().op(), "TEST_IOCTL");
  auto out = copyToUser(nullptr, Args{}, "TEST_IOCTL_OUT");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.code(), EFAULT);
  EXPECT_STREQ(out.error().op(), "TEST_IOCTL_OUT");
}

TEST(UserCopy, CopiesInFromAnyAlignment) {
  const Args want{7, 0x80000, 0x0102030405060708ULL};
  // Every misalignment of an 8-byte field.
  for (std::size_t shift = 0; shift < alignof(Args); ++shift) {
    std::array<unsigned char, sizeof(Args) + alignof(Args)> bytes{};
    std::memcpy(bytes.data() + shift, &want, sizeof want);
    auto got = copyFromUser<Args>(bytes.data() + shift, "in");
    ASSERT_TRUE(got.ok()) << shift;
    EXPECT_EQ(got->fd, want.fd) << shift;
    EXPECT_EQ(got->flags, want.flags) << shift;
    EXPECT_EQ(got->size, want.size) << shift;
  }
}

TEST(UserCopy, CopiesOutExactlyTheValuesBytesAtAnyAlignment) {
  const Args value{3, 1, 0xFFEEDDCCBBAA9988ULL};
  for (std::size_t shift = 0; shift < alignof(Args); ++shift) {
    std::array<unsigned char, sizeof(Args) + 2 * alignof(Args)> bytes{};
    bytes.fill(0xA5);
    ASSERT_TRUE(copyToUser(bytes.data() + shift, value, "out").ok()) << shift;
    EXPECT_EQ(std::memcmp(bytes.data() + shift, &value, sizeof value), 0) << shift;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      if (i < shift || i >= shift + sizeof value) {
        EXPECT_EQ(bytes[i], 0xA5) << "byte " << i << " outside the value, shift " << shift;
      }
    }
  }
}

TEST(UserCopy, ARoundTripThroughAPackedStruct) {
#pragma pack(push, 1)
  struct Packed {
    std::uint8_t tag;
    std::uint64_t value;  // at offset 1
  };
#pragma pack(pop)
  static_assert(sizeof(Packed) == 9);
  Packed p{};
  // The field's address without a typed (misaligned) pointer to it.
  unsigned char* field = reinterpret_cast<unsigned char*>(&p) + offsetof(Packed, value);
  ASSERT_TRUE(copyToUser(field, std::uint64_t{0x1122334455667788ULL}, "out").ok());
  auto back = copyFromUser<std::uint64_t>(field, "in");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, 0x1122334455667788ULL);
  EXPECT_EQ(p.tag, 0U);
  // A copy, not a reference: EXPECT_EQ binds its arguments to references, and a
  // reference to the packed field would be misaligned (UBSan says so).
  const std::uint64_t stored = p.value;
  EXPECT_EQ(stored, 0x1122334455667788ULL);
}

}  // namespace
}  // namespace zbuf::uapi
