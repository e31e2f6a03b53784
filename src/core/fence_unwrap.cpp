// Unwrap cursor and merge, following drivers/dma-buf/dma-fence-unwrap.c step by step.
#include "zbuf/core/fence_unwrap.h"

#include <fmt/format.h>

#include <algorithm>

#include "zbuf/core/fence_array.h"
#include "zbuf/core/fence_chain.h"

namespace zbuf {

namespace {

// dma_fence_array_first
FencePtr arrayFirst(const FencePtr& head) {
  if (head == nullptr) {
    return nullptr;
  }
  const FenceArray* array = FenceArray::from(*head);
  return array != nullptr ? array->first() : head;
}

// dma_fence_array_next
FencePtr arrayNext(const FencePtr& head, std::size_t index) {
  const FenceArray* array = head != nullptr ? FenceArray::from(*head) : nullptr;
  if (array == nullptr || index >= array->fences().size()) {
    return nullptr;
  }
  return array->fences()[index];
}

}  // namespace

FencePtr FenceUnwrapCursor::unwrapArray() {
  array_ = FenceChain::contained(chain_);
  index_ = 0;
  return arrayFirst(array_);
}

FencePtr FenceUnwrapCursor::first(const FencePtr& head) {
  chain_ = head;
  return unwrapArray();
}

FencePtr FenceUnwrapCursor::next() {
  ++index_;
  if (FencePtr f = arrayNext(array_, index_); f != nullptr) {
    return f;
  }
  chain_ = FenceChain::walk(chain_);
  return unwrapArray();
}

std::vector<FencePtr> unwrapFences(const FencePtr& head) {
  std::vector<FencePtr> out;
  FenceUnwrapCursor cursor;
  for (FencePtr f = cursor.first(head); f != nullptr; f = cursor.next()) {
    out.push_back(std::move(f));
  }
  return out;
}

Result<FencePtr> mergeFences(std::span<const FencePtr> fences) {
  for (std::size_t i = 0; i < fences.size(); ++i) {
    if (fences[i] == nullptr) {
      return Error(EINVAL, "mergeFences", fmt::format("fence {} is null", i));
    }
  }
  // One pass (the kernel counts, then collects; a vector does both): pending leaves, and the
  // latest timestamp among the signalled ones.
  std::vector<FencePtr> pending;
  std::uint64_t timestamp = 0;
  for (const FencePtr& head : fences) {
    FenceUnwrapCursor cursor;
    for (FencePtr f = cursor.first(head); f != nullptr; f = cursor.next()) {
      if (!f->isSignaled()) {
        pending.push_back(std::move(f));
      } else {
        timestamp = std::max(timestamp, f->timestampNs());
      }
    }
  }
  if (pending.empty()) {
    return Fence::signaledStub(timestamp);
  }
  if (pending.size() == 1) {
    return std::move(pending.front());
  }
  // fence_cmp: by context, and within a context the later fence first.
  std::sort(pending.begin(), pending.end(), [](const FencePtr& a, const FencePtr& b) {
    if (a->context() != b->context()) {
      return a->context() < b->context();
    }
    return Fence::isLater(*a, *b);
  });
  // Keep only the most recent fence of each context.
  std::size_t j = 0;
  for (std::size_t i = 1; i < pending.size(); ++i) {
    if (pending[i]->context() != pending[j]->context()) {
      pending[++j] = std::move(pending[i]);
    }
  }
  pending.resize(j + 1);
  if (pending.size() == 1) {
    return std::move(pending.front());
  }
  ZBUF_ASSIGN_OR_RETURN(
      auto array, FenceArray::create(std::move(pending), Timeline::allocateContexts(1), 1, false));
  return FencePtr(std::move(array));
}

}  // namespace zbuf
