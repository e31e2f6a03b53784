// Fence signalling sections. In checked builds (asan, tsan: ZBUF_CHECKED=ON) every violation is
// reported with the fence and the call site; in release builds the section is an empty no-op,
// and these tests assert exactly that instead.
// ctest-labels: concurrency
#include "zbuf/core/fence_signalling.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "zbuf/core/fence.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;

// Collects reports for the life of the object.
class Reports {
 public:
  Reports() {
    list_.reserve(16);
    old_ = setSignallingReportHandler([this](const SignallingReport& r) {
      if (list_.size() < list_.capacity()) {
        list_.push_back(r);
      }
    });
  }
  ~Reports() { setSignallingReportHandler(std::move(old_)); }
  Reports(const Reports&) = delete;
  Reports& operator=(const Reports&) = delete;
  const std::vector<SignallingReport>& list() const { return list_; }

 private:
  std::vector<SignallingReport> list_;
  SignallingReportHandler old_;
};

// Keeps the optimiser from removing a new/delete pair.
[[gnu::noinline]] void allocateSomething() {
  auto p = std::make_unique<int[]>(100);  // exactly one operator new
  asm volatile("" : : "r"(p.get()) : "memory");
}

TEST(FenceSignalling, ReleaseBuildSectionIsAnEmptyNoOp) {
  if constexpr (!kSignallingChecks) {
    EXPECT_TRUE(std::is_empty_v<FenceSignallingSection>);
    Reports reports;
    {
      const FenceSignallingSection section;
      EXPECT_FALSE(FenceSignallingSection::active());
      allocateSomething();
      checkSignallingSection(SignallingViolation::ResvLock);
    }
    EXPECT_TRUE(reports.list().empty());
  } else {
    // Checked build: the section is live state.
    EXPECT_FALSE(FenceSignallingSection::active());
    const FenceSignallingSection section;
    EXPECT_TRUE(FenceSignallingSection::active());
  }
}

TEST(FenceSignalling, AllocationInsideASectionIsReportedWithTheFenceAndCaller) {
  auto f = Timeline::create("drv", "tl")->createFence();
  Reports reports;
  {
    const FenceSignallingSection section(f.get());
    allocateSomething();
  }
  if constexpr (kSignallingChecks) {
    ASSERT_EQ(reports.list().size(), 1U);
    const auto& r = reports.list()[0];
    EXPECT_EQ(r.violation, SignallingViolation::Allocation);
    EXPECT_EQ(r.fence, fmt::format("drv:tl ctx {} seq {}", f->context(), f->seqno()));
    EXPECT_NE(r.location.find("operator new called from"), std::string::npos) << r.location;
    EXPECT_FALSE(r.backtrace.empty());
  } else {
    EXPECT_TRUE(reports.list().empty());
  }
  f->signal();
}

TEST(FenceSignalling, FenceWaitInsideASectionIsReported) {
  auto f = Timeline::create("drv", "tl")->createFence();
  f->signal();
  Reports reports;
  {
    const FenceSignallingSection section(f.get());
    EXPECT_TRUE(f->waitTimeout(0ns).ok());  // even a wait that would not block: it might
  }
  if constexpr (kSignallingChecks) {
    ASSERT_EQ(reports.list().size(), 1U);
    EXPECT_EQ(reports.list()[0].violation, SignallingViolation::FenceWait);
    EXPECT_NE(reports.list()[0].location.find("waitTimeout"), std::string::npos);
    EXPECT_NE(reports.list()[0].backtrace.find("fence_signalling_test"), std::string::npos)
        << reports.list()[0].backtrace;
  } else {
    EXPECT_TRUE(reports.list().empty());
  }
}

TEST(FenceSignalling, WaitAnyInsideASectionIsReported) {
  const FencePtr fences[] = {Fence::stub()};
  Reports reports;
  {
    const FenceSignallingSection section;
    EXPECT_TRUE(Fence::waitAny(fences, 0ns).ok());
  }
  EXPECT_EQ(reports.list().size(), kSignallingChecks ? 1U : 0U);
}

TEST(FenceSignalling, ResvLockInsideASectionIsReportedAtTheCallSite) {
  Reports reports;
  {
    const FenceSignallingSection section;
    checkSignallingSection(SignallingViolation::ResvLock);
  }
  if constexpr (kSignallingChecks) {
    ASSERT_EQ(reports.list().size(), 1U);
    EXPECT_EQ(reports.list()[0].violation, SignallingViolation::ResvLock);
    EXPECT_EQ(reports.list()[0].fence, "(no fence)");
    EXPECT_NE(reports.list()[0].location.find("fence_signalling_test.cpp"), std::string::npos);
  } else {
    EXPECT_TRUE(reports.list().empty());
  }
}

TEST(FenceSignalling, LegalCodeIsNotReported) {
  auto f = Timeline::create("drv", "tl")->createFence();
  Reports reports;
  allocateSomething();  // outside any section
  checkSignallingSection(SignallingViolation::ResvLock);
  {
    const FenceSignallingSection section(f.get());
    // Allowed inside: signalling, adding and removing pre-allocated callbacks, queries.
    FenceCallback cb([](Fence&, FenceCallback&) {});
    EXPECT_TRUE(f->addCallback(cb).ok());
    EXPECT_TRUE(f->removeCallback(cb));
    EXPECT_EQ(f->status(), 0);
    EXPECT_TRUE(f->signal());
  }
  allocateSomething();  // after the section ended
  EXPECT_TRUE(reports.list().empty());
}

