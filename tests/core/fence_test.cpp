#include "zbuf/core/fence.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace zbuf {
namespace {

using namespace std::chrono_literals;

TEST(Fence, TimelineHandsOutIncreasingSeqnosOnOneContext) {
  auto tl = Timeline::create("drv", "tl");
  auto a = tl->createFence();
  auto b = tl->createFence();
  EXPECT_EQ(a->context(), tl->context());
  EXPECT_EQ(a->seqno() + 1, b->seqno());
  EXPECT_NE(tl->context(), 0U);
  EXPECT_NE(Timeline::create("drv", "other")->context(), tl->context());
  EXPECT_EQ(a->driverName(), "drv");
  EXPECT_EQ(a->timelineName(), "tl");
}

TEST(Fence, CallbacksRunInOrderOnSignal) {
  auto f = Timeline::create("drv", "tl")->createFence();
  std::vector<int> order;
  FenceCallbackFn one([&](Fence&) { order.push_back(1); });
  FenceCallbackFn two([&](Fence&) { order.push_back(2); });
  ASSERT_TRUE(f->addCallback(one).ok());
  ASSERT_TRUE(f->addCallback(two).ok());
  EXPECT_TRUE(f->signal());
  EXPECT_FALSE(f->signal());
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(Fence, WaitFromAnotherThread) {
  auto f = Timeline::create("drv", "tl")->createFence();
  std::thread t([&] {
    std::this_thread::sleep_for(5ms);
    f->signal();
  });
  auto r = f->waitTimeout(5s);
  t.join();
  ASSERT_TRUE(r.ok());
  EXPECT_GT(*r, 0ns);
  EXPECT_EQ(f->status(), 1);
}

}  // namespace
}  // namespace zbuf
