// FenceArray unit tests: creation rules, all/any signalling, error propagation, polling,
// deadlines, callbacks that never allocate, and destruction with callbacks still queued.
#include "zbuf/core/fence_array.h"

#include <gtest/gtest.h>

#include "zbuf/core/fence_chain.h"

namespace zbuf {
namespace {

FencePtr leaf() {
  return Timeline::create("test", "leaf")->createFence(1);
}

std::shared_ptr<FenceArray> makeArray(std::vector<FencePtr> fences, bool any = false) {
  auto r = FenceArray::create(std::move(fences), Timeline::allocateContexts(1), 7, any);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
  return r.ok() ? *r : nullptr;
}

// A fence that records the deadline it was given.
class DeadlineFence final : public Fence {
 public:
  DeadlineFence() : Fence(Timeline::allocateContexts(1), 1) {}
  std::string_view driverName() const override { return "test"; }
  std::string_view timelineName() const override { return "deadline"; }
  std::uint64_t deadline = 0;

 protected:
  void onDeadline(std::uint64_t ns) override { deadline = ns; }
};

TEST(FenceArray, NamesAndIdentity) {
  auto a = leaf();
  auto arr = makeArray({a});
  EXPECT_EQ(arr->driverName(), "dma_fence_array");
  EXPECT_EQ(arr->timelineName(), "unbound");
  EXPECT_EQ(arr->seqno(), 7U);
  EXPECT_FALSE(arr->seqno64());
  EXPECT_EQ(arr->fences().size(), 1U);
  EXPECT_EQ(arr->fences()[0], a);
  EXPECT_EQ(FenceArray::from(FencePtr(arr)), arr);
  EXPECT_EQ(FenceArray::from(a), nullptr);
  EXPECT_TRUE(FenceArray::isArray(*arr));
  EXPECT_FALSE(FenceArray::isArray(*a));
  a->signal();
}

TEST(FenceArray, RefusesEmptyList) {
  auto r = FenceArray::create({}, Timeline::allocateContexts(1), 1, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), EINVAL);
  EXPECT_FALSE(r.error().message().empty());
}

TEST(FenceArray, RefusesNullMemberAndContextZero) {
  EXPECT_EQ(FenceArray::create({leaf(), nullptr}, Timeline::allocateContexts(1), 1, false).code(),
            EINVAL);
  EXPECT_EQ(FenceArray::create({leaf()}, 0, 1, false).code(), EINVAL);
}

TEST(FenceArray, RefusesArrayMember) {
  auto inner = makeArray({leaf()});
  auto r = FenceArray::create({leaf(), inner}, Timeline::allocateContexts(1), 1, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), EINVAL);
  EXPECT_NE(r.error().message().find("dma_fence_array"), std::string::npos);
}

TEST(FenceArray, RefusesChainMember) {
  auto chain = FenceChain::create(nullptr, leaf(), 1);
  ASSERT_TRUE(chain.ok());
  auto r = FenceArray::create({FencePtr(*chain)}, Timeline::allocateContexts(1), 1, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), EINVAL);
  EXPECT_NE(r.error().message().find("dma_fence_chain"), std::string::npos);
}

TEST(FenceArray, SignalsWhenAllSignal) {
  auto a = leaf();
  auto b = leaf();
  auto arr = makeArray({a, b});
  bool seen = false;
  FenceCallbackFn cb([&](Fence&) { seen = true; });
  ASSERT_TRUE(arr->addCallback(cb).ok());
  a->signal();
  EXPECT_FALSE(arr->isSignaled());
  EXPECT_FALSE(seen);
  b->signal();
  EXPECT_TRUE(arr->isSignaled());
  EXPECT_TRUE(seen);
  EXPECT_EQ(arr->status(), 1);
}

TEST(FenceArray, SignalsOnAny) {
  auto a = leaf();
  auto b = leaf();
  auto arr = makeArray({a, b}, /*any=*/true);
  arr->enableSwSignaling();
  EXPECT_FALSE(arr->isSignaled());
  b->signal();
  EXPECT_TRUE(arr->isSignaledFlag());
  a->signal();
  EXPECT_EQ(arr->status(), 1);
}

TEST(FenceArray, AlreadySignalledMembersCountAtEnable) {
  auto a = leaf();
  auto b = leaf();
  a->signal();
  b->signal();
  auto arr = makeArray({a, b});
  arr->enableSwSignaling();
  EXPECT_TRUE(arr->isSignaledFlag());
}

TEST(FenceArray, PollsMembersWithoutSignallingEnabled) {
  auto a = leaf();
  auto b = leaf();
  auto arr = makeArray({a, b});
  a->signal();
  EXPECT_FALSE(arr->isSignaled());
  b->signal();
  EXPECT_TRUE(arr->isSignaled());  // no callback was ever queued: found by polling
  auto any = makeArray({leaf(), a}, true);
  EXPECT_TRUE(any->isSignaled());
  any->fences()[0]->signal();
}

TEST(FenceArray, FirstMemberErrorPropagates) {
  auto a = leaf();
  auto b = leaf();
  auto c = leaf();
  auto arr = makeArray({a, b, c});
  arr->enableSwSignaling();
  a->signal();
  b->setError(-EIO);
  b->signal();
  c->setError(-ETIME);
  c->signal();
  EXPECT_EQ(arr->status(), -EIO);
  EXPECT_EQ(arr->error(), -EIO);
}

TEST(FenceArray, ErrorPropagatesWhenPolled) {
  auto a = leaf();
  auto arr = makeArray({a});
  a->setError(-ECANCELED);
  a->signal();
  EXPECT_EQ(arr->status(), -ECANCELED);
}

TEST(FenceArray, DeadlineForwardsToMembers) {
  auto d1 = std::make_shared<DeadlineFence>();
  auto d2 = std::make_shared<DeadlineFence>();
  auto arr = makeArray({d1, d2});
  arr->setDeadline(12345);
  EXPECT_EQ(d1->deadline, 12345U);
  EXPECT_EQ(d2->deadline, 12345U);
  d1->signal();
  d2->signal();
}

TEST(FenceArray, WaitsFromAnotherThreadSignal) {
  auto a = leaf();
  auto b = leaf();
  auto arr = makeArray({a, b});
  a->signal();
  b->signal();
  auto r = arr->waitTimeout(std::chrono::seconds(1));
  ASSERT_TRUE(r.ok());
  EXPECT_GT(r->count(), 0);
}

TEST(FenceArray, DestroyedArrayLeavesNoCallbackBehind) {
  auto a = leaf();
  auto b = leaf();
  {
    auto arr = makeArray({a, b}, /*any=*/true);
    arr->enableSwSignaling();
    a->signal();  // array signals; its callback on b stays queued until destruction
    EXPECT_TRUE(arr->isSignaledFlag());
  }
  // b's list must be empty now: signalling it touches no freed memory (ASan checks this).
  EXPECT_TRUE(b->signal());
}

}  // namespace
}  // namespace zbuf