TEST(FenceSignalling, SectionsNestAndInnerInheritsTheFence) {
  auto outer = Timeline::create("drv", "outer")->createFence();
  auto inner = Timeline::create("drv", "inner")->createFence();
  Reports reports;
  {
    const FenceSignallingSection a(outer.get());
    {
      const FenceSignallingSection b;  // no fence: the outer one's
      checkSignallingSection(SignallingViolation::ResvLock);
      {
        const FenceSignallingSection c(inner.get());
        checkSignallingSection(SignallingViolation::ResvLock);
      }
      checkSignallingSection(SignallingViolation::ResvLock);
    }
    EXPECT_EQ(FenceSignallingSection::active(), kSignallingChecks);
  }
  EXPECT_FALSE(FenceSignallingSection::active());
  checkSignallingSection(SignallingViolation::ResvLock);
  if constexpr (kSignallingChecks) {
    ASSERT_EQ(reports.list().size(), 3U);
    EXPECT_NE(reports.list()[0].fence.find("outer"), std::string::npos);
    EXPECT_NE(reports.list()[1].fence.find("inner"), std::string::npos);
    EXPECT_NE(reports.list()[2].fence.find("outer"), std::string::npos);
  } else {
    EXPECT_TRUE(reports.list().empty());
  }
  outer->signal();
  inner->signal();
}

TEST(FenceSignalling, CallbackThatAllocatesDuringSignalIsReported) {
  auto f = Timeline::create("drv", "cb")->createFence();
  Reports reports;
  FenceCallbackFn cb([](Fence&) { allocateSomething(); });
  ASSERT_TRUE(f->addCallback(cb).ok());
  f->signal();  // signal() runs callbacks inside a section of its own
  if constexpr (kSignallingChecks) {
    ASSERT_EQ(reports.list().size(), 1U);
    EXPECT_EQ(reports.list()[0].violation, SignallingViolation::Allocation);
    EXPECT_NE(reports.list()[0].fence.find("drv:cb"), std::string::npos);
  } else {
    EXPECT_TRUE(reports.list().empty());
  }
}

TEST(FenceSignalling, SectionsArePerThread) {
  Reports reports;
  std::atomic<int> step{0};
  bool otherActive = true;
  std::thread t([&] {  // started outside the section: creating a thread allocates
    while (step.load() == 0) {
      std::this_thread::yield();
    }
    otherActive = FenceSignallingSection::active();
    checkSignallingSection(SignallingViolation::ResvLock);
    step = 2;
  });
  {
    const FenceSignallingSection section;
    step = 1;
    while (step.load() != 2) {
      std::this_thread::yield();
    }
  }
  t.join();
  EXPECT_FALSE(otherActive);
  EXPECT_TRUE(reports.list().empty());
}

struct alignas(64) Wide {
  char bytes[64];
};

// Keeps the optimiser from removing a new/delete pair.
void keep(const void* p) {
  asm volatile("" : : "r"(p) : "memory");
}

// The checked build replaces every form of operator new and delete together: a nothrow or
// aligned new left to the runtime would hand a block to the replaced delete's free()
// (AddressSanitizer: alloc-dealloc-mismatch) and escape the section's report.
TEST(FenceSignalling, EveryFormOfNewIsReportedAndFreedByItsDelete) {
  Reports reports;
  {
    const FenceSignallingSection section;
    int* one = new (std::nothrow) int(7);
    keep(one);
    delete one;
    int* many = new (std::nothrow) int[4];
    keep(many);
    delete[] many;
    Wide* wide = new (std::nothrow) Wide;
    keep(wide);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(wide) % alignof(Wide), 0U);
    delete wide;
    Wide* wides = new (std::nothrow) Wide[3];
    keep(wides);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(wides) % alignof(Wide), 0U);
    delete[] wides;
    Wide* thrown = new Wide;
    keep(thrown);
    delete thrown;
    void* raw = ::operator new (10, std::align_val_t{32}, std::nothrow);
    keep(raw);
    ::operator delete (raw, std::align_val_t{32}, std::nothrow);
  }
  if constexpr (kSignallingChecks) {
    EXPECT_EQ(reports.list().size(), 6U);
    for (const auto& r : reports.list()) {
      EXPECT_EQ(r.violation, SignallingViolation::Allocation);
      EXPECT_NE(r.location.find("operator new called from"), std::string::npos) << r.location;
    }
    // The replacement rounds aligned sizes up to a multiple of the alignment: SIZE_MAX - 2
    // would wrap around to a tiny block, so it fails instead.
    volatile std::size_t wraps = SIZE_MAX - 2;  // volatile: a constant is refused at compile time
    EXPECT_EQ(::operator new (wraps, std::align_val_t{64}, std::nothrow), nullptr);
    EXPECT_THROW((void)::operator new (wraps, std::align_val_t{64}), std::bad_alloc);
  } else {
    EXPECT_TRUE(reports.list().empty());
  }
}

TEST(FenceSignalling, ViolationNames) {
  EXPECT_STREQ(toString(SignallingViolation::Allocation), "heap allocation");
  EXPECT_STREQ(toString(SignallingViolation::FenceWait), "fence wait");
  EXPECT_STREQ(toString(SignallingViolation::ResvLock), "reservation lock");
}

}  // namespace
}  // namespace zbuf
