#include "zbuf/base/source_location.h"

#include <gtest/gtest.h>

#include <string_view>

namespace zbuf {
namespace {

// A function that records where it was called from, as a default argument captures it.
SourceLocation whereCalled(SourceLocation loc = SourceLocation::current()) {
  return loc;
}

std::string_view fileName(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

TEST(SourceLocation, DefaultArgumentCapturesTheCallSite) {
  const unsigned line = __LINE__ + 1;
  const SourceLocation loc = whereCalled();
  EXPECT_EQ(loc.line, line);
  EXPECT_EQ(fileName(loc.file), "source_location_test.cpp");
  EXPECT_STREQ(loc.file, __FILE__);
  EXPECT_STREQ(loc.function, __func__);  // the test's body, not whereCalled
}

TEST(SourceLocation, EachCallSiteHasItsOwnLine) {
  const SourceLocation first = whereCalled();
  const SourceLocation second = whereCalled();
  EXPECT_EQ(second.line, first.line + 1);
  EXPECT_STREQ(first.function, second.function);
}

TEST(SourceLocation, CurrentCalledDirectlyIsHere) {
  const unsigned line = __LINE__ + 1;
  const SourceLocation here = SourceLocation::current();
  EXPECT_EQ(here.line, line);
  EXPECT_STREQ(here.file, __FILE__);
  EXPECT_STREQ(here.function, __func__);
}

TEST(SourceLocation, DefaultConstructedIsEmpty) {
  const SourceLocation none;
  EXPECT_STREQ(none.file, "");
  EXPECT_EQ(none.line, 0U);
  EXPECT_STREQ(none.function, "");
}

TEST(SourceLocation, UsableInConstantExpressions) {
  constexpr SourceLocation loc = SourceLocation::current();
  static_assert(loc.line > 0);
  EXPECT_EQ(loc.line, static_cast<unsigned>(__LINE__) - 2);
}

}  // namespace
}  // namespace zbuf
