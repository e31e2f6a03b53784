// Mirrors drivers/dma-buf/st-dma-fence-unwrap.c: one test per kernel scenario, same name.
#include <gtest/gtest.h>

#include <algorithm>

#include "zbuf/core/fence_array.h"
#include "zbuf/core/fence_chain.h"
#include "zbuf/core/fence_unwrap.h"

namespace zbuf {
namespace {

class MockFence final : public Fence {
 public:
  MockFence(std::uint64_t context, std::uint64_t seqno) : Fence(context, seqno) {}
  std::string_view driverName() const override { return "mock"; }
  std::string_view timelineName() const override { return "mock"; }
};

FencePtr mockFence(std::uint64_t context, std::uint64_t seqno) {
  auto f = std::make_shared<MockFence>(context, seqno);
  f->enableSwSignaling();
  return f;
}
FencePtr mockFence() {
  return mockFence(Timeline::allocateContexts(1), 1);
}

FencePtr mockArray(std::vector<FencePtr> fences) {
  auto r = FenceArray::create(std::move(fences), Timeline::allocateContexts(1), 1, false);
  EXPECT_TRUE(r.ok());
  return *r;
}

FencePtr mockChain(FencePtr prev, FencePtr fence) {
  auto r = FenceChain::create(std::move(prev), std::move(fence), 1);
  EXPECT_TRUE(r.ok());
  return *r;
}

FencePtr merge(std::initializer_list<FencePtr> fences) {
  auto r = mergeFences(std::span<const FencePtr>(fences.begin(), fences.size()));
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : nullptr;
}

// The leaves of `head`, which must be exactly `expected` in that order.
void expectLeaves(const FencePtr& head, const std::vector<FencePtr>& expected) {
  EXPECT_EQ(unwrapFences(head), expected);
}

// The leaves of `head`, which must be `expected` in any order, each exactly once.
void expectLeavesAnyOrder(const FencePtr& head, std::vector<FencePtr> expected) {
  auto seen = unwrapFences(head);
  std::sort(seen.begin(), seen.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(seen, expected);
}

TEST(DmaFenceUnwrap, sanitycheck) {
  auto f = mockFence();
  auto array = mockArray({f});
  auto chain = mockChain(nullptr, array);
  f->signal();
  EXPECT_TRUE(chain->isSignaled());
}

TEST(DmaFenceUnwrap, unwrap_array) {
  auto f1 = mockFence();
  auto f2 = mockFence();
  auto array = mockArray({f1, f2});
  expectLeavesAnyOrder(array, {f1, f2});
  f1->signal();
  f2->signal();
}

TEST(DmaFenceUnwrap, unwrap_chain) {
  auto f1 = mockFence();
  auto f2 = mockFence();
  auto chain = mockChain(f1, f2);
  expectLeavesAnyOrder(chain, {f1, f2});
  f1->signal();
  f2->signal();
}

TEST(DmaFenceUnwrap, unwrap_chain_array) {
  auto f1 = mockFence();
  auto f2 = mockFence();
  auto array = mockArray({f1, f2});
  auto chain = mockChain(nullptr, array);
  expectLeavesAnyOrder(chain, {f1, f2});
  f1->signal();
  f2->signal();
}

TEST(DmaFenceUnwrap, unwrap_merge) {
  auto f1 = mockFence();
  auto f2 = mockFence();
  auto f3 = merge({f1, f2});
  ASSERT_NE(f3, nullptr);
  EXPECT_TRUE(FenceArray::isArray(*f3));
  expectLeavesAnyOrder(f3, {f1, f2});
  f1->signal();
  f2->signal();
  EXPECT_TRUE(f3->isSignaled());
}

TEST(DmaFenceUnwrap, unwrap_merge_duplicate) {
  auto f1 = mockFence();
  auto f2 = merge({f1, f1});
  expectLeaves(f2, {f1});
  EXPECT_EQ(f2, f1);  // one fence left: the merge returns it
  f1->signal();
}

TEST(DmaFenceUnwrap, unwrap_merge_seqno) {
  const std::uint64_t ctx0 = Timeline::allocateContexts(1);
  const std::uint64_t ctx1 = Timeline::allocateContexts(1);
  auto f1 = mockFence(ctx1, 1);
  auto f2 = mockFence(ctx1, 2);
  auto f3 = mockFence(ctx0, 1);
  auto f4 = mockFence(ctx0, 2);
  auto f5 = merge({f1, f2, f3, f4});
  expectLeavesAnyOrder(f5, {f2, f4});  // only the latest of each context
  for (auto& f : {f1, f2, f3, f4}) {
    f->signal();
  }
}

TEST(DmaFenceUnwrap, unwrap_merge_order) {
  auto f1 = mockFence();
  auto f2 = mockFence();
  auto a1 = mockArray({f1, f2});
  auto c1 = mockChain(nullptr, f1);
  auto c2 = mockChain(c1, f2);
  // The chain holds the same fences as a1 in the opposite order; the merge sorts by context.
  auto a2 = merge({a1, c2});
  expectLeaves(a2, {f1, f2});
  f1->signal();
  f2->signal();
}

TEST(DmaFenceUnwrap, unwrap_merge_complex) {
  auto f1 = mockFence();
  auto f2 = mockFence();
  auto f3 = merge({f1, f2});
  auto f4 = mockArray({f2, f1});  // the same fences in reverse
  // Signalled fences (the stub) are filtered, and the two arrays merge into one.
  auto f5 = merge({f3, f4, Fence::stub()});
  expectLeavesAnyOrder(f5, {f1, f2});
  f1->signal();
  f2->signal();
}

TEST(DmaFenceUnwrap, unwrap_merge_complex_seqno) {
  const std::uint64_t ctx0 = Timeline::allocateContexts(1);
  const std::uint64_t ctx1 = Timeline::allocateContexts(1);
  auto f1 = mockFence(ctx0, 2);
  auto f2 = mockFence(ctx1, 1);
  auto f3 = mockFence(ctx0, 1);
  auto f4 = mockFence(ctx1, 2);
  auto f5 = mockArray({f1, f2});
  auto f6 = mockArray({f3, f4});
  auto f7 = merge({f5, f6});
  expectLeavesAnyOrder(f7, {f1, f4});
  for (auto& f : {f1, f2, f3, f4}) {
    f->signal();
  }
}

}  // namespace
}  // namespace zbuf
