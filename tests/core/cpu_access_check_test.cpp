// Checked CPU access: a correct program runs clean; a write outside any bracket, a write inside
// a READ bracket and a read after END are each reported with the buffer's name, exporter,
// size, the offset and the access (recorded in record mode; printed before abort() in the
// default mode, checked by death tests); the whole-program switch (ZBUF_CHECK_CPU_ACCESS=1);
// unrelated faults reach the handler that was there before; unchecked buffers are untouched.
#include "zbuf/core/cpu_access_check.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>

#include "zbuf/core/buffer.h"
#include "zbuf/heaps/system_heap.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/dma_buf.h"

namespace zbuf {
namespace {

constexpr std::uint64_t kSize = 16384;

BufferPtr checkedBuffer(const char* name = "probe") {
  auto b = SystemHeap::instance()->allocate(kSize).value();
  EXPECT_TRUE(b->setName(name).ok());
  b->setCpuAccessChecked(true);
  return b;
}

sys::Mapping map(const BufferPtr& b, std::uint64_t pageOffset = 0,
                 int prot = PROT_READ | PROT_WRITE) {
  return std::move(b->mmap(pageOffset, kSize - pageOffset * 4096, prot, MAP_SHARED).value());
}

// Volatile accesses, so the compiler keeps them where they are.
void write(const sys::Mapping& m, std::size_t at) {
  static_cast<volatile std::byte*>(m.data())[at] = std::byte{1};
}
std::byte read(const sys::Mapping& m, std::size_t at) {
  return static_cast<volatile std::byte*>(m.data())[at];
}

class Recording : public ::testing::Test {
 protected:
  void SetUp() override {
    CpuAccessChecker::setOnViolation(CpuAccessChecker::OnViolation::Record);
    CpuAccessChecker::clearRecorded();
  }
  void TearDown() override {
    CpuAccessChecker::setOnViolation(CpuAccessChecker::OnViolation::Abort);
    CpuAccessChecker::clearRecorded();
  }
};

TEST_F(Recording, ACorrectProgramRunsClean) {
  auto b = checkedBuffer();
  auto m = map(b);
  {
    auto w = CpuAccess::begin(b, DmaDirection::ToDevice).value();
    write(m, 0);
    write(m, kSize - 1);
    EXPECT_EQ(read(m, 0), std::byte{1});  // a WRITE bracket may read too (PROT_WRITE implies it)
  }
  {
    auto r = CpuAccess::begin(b, DmaDirection::FromDevice).value();
    EXPECT_EQ(read(m, kSize - 1), std::byte{1});
  }
  {
    auto rw = CpuAccess::begin(b, DmaDirection::Bidirectional).value();
    write(m, 100);
  }
  EXPECT_TRUE(CpuAccessChecker::recorded().empty());
}

TEST_F(Recording, AWriteOutsideABracketIsReportedWithTheBufferAndTheOffset) {
  auto b = checkedBuffer("outside");
  auto m = map(b, 1);  // from page 1: offsets are the buffer's
  write(m, 10);
  auto v = CpuAccessChecker::recorded();
  ASSERT_EQ(v.size(), 1U);
  EXPECT_STREQ(v[0].name.data(), "outside");
  EXPECT_STREQ(v[0].exporter.data(), "system");
  EXPECT_EQ(v[0].size, kSize);
  EXPECT_EQ(v[0].inode, b->inode());
  EXPECT_EQ(v[0].offset, 4096U + 10U);
  EXPECT_EQ(v[0].fault, CpuAccessFault::NoBracket);
#if defined(__x86_64__)
  EXPECT_EQ(v[0].access, CpuAccessKind::Write);
#endif
  // Record mode opened the mapping; the next SYNC closes it again.
  { auto r = CpuAccess::begin(b, DmaDirection::FromDevice).value(); }
  (void)read(m, 0);
  ASSERT_EQ(CpuAccessChecker::recorded().size(), 2U);
  EXPECT_EQ(CpuAccessChecker::recorded()[1].fault, CpuAccessFault::AfterEnd);
}

TEST_F(Recording, AWriteInsideAReadBracketIsReported) {
  auto b = checkedBuffer();
  auto m = map(b);
  auto r = CpuAccess::begin(b, DmaDirection::FromDevice).value();
  (void)read(m, 0);  // fine
  EXPECT_TRUE(CpuAccessChecker::recorded().empty());
  write(m, 64);
  auto v = CpuAccessChecker::recorded();
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0].fault, CpuAccessFault::WriteInReadBracket);
  EXPECT_EQ(v[0].access, CpuAccessKind::Write);
  EXPECT_EQ(v[0].offset, 64U);
}

TEST_F(Recording, AReadAfterEndIsReported) {
  auto b = checkedBuffer();
  auto m = map(b);
  { auto r = CpuAccess::begin(b, DmaDirection::FromDevice).value(); }
  (void)read(m, 200);
  auto v = CpuAccessChecker::recorded();
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0].fault, CpuAccessFault::AfterEnd);
#if defined(__x86_64__)
  EXPECT_EQ(v[0].access, CpuAccessKind::Read);
