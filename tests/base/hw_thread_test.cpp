// ctest-labels: concurrency
#include "zbuf/base/hw_thread.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <cstring>
#include <future>
#include <vector>

#include "zbuf/base/sys.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;

void spinFor(std::chrono::nanoseconds cpu) {
  const auto start = sys::threadCpuTime();
  volatile std::uint64_t sink = 0;
  while (sys::threadCpuTime() - start < cpu) {
    for (int i = 0; i < 1000; ++i) {
      sink = sink + static_cast<std::uint64_t>(i);
    }
  }
}

TEST(HardwareThread, ItsCpuTimeCountsAsHardwareNotApplication) {
  const auto before = cpu::split();
  HardwareThread hw("zbuf-test-hw", [] { spinFor(60ms); });
  hw.join();
  const auto after = cpu::split();
  EXPECT_GE(after.hardware - before.hardware, 55ms);
  // The application spent its time waiting in join(), far less than the hardware's spin.
  EXPECT_LT(after.application - before.application, 40ms);
}

TEST(HardwareThread, ApplicationWorkCountsAsApplication) {
  const auto before = cpu::split();
  spinFor(40ms);
  const auto after = cpu::split();
  EXPECT_GE(after.application - before.application, 35ms);
  EXPECT_LT(after.hardware - before.hardware, 5ms);
}

TEST(HardwareThread, IsNamed) {
  std::atomic<bool> checked{false};
  char name[16] = {};
  HardwareThread hw("zbuf-dma0", [&] {
    ::pthread_getname_np(::pthread_self(), name, sizeof name);
    checked = true;
  });
  hw.join();
  ASSERT_TRUE(checked);
  EXPECT_STREQ(name, "zbuf-dma0");
}

// setAffinity pins the hardware threads started after it, and only them: the creating thread
// keeps its CPUs, and an empty set stops the pinning.
TEST(HardwareThread, PinsItselfToTheHardwareAffinity) {
  const auto mine = sys::threadAffinity();
  ASSERT_TRUE(mine.ok()) << mine.error().describe();
  ASSERT_FALSE(mine->empty());
  const std::vector<unsigned> last{mine->back()};
  HardwareThread::setAffinity(last);
  std::vector<unsigned> seen;
  HardwareThread pinned("zbuf-test-pin",
                        [&] { seen = sys::threadAffinity().valueOr(std::vector<unsigned>{}); });
  pinned.join();
  HardwareThread::setAffinity({});
  EXPECT_EQ(seen, last);
  EXPECT_EQ(sys::threadAffinity().valueOr(std::vector<unsigned>{}), *mine)
      << "the creator is not pinned";
  HardwareThread unpinned("zbuf-test-free",
                          [&] { seen = sys::threadAffinity().valueOr(std::vector<unsigned>{}); });
  unpinned.join();
  EXPECT_EQ(seen, *mine) << "an empty set: the creator's CPUs";
}

TEST(HardwareThread, LiveThreadsAreCountedWhileRunning) {
  std::promise<void> spun;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  const auto before = cpu::hardwareTime();
  HardwareThread hw("zbuf-live", [&spun, released] {
    spinFor(30ms);
    spun.set_value();
    released.wait();  // alive while the test reads the accounting
  });
  EXPECT_EQ(spun.get_future().wait_for(10s), std::future_status::ready) << "the spin never ended";
  EXPECT_GE(cpu::hardwareTime() - before, 25ms);
  release.set_value();
}

}  // namespace
}  // namespace zbuf
