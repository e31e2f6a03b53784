#include "zbuf/base/flags.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <type_traits>

namespace zbuf {
namespace {

enum class Access : unsigned { Read = 1, Write = 2, Exec = 4 };
ZBUF_FLAGS_OPERATORS(Access)

TEST(Flags, CombineAndTest) {
  Flags<Access> rw = Access::Read | Access::Write;
  EXPECT_TRUE(rw.test(Access::Read));
  EXPECT_TRUE(rw.test(Access::Write));
  EXPECT_FALSE(rw.test(Access::Exec));
  EXPECT_EQ(rw.raw(), 3U);
  EXPECT_EQ((rw & Access::Write).raw(), 2U);
  EXPECT_TRUE((rw & ~Flags<Access>(Access::Read)).test(Access::Write));
  EXPECT_FALSE((rw & ~Flags<Access>(Access::Read)).test(Access::Read));
  EXPECT_TRUE(Flags<Access>().none());
  EXPECT_EQ(Flags<Access>::fromRaw(4), Flags<Access>(Access::Exec));
}

// An enumerator of several bits: test() wants all of them, any() one of them.
enum class Mode : std::uint8_t { Read = 1, Write = 2, ReadWrite = 3, Append = 8 };
ZBUF_FLAGS_OPERATORS(Mode)

TEST(Flags, TestOfAMultiBitFlagNeedsEveryBit) {
  const Flags<Mode> read(Mode::Read);
  EXPECT_FALSE(read.test(Mode::ReadWrite));
  EXPECT_TRUE((Mode::Read | Mode::Write).test(Mode::ReadWrite));
  EXPECT_EQ(Mode::Read | Mode::Write, Flags<Mode>(Mode::ReadWrite));
  EXPECT_TRUE(Flags<Mode>(Mode::ReadWrite).test(Mode::Read));
  EXPECT_TRUE(Flags<Mode>(Mode::ReadWrite).test(Mode::Write));
  EXPECT_FALSE(Flags<Mode>(Mode::ReadWrite).test(Mode::Append));
}

TEST(Flags, EmptySetIsFalseAndANonEmptyOneTrue) {
  const Flags<Access> empty;
  EXPECT_EQ(empty.raw(), 0U);
  EXPECT_TRUE(empty.none());
  EXPECT_FALSE(empty.any());
  EXPECT_FALSE(static_cast<bool>(empty));
  const Flags<Access> exec(Access::Exec);
  EXPECT_TRUE(exec.any());
  EXPECT_FALSE(exec.none());
  EXPECT_TRUE(static_cast<bool>(exec));
  // The empty set tests false for every flag.
  EXPECT_FALSE(empty.test(Access::Read));
  EXPECT_FALSE(empty.test(Access::Exec));
}

TEST(Flags, CompoundAssignmentsAndXor) {
  Flags<Access> f(Access::Read);
  f |= Access::Exec;
  EXPECT_EQ(f.raw(), 5U);
  f ^= Access::Read | Access::Write;  // clears Read, sets Write
  EXPECT_EQ(f.raw(), 6U);
  EXPECT_FALSE(f.test(Access::Read));
  EXPECT_TRUE(f.test(Access::Write));
  f &= Access::Write;
  EXPECT_EQ(f, Flags<Access>(Access::Write));
  EXPECT_EQ((f ^ f).raw(), 0U);
  EXPECT_NE(f, Flags<Access>(Access::Read));
}

TEST(Flags, ComplementFlipsEveryBitOfTheUnderlyingType) {
  const Flags<Mode> none;
  EXPECT_EQ((~none).raw(), 0xFFU);  // std::uint8_t: the complement stays in 8 bits
  EXPECT_EQ((~Flags<Mode>(Mode::Append)).raw(), 0xF7U);
  EXPECT_EQ(~~Flags<Mode>(Mode::Append), Flags<Mode>(Mode::Append));
  static_assert(std::is_same_v<Flags<Mode>::Type, std::uint8_t>);
}

TEST(Flags, FromRawKeepsBitsNoEnumeratorNames) {
  const auto f = Flags<Access>::fromRaw(0x81);
  EXPECT_EQ(f.raw(), 0x81U);
  EXPECT_TRUE(f.test(Access::Read));
  EXPECT_FALSE(f.test(Access::Write));
  EXPECT_EQ((f & Access::Read).raw(), 1U);
}

TEST(Flags, UsableInConstantExpressions) {
  constexpr Flags<Access> rx = Access::Read | Access::Exec;
  static_assert(rx.raw() == 5U);
  static_assert(rx.test(Access::Exec));
  static_assert(!rx.test(Access::Write));
  static_assert((rx & ~Flags<Access>(Access::Exec)) == Flags<Access>(Access::Read));
  EXPECT_EQ(rx.raw(), 5U);
}

}  // namespace
}  // namespace zbuf
