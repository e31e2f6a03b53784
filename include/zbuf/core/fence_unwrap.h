// Unwrapping containers into leaf fences, and merging fences (dma-fence-unwrap.h).
//
// Unwrapping visits a chain node by node (walking, so signalled links are garbage-collected and
// skipped, as dma_fence_chain_walk does), and for every node its contained fence, or the members
// of that fence when it is an array. A plain fence unwraps to itself. Arrays never contain
// containers and chains never contain chains, so the result is always leaves.
//
// mergeFences() is dma_fence_unwrap_merge: flatten all inputs, drop signalled leaves, then
//  - nothing left: a new private signalled stub carrying the latest signal timestamp seen;
//  - one left: that fence itself;
//  - otherwise: sort by context, keep only the latest fence per context, and (if more than one
//    remains) wrap them in a new FenceArray with a fresh context, seqno 1, signal on all.
// Thread-safety: all functions are thread-safe (the inputs may be signalled concurrently).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/core/fence.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

// The dma_fence_unwrap cursor: for (FencePtr f = c.first(head); f; f = c.next()) { ... }
class FenceUnwrapCursor {
 public:
  // The first leaf of `head` (nullptr for a null head).
  [[nodiscard]] FencePtr first(const FencePtr& head);
  // The next leaf, or nullptr when done.
  [[nodiscard]] FencePtr next();

 private:
  FencePtr unwrapArray();

  FencePtr chain_;  // the chain node being visited (or the plain head fence)
  FencePtr array_;  // its contained fence (an array or a leaf)
  std::size_t index_ = 0;
};

// All leaves of `head`, in visiting order (duplicates kept).
[[nodiscard]] std::vector<FencePtr> unwrapFences(const FencePtr& head);

// dma_fence_unwrap_merge. EINVAL if an input is null.
[[nodiscard]] Result<FencePtr> mergeFences(std::span<const FencePtr> fences);

}  // namespace zbuf
#pragma GCC visibility pop
