#include "zbuf/base/result.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

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

TEST(Result, NamesItsMembersAsStdExpectedDoes) {
  auto good = half(4);
  auto bad = half(3);
  EXPECT_TRUE(good.has_value());
  EXPECT_TRUE(static_cast<bool>(good));
  EXPECT_FALSE(bad.has_value());
  EXPECT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(good.value_or(-1), 2);
  EXPECT_EQ(bad.value_or(-1), -1);
  EXPECT_EQ(bad.error().code(), EINVAL);
  Result<std::unique_ptr<int>> box = std::make_unique<int>(7);
  std::unique_ptr<int> taken = std::move(box).value_or(nullptr);
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, 7);
  Result<void> fine;
  Result<void> failed = Error(EBUSY, "op");
  EXPECT_TRUE(fine.has_value());
  EXPECT_FALSE(failed.has_value());
  EXPECT_FALSE(static_cast<bool>(failed));
}

TEST(Result, TryPropagatesTheFirstError) {
  EXPECT_EQ(*quarter(8), 2);
  EXPECT_EQ(quarter(6).code(), EINVAL);
  EXPECT_EQ(quarter(5).code(), EINVAL);
}

// Counts the copies made of it, so a test can tell a copy from a reference.
struct CopyCounter {
  explicit CopyCounter(int* copies) : copies(copies) {}
  CopyCounter(const CopyCounter& other) : copies(other.copies) { ++*copies; }
  CopyCounter(CopyCounter&&) noexcept = default;
  CopyCounter& operator=(const CopyCounter&) = delete;
  CopyCounter& operator=(CopyCounter&&) noexcept = default;
  ~CopyCounter() = default;
  int* copies;
};

Result<void> tryLvalue(const Result<CopyCounter>& r) {
  ZBUF_TRY(r);
  return {};
}

Result<void> tryLvalue(Result<std::string>& r) {
  ZBUF_TRY(r);
  return {};
}

TEST(Result, TryOnAnLvalueLeavesItIntact) {
  int copies = 0;
  Result<CopyCounter> counted = CopyCounter(&copies);
  EXPECT_TRUE(tryLvalue(counted).has_value());
  EXPECT_EQ(copies, 0) << "ZBUF_TRY copied the value of an lvalue Result";
  ASSERT_TRUE(counted.has_value());

  Result<std::string> good = std::string("a value long enough to live on the heap");
  EXPECT_TRUE(tryLvalue(good).has_value());
  EXPECT_EQ(*good, "a value long enough to live on the heap");

  Result<std::string> bad = Error(EPERM, "source", "a message long enough to live on the heap");
  auto propagated = tryLvalue(bad);
  ASSERT_FALSE(propagated.has_value());
  EXPECT_EQ(propagated.error().code(), EPERM);
  EXPECT_EQ(propagated.error().message(), "a message long enough to live on the heap");
  // The source still holds its own Error: it was copied, not stolen.
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), EPERM);
  EXPECT_STREQ(bad.error().op(), "source");
  EXPECT_EQ(bad.error().message(), "a message long enough to live on the heap");
}

Result<std::unique_ptr<int>> box(int v) {
  if (v < 0) {
    return Error(ERANGE, "box", "negative value " + std::to_string(v));
  }
  return std::make_unique<int>(v);
}

// Each macro with a move-only value: from a temporary, from std::move of a named Result, into
// a declaration and into an existing variable.
Result<int> sumOfBoxes(int a, int b) {
  ZBUF_TRY(box(a));
  ZBUF_ASSIGN_OR_RETURN(auto first, box(a));
  ZBUF_ASSIGN_OR_RETURN(const std::unique_ptr<int>& second, box(b));
  auto named = box(b - a);
  ZBUF_TRY(std::move(named));
  std::unique_ptr<int> third;
  ZBUF_ASSIGN_OR_RETURN(third, std::move(named));
  return *first + *second + *third;
}

TEST(Result, TryAndAssignOrReturnTakeMoveOnlyValues) {
  auto sum = sumOfBoxes(2, 3);
  ASSERT_TRUE(sum.has_value()) << sum.error().describe();
  EXPECT_EQ(*sum, 2 + 3 + 1);
}

TEST(Result, TryAndAssignOrReturnPropagateCodeAndMessage) {
  auto early = sumOfBoxes(-1, 3);  // fails at the first ZBUF_TRY
  ASSERT_FALSE(early.has_value());
  EXPECT_EQ(early.error().code(), ERANGE);
  EXPECT_STREQ(early.error().op(), "box");
  EXPECT_EQ(early.error().message(), "negative value -1");
  auto late = sumOfBoxes(1, -3);  // fails at the second ZBUF_ASSIGN_OR_RETURN
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code(), ERANGE);
  EXPECT_EQ(late.error().message(), "negative value -3");
  auto last = sumOfBoxes(3, 1);  // fails at the ZBUF_TRY of the named Result
  ASSERT_FALSE(last.has_value());
  EXPECT_EQ(last.error().message(), "negative value -2");
}

Result<int> halfOfHalf(int v) {
  Result<int> h = half(v);
  ZBUF_ASSIGN_OR_RETURN(int once, h);  // copies the value out of an lvalue
  EXPECT_EQ(*h, once);
  ZBUF_ASSIGN_OR_RETURN(int twice, half(once));
  return twice;
}

TEST(Result, AssignOrReturnFromAnLvalue) {
  EXPECT_EQ(*halfOfHalf(8), 2);
  EXPECT_EQ(halfOfHalf(6).error().message(), "odd value");
  EXPECT_EQ(halfOfHalf(5).code(), EINVAL);
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

}  // namespace
}  // namespace zbuf
