#include "zbuf/devices/pattern.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

namespace zbuf {
namespace {

std::int16_t sampleAt(const std::vector<std::byte>& buf, std::size_t index) {
  std::int16_t v = 0;
  std::memcpy(&v, buf.data() + index * 2, 2);
  return v;
}

TEST(Pattern, RampIsPerChannelAndPositional) {
  SampleFormat f{4, 2, true};
  PatternGenerator gen(f, PatternKind::Ramp);
  std::vector<std::byte> buf(8 * 10);
  gen.fill(buf, 0);
  // sample n, channel c = n + c * 0x1000
  EXPECT_EQ(sampleAt(buf, 0), 0);
  EXPECT_EQ(sampleAt(buf, 1), 0x1000);
  EXPECT_EQ(sampleAt(buf, 4), 1);
  EXPECT_EQ(sampleAt(buf, 4 * 9 + 3), 9 + 0x3000);
}

TEST(Pattern, AnyOffsetMatchesTheWholeStream) {
  for (PatternKind kind : {PatternKind::Ramp, PatternKind::Prbs}) {
    SampleFormat f{3, 2, true};
    PatternGenerator gen(f, kind);
    const std::size_t total = gen.periodBytes() * 2 + 1234;
    std::vector<std::byte> whole(total);
    gen.fill(whole, 0);
    for (std::uint64_t off :
         {0UL, 1UL, 7UL, 4096UL, gen.periodBytes() - 3, gen.periodBytes() + 5}) {
      std::vector<std::byte> part(777);
      gen.fill(part, off);
      EXPECT_EQ(std::memcmp(part.data(), whole.data() + off, part.size()), 0)
          << toString(kind) << " offset " << off;
    }
  }
}

TEST(Pattern, CheckerCountsExactlyTheCorruptedBytes) {
  SampleFormat f{4, 2, true};
  PatternChecker checker(f, PatternKind::Prbs);
  std::vector<std::byte> block(1 << 20);
  const std::uint64_t offset = 3 * (1 << 20) + 6;
  checker.generator().fill(block, offset);
  EXPECT_EQ(checker.countMismatches(block, offset), 0U);
  block[10] ^= std::byte{1};
  block[block.size() - 1] ^= std::byte{0x80};
  EXPECT_EQ(checker.countMismatches(block, offset), 2U);
  // The same data checked at the wrong position is wrong nearly everywhere.
  EXPECT_GT(checker.countMismatches(block, offset + 2), block.size() / 2);
}

TEST(Pattern, PrbsChannelsDiffer) {
  SampleFormat f{2, 2, false};
  PatternGenerator gen(f, PatternKind::Prbs);
  std::vector<std::byte> buf(4 * 1000);
  gen.fill(buf, 0);
  std::set<std::int16_t> values;
  for (std::size_t i = 0; i < 2000; ++i) {
    values.insert(sampleAt(buf, i));
  }
  EXPECT_GT(values.size(), 1500U);  // pseudo-random, not a ramp or a constant
}

TEST(Pattern, FormatAndKindValidation) {
  EXPECT_EQ((SampleFormat{0, 2, true}.validate().code()), EINVAL);
  EXPECT_EQ((SampleFormat{4, 3, true}.validate().code()), EINVAL);
  EXPECT_EQ((SampleFormat{17, 2, true}.validate().code()), EINVAL);
  EXPECT_TRUE((SampleFormat{4, 2, true}.validate().ok()));
  EXPECT_EQ(*parsePatternKind("prbs"), PatternKind::Prbs);
  EXPECT_EQ(parsePatternKind("sine").code(), EINVAL);
}

TEST(Pattern, WideSignedSamplesSignExtend) {
  SampleFormat f{1, 4, true};
  PatternGenerator gen(f, PatternKind::Ramp);
  std::vector<std::byte> buf(4);
  gen.fill(buf, 4 * 0xffff);  // sample 0xffff = -1 as 16-bit
  std::int32_t v = 0;
  std::memcpy(&v, buf.data(), 4);
  EXPECT_EQ(v, -1);
}

}  // namespace
}  // namespace zbuf
