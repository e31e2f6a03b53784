// FenceChain: one point of a timeline built from fences (the kernel's dma_fence_chain).
//
// A node holds {prev, fence, prevSeqno}. Its seqno is always compared as a 64-bit value.
//  - If prev is a chain and the requested seqno is later than prev's, the node reuses prev's
//    context and records prevSeqno = prev's seqno; otherwise it gets a fresh context, and (only
//    when prev is a chain) its seqno becomes max(prev seqno, requested).
//  - The node is signalled when every fence back along the chain is signalled.
//  - Walking the chain (walk(), findSeqno(), isSignaled(), enabling signalling) garbage-collects
//    links whose fence has signalled: a node's prev is replaced by the prev's prev.
//  - The contained fence must not itself be a chain (EINVAL); chains link through prev only.
//  - Driver name "dma_fence_chain", timeline name "unbound".
//
// Signalling, as in the kernel: enabling it arms one callback on the oldest unsignalled fence
// along the chain; when that fires, the node is handed to a process-wide worker thread
// ("zbuf-fence-chn", the kernel's irq_work) that re-arms on the next unsignalled fence or signals
// the node. The worker keeps the re-arming out of the signaller's locks (the walk takes other
// fences' locks, in no fixed order). While armed, the node keeps itself alive.
//
// Releasing the last reference unlinks the prefix of nodes nobody else holds iteratively, so
// dropping a chain of any length never recurses.
//
// Thread-safety: every member function is thread-safe. prevMutex_ guards prev_ (a leaf lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>

#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/core/fence.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class FenceChain final : public Fence {
 public:
  // dma_fence_chain_init. `prev` may be null, a chain, or any other fence; `fence` must be a
  // non-null fence that is not a chain (EINVAL otherwise).
  [[nodiscard]] static Result<std::shared_ptr<FenceChain>> create(FencePtr prev, FencePtr fence,
                                                                  std::uint64_t seqno);

  // to_dma_fence_chain: the chain, or nullptr if `fence` is not one.
  [[nodiscard]] static FenceChain* from(Fence& fence) noexcept;
  [[nodiscard]] static const FenceChain* from(const Fence& fence) noexcept;
  [[nodiscard]] static std::shared_ptr<FenceChain> from(const FencePtr& fence) noexcept;
  [[nodiscard]] static bool isChain(const Fence& fence) noexcept { return from(fence) != nullptr; }
  // dma_fence_chain_contained: the chain's fence, or `fence` itself if it is not a chain.
  [[nodiscard]] static const FencePtr& contained(const FencePtr& fence) noexcept;

  // dma_fence_chain_walk: the link before `fence` after garbage-collecting signalled links;
  // nullptr at the end of the chain or if `fence` is not a chain.
  [[nodiscard]] static FencePtr walk(const FencePtr& fence);

  // dma_fence_chain_find_seqno: seqno 0 does nothing. EINVAL if `fence` is not a chain or its
  // seqno is below `seqno`. Otherwise `fence` becomes the oldest node that still has to signal
  // for `seqno` to be reached, or nullptr if everything up to `seqno` has signalled already.
  [[nodiscard]] static Result<void> findSeqno(FencePtr& fence, std::uint64_t seqno);

  // dma_fence_chain_get_prev: the previous link (nullptr at the end).
  [[nodiscard]] FencePtr prev() const;
  [[nodiscard]] const FencePtr& fence() const noexcept { return fence_; }
  [[nodiscard]] std::uint64_t prevSeqno() const noexcept { return prevSeqno_; }

  [[nodiscard]] std::string_view driverName() const override { return "dma_fence_chain"; }
  [[nodiscard]] std::string_view timelineName() const override { return "unbound"; }

  ~FenceChain() override;
  FenceChain(const FenceChain&) = delete;
  FenceChain& operator=(const FenceChain&) = delete;

  struct Private;  // construction key: use create()
  FenceChain(Private key, FencePtr prev, FencePtr fence, std::uint64_t context, std::uint64_t seqno,
             std::uint64_t prevSeqno);

 protected:
  bool enableSignalingUnlocked() override;
  bool checkSignaled() override;
  void onDeadline(std::uint64_t deadlineNs) override;

 private:
  friend class FenceChainWorker;
  // Replaces prev_ by `replacement` if it still is `expected` (the kernel's cmpxchg).
  void replacePrev(const FencePtr& expected, FencePtr replacement);
  // Arms cb_ on the oldest unsignalled fence of the chain; false if there is none.
  bool arm();
  // Runs on the worker after cb_ fired: re-arm, or signal.
  void runWork();
  static void onFenceSignaled(Fence& fence, FenceCallback& cb);

  mutable Mutex prevMutex_;
  FencePtr prev_ ZBUF_GUARDED_BY(prevMutex_);
  const FencePtr fence_;
  const std::uint64_t prevSeqno_;
  struct NodeCallback : FenceCallback {
    explicit NodeCallback(FenceChain* n) noexcept : FenceCallback(&onFenceSignaled), node(n) {}
    FenceChain* node;
  };
  NodeCallback cb_{this};                  // armed on one fence at a time
  std::shared_ptr<FenceChain> armedSelf_;  // keeps the node alive while cb_ is armed
  FenceChain* workNext_ = nullptr;         // the worker's queue link
};

}  // namespace zbuf
#pragma GCC visibility pop
