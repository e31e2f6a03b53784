// FenceArray: one fence standing for several (the kernel's dma_fence_array).
//
// Promises:
//  - Driver name "dma_fence_array", timeline name "unbound"; context and seqno are the
//    caller's (mergeFences() uses a fresh context and seqno 1, as the kernel does).
//  - Signals when all members have signalled, or when the first one has (signalOnAny). The
//    first non-zero member error (in the order members signal) becomes the array's error.
//  - Members are leaf fences: an array or a chain as a member is refused (EINVAL), as is an
//    empty list (EINVAL), a null member (EINVAL) or a context of 0 (EINVAL: reserved for stubs).
//  - Owns a reference to every member for its whole life. Everything that can fail or allocate
//    happens in create(): the callback nodes for the members are allocated there, so enabling
//    signalling and the members' callbacks never allocate.
//  - Signalling is enabled lazily (first addCallback/wait/enableSwSignaling), as in the kernel;
//    until then isSignaled() polls the members. setDeadline() forwards to every member.
//  - The member callbacks signal the array in the member's signalling context (the kernel defers
//    this to an irq_work; zbuf has no interrupt context to escape, and the array's enable step
//    runs without the array's lock, so the lock order is always member -> array).
//  - Destroying the array removes the callbacks it still has queued on members (signalOnAny).
//
// Thread-safety: every member function is thread-safe; fences() is immutable after create().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "zbuf/base/result.h"
#include "zbuf/core/fence.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

class FenceArray final : public Fence {
 public:
  [[nodiscard]] static Result<std::shared_ptr<FenceArray>> create(std::vector<FencePtr> fences,
                                                                  std::uint64_t context,
                                                                  std::uint64_t seqno,
                                                                  bool signalOnAny);

  // to_dma_fence_array: the array, or nullptr if `fence` is not one.
  [[nodiscard]] static FenceArray* from(Fence& fence) noexcept;
  [[nodiscard]] static const FenceArray* from(const Fence& fence) noexcept;
  [[nodiscard]] static std::shared_ptr<FenceArray> from(const FencePtr& fence) noexcept;
  [[nodiscard]] static bool isArray(const Fence& fence) noexcept { return from(fence) != nullptr; }

  [[nodiscard]] const std::vector<FencePtr>& fences() const noexcept { return fences_; }
  [[nodiscard]] bool signalOnAny() const noexcept { return signalOnAny_; }
  // dma_fence_array_first: the first member (arrays are never empty).
  [[nodiscard]] const FencePtr& first() const noexcept { return fences_.front(); }

  [[nodiscard]] std::string_view driverName() const override { return "dma_fence_array"; }
  [[nodiscard]] std::string_view timelineName() const override { return "unbound"; }

  ~FenceArray() override;
  FenceArray(const FenceArray&) = delete;
  FenceArray& operator=(const FenceArray&) = delete;

  struct Private;  // construction key: use create()
  FenceArray(Private key, std::vector<FencePtr> fences, std::uint64_t context, std::uint64_t seqno,
             bool signalOnAny);

 protected:
  bool enableSignalingUnlocked() override;
  bool checkSignaled() override;
  void onDeadline(std::uint64_t deadlineNs) override;

 private:
  struct MemberCallback : FenceCallback {
    MemberCallback() noexcept : FenceCallback(&onMemberSignaled) {}
    FenceArray* array = nullptr;
  };
  static void onMemberSignaled(Fence& member, FenceCallback& cb);
  // Records a member's error (the first non-zero one wins) and counts it off.
  void memberDone(int memberError) noexcept;

  const std::vector<FencePtr> fences_;
  const bool signalOnAny_;
  std::unique_ptr<MemberCallback[]> callbacks_;  // one per member, allocated at create()
  std::atomic<int> numPending_;                  // members still awaited (1 with signalOnAny)
  std::atomic<int> firstError_{0};               // first member error seen, or 0
};

}  // namespace zbuf
#pragma GCC visibility pop