#endif
}

TEST_F(Recording, TheUapiCallsGuardToo) {
  auto b = checkedBuffer();
  UniqueFd fd = uapi::Context::current().installBuffer(b).value();
  auto m = uapi::mmap(fd.get(), kSize, PROT_READ | PROT_WRITE, MAP_SHARED).value();
  ASSERT_TRUE(uapi::sync(fd.get(), uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRw).ok());
  write(m, 0);
  ASSERT_TRUE(uapi::sync(fd.get(), uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRw).ok());
  EXPECT_TRUE(CpuAccessChecker::recorded().empty());
  write(m, 1);
  EXPECT_EQ(CpuAccessChecker::recorded().size(), 1U);
}

TEST_F(Recording, OverlappingBracketsKeepTheMappingOpenUntilTheLastEnd) {
  auto b = checkedBuffer();
  auto m = map(b);
  auto r1 = CpuAccess::begin(b, DmaDirection::FromDevice).value();
  auto r2 = CpuAccess::begin(b, DmaDirection::FromDevice).value();
  ASSERT_TRUE(r1.end().ok());
  (void)read(m, 0);  // r2 still open
  EXPECT_TRUE(CpuAccessChecker::recorded().empty());
  ASSERT_TRUE(r2.end().ok());
  (void)read(m, 0);
  EXPECT_EQ(CpuAccessChecker::recorded().size(), 1U);
}

TEST_F(Recording, UncheckedBuffersAndEarlierMappingsAreNotGuarded) {
  auto b = SystemHeap::instance()->allocate(kSize).value();
  b->setCpuAccessChecked(false);
  auto m = map(b);
  write(m, 0);
  b->setCpuAccessChecked(true);  // applies to mappings made from now on
  write(m, 1);
  EXPECT_TRUE(CpuAccessChecker::recorded().empty());
  auto guarded = map(b);
  write(guarded, 2);
  EXPECT_EQ(CpuAccessChecker::recorded().size(), 1U);
}

TEST_F(Recording, ManyMappingsComeAndGo) {
  auto b = checkedBuffer();
  for (int i = 0; i < 3000; ++i) {  // more than the slots: unmapping frees them
    auto m = map(b);
    auto w = CpuAccess::begin(b, DmaDirection::ToDevice).value();
    write(m, static_cast<std::size_t>(i));
  }
  EXPECT_TRUE(CpuAccessChecker::recorded().empty());
}

// --- the default mode: report and abort ---------------------------------------------------------

class Aborting : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(Aborting, AWriteOutsideABracketAborts) {
  EXPECT_DEATH(
      {
        auto b = checkedBuffer("stream-0");
        auto m = map(b);
        write(m, 4096);
      },
      "zbuf: checked CPU access: write at offset 4096 \\(0x1000\\) of buffer 'stream-0' "
      "\\(exporter system, 16384 bytes, inode [0-9]+\\) outside any SYNC bracket");
}

TEST_F(Aborting, AWriteInsideAReadBracketAborts) {
  EXPECT_DEATH(
      {
        auto b = checkedBuffer();
        auto m = map(b);
        auto r = CpuAccess::begin(b, DmaDirection::FromDevice).value();
        write(m, 8);
      },
      "write at offset 8 .* inside a READ bracket");
}

TEST_F(Aborting, AReadAfterEndAborts) {
  EXPECT_DEATH(
      {
        auto b = checkedBuffer();
        auto m = map(b);
        { auto r = CpuAccess::begin(b, DmaDirection::FromDevice).value(); }
        (void)read(m, 0);
      },
      "at offset 0 .* after SYNC END");
}

TEST_F(Aborting, TheEnvironmentSwitchesAWholeProgramOn) {
  ::setenv("ZBUF_CHECK_CPU_ACCESS", "1", 1);
  EXPECT_DEATH(
      {
        auto b = SystemHeap::instance()->allocate(kSize).value();  // not told: the default
        auto m = map(b);
        write(m, 0);
      },
      "outside any SYNC bracket");
  ::unsetenv("ZBUF_CHECK_CPU_ACCESS");
}

void previousHandler(int /*sig*/) {
  constexpr char kMsg[] = "the previous handler ran\n";
  (void)!::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
  ::_exit(3);
}

TEST_F(Aborting, FaultsElsewhereReachThePreviousHandler) {
  EXPECT_EXIT(
      {
        ::signal(SIGSEGV, &previousHandler);
        auto b = checkedBuffer();
        auto m = map(b);  // installs zbuf's handler, chained to previousHandler
        auto other = sys::mmap(4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).value();
        static_cast<volatile std::byte*>(other.data())[0] = std::byte{1};
      },
      ::testing::ExitedWithCode(3), "the previous handler ran");
}

}  // namespace
}  // namespace zbuf
