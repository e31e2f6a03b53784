// Mock fences for the fence tests (the kernel selftests' mock_fence, the unwrap and chain
// selftests' helpers), shared by tests/core/ and tests/conformance/: a fence of a given context
// and seqno that only the test signals, arrays, chains, merges, the leaves of an unwrap, and a
// set of chained fences that is signalled when it goes.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "zbuf/core/fence.h"
#include "zbuf/core/fence_array.h"
#include "zbuf/core/fence_chain.h"
#include "zbuf/core/fence_unwrap.h"

namespace zbuf::testing_support {

class MockFence final : public Fence {
 public:
  // The chain selftest's mock fences all use context 0, seqno 0.
  explicit MockFence(std::uint64_t context = 0, std::uint64_t seqno = 0) : Fence(context, seqno) {}
  std::string_view driverName() const override { return "mock"; }
  std::string_view timelineName() const override { return "mock"; }
};

inline FencePtr mockFence(std::uint64_t context, std::uint64_t seqno) {
  auto f = std::make_shared<MockFence>(context, seqno);
  f->enableSwSignaling();
  return f;
}
inline FencePtr mockFence() {
  return mockFence(Timeline::allocateContexts(1), 1);
}

inline FencePtr mockArray(std::vector<FencePtr> fences) {
  auto r = FenceArray::create(std::move(fences), Timeline::allocateContexts(1), 1, false);
  EXPECT_TRUE(r.ok());
  return *r;
}

inline FencePtr mockChain(FencePtr prev, FencePtr fence, std::uint64_t seqno = 1) {
  auto r = FenceChain::create(std::move(prev), std::move(fence), seqno);
  EXPECT_TRUE(r.ok());
  return *r;
}

inline FencePtr merge(std::initializer_list<FencePtr> fences) {
  auto r = mergeFences(std::span<const FencePtr>(fences.begin(), fences.size()));
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : nullptr;
}

// The leaves of `head`, which must be exactly `expected` in that order.
inline void expectLeaves(const FencePtr& head, const std::vector<FencePtr>& expected) {
  EXPECT_EQ(unwrapFences(head), expected);
}

inline std::uint64_t seqnoInc(unsigned i) {
  return i + 1;
}

// `count` mock fences, each chained after the last; all signalled when the set goes.
struct FenceChains {
  FenceChains(unsigned count, std::uint64_t (*seqnoFn)(unsigned)) {
    for (unsigned i = 0; i < count; ++i) {
      fences.push_back(std::make_shared<MockFence>());
      chains.push_back(mockChain(tail, fences.back(), seqnoFn(i)));
      tail = chains.back();
    }
  }
  ~FenceChains() {
    for (auto& f : fences) {
      f->signal();
    }
  }
  FenceChains(const FenceChains&) = delete;
  FenceChains& operator=(const FenceChains&) = delete;
  std::vector<FencePtr> fences;
  std::vector<FencePtr> chains;
  FencePtr tail;
};

}  // namespace zbuf::testing_support
