#include "zbuf/base/result.h"

#include <gtest/gtest.h>

#include <string>

#include "zbuf/base/flags.h"

namespace zbuf {
namespace {

Result<int> half(int v) {
  if (v % 2 != 0) {
    return Error(EINVAL, "half", "odd value");
  }
  return v / 2;
}

Result<int> quarter(int v) {
  auto h = half(v);
  ZBUF_TRY(h);
  return half(*h);
}

TEST(Result, CarriesValueOrErrnoAndOperation) {
  auto ok = half(4);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 2);
  EXPECT_EQ(ok.code(), 0);
  auto bad = half(3);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), EINVAL);
  EXPECT_EQ(bad.error().negative(), -EINVAL);
  EXPECT_STREQ(bad.error().op(), "half");
  EXPECT_NE(bad.error().describe().find("EINVAL"), std::string::npos);
  EXPECT_NE(bad.error().describe().find("odd value"), std::string::npos);
  EXPECT_EQ(bad.valueOr(-1), -1);
}

TEST(Result, TryPropagatesTheFirstError) {
  EXPECT_EQ(*quarter(8), 2);
  EXPECT_EQ(quarter(6).code(), EINVAL);
  EXPECT_EQ(quarter(5).code(), EINVAL);
}

TEST(Result, VoidResult) {
  Result<void> fine;
  EXPECT_TRUE(fine.ok());
  Result<void> failed = Error(EBUSY, "op");
  EXPECT_EQ(failed.code(), EBUSY);
}

TEST(Result, ErrnoNames) {
  EXPECT_STREQ(errnoName(EDEADLK), "EDEADLK");
  EXPECT_STREQ(errnoName(EALREADY), "EALREADY");
  EXPECT_STREQ(errnoName(999999), "E?");
}

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

}  // namespace
}  // namespace zbuf
