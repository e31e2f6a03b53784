// Mirrors drivers/dma-buf/st-dma-fence-unwrap.c: one test per kernel scenario, same name.
#include <gtest/gtest.h>

#include <algorithm>

#include "support/mock_fences.h"
#include "zbuf/core/fence_array.h"
#include "zbuf/core/fence_chain.h"
#include "zbuf/core/fence_unwrap.h"

namespace zbuf {
namespace {

using testing_support::expectLeaves;
using testing_support::merge;
using testing_support::mockArray;
using testing_support::mockChain;
using testing_support::MockFence;
using testing_support::mockFence;

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
