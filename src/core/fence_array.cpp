// FenceArray implementation: dma_fence_array_{create,enable_signaling,signaled,cb_func}.
//
// numPending_ starts at the member count (1 with signalOnAny). Enabling signalling queues one
// pre-allocated callback per member; a member that is already signalled is counted off at once.
// Whoever brings numPending_ to 0 sets the first error and signals the array.
#include "zbuf/core/fence_array.h"

#include <fmt/format.h>

#include "zbuf/core/fence_chain.h"

namespace zbuf {

struct FenceArray::Private {};

Result<std::shared_ptr<FenceArray>> FenceArray::create(std::vector<FencePtr> fences,
                                                       std::uint64_t context, std::uint64_t seqno,
                                                       bool signalOnAny) {
  if (fences.empty()) {
    return Error(EINVAL, "FenceArray::create", "a fence array needs at least one member");
  }
  if (context == 0) {
    return Error(EINVAL, "FenceArray::create", "context 0 is reserved for stub fences");
  }
  for (std::size_t i = 0; i < fences.size(); ++i) {
    const Fence* f = fences[i].get();
    if (f == nullptr) {
      return Error(EINVAL, "FenceArray::create", fmt::format("member {} is null", i));
    }
    if (isArray(*f) || FenceChain::isChain(*f)) {
      return Error(EINVAL, "FenceArray::create",
                   fmt::format("member {} ({}) is a container: arrays must hold leaf fences "
                               "only (flatten with unwrapFences())",
                               i, f->driverName()));
    }
  }
  return std::make_shared<FenceArray>(Private{}, std::move(fences), context, seqno, signalOnAny);
}

FenceArray::FenceArray(Private /*key*/, std::vector<FencePtr> fences, std::uint64_t context,
                       std::uint64_t seqno, bool signalOnAny)
    : Fence(context, seqno),
      fences_(std::move(fences)),
      signalOnAny_(signalOnAny),
      callbacks_(std::make_unique<MemberCallback[]>(fences_.size())),
      numPending_(signalOnAny ? 1 : static_cast<int>(fences_.size())) {
  for (std::size_t i = 0; i < fences_.size(); ++i) {
    callbacks_[i].array = this;
  }
}

FenceArray::~FenceArray() {
  // removeCallback() takes the member's lock, so a member callback still running for us has
  // finished when it returns.
  for (std::size_t i = 0; i < fences_.size(); ++i) {
    fences_[i]->removeCallback(callbacks_[i]);
  }
}

FenceArray* FenceArray::from(Fence& fence) noexcept {
  return dynamic_cast<FenceArray*>(&fence);
}

const FenceArray* FenceArray::from(const Fence& fence) noexcept {
  return dynamic_cast<const FenceArray*>(&fence);
}

std::shared_ptr<FenceArray> FenceArray::from(const FencePtr& fence) noexcept {
  return std::dynamic_pointer_cast<FenceArray>(fence);
}

void FenceArray::memberDone(int memberError) noexcept {
  if (memberError != 0) {
    int expected = 0;
    firstError_.compare_exchange_strong(expected, memberError, std::memory_order_acq_rel);
  }
  if (numPending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    const int err = firstError_.load(std::memory_order_acquire);
    if (err != 0) {
      trySetError(err);
    }
    signal();
  }
}

void FenceArray::onMemberSignaled(Fence& member, FenceCallback& cb) {
  static_cast<MemberCallback&>(cb).array->memberDone(member.error());
}

bool FenceArray::enableSignalingUnlocked() {
  for (std::size_t i = 0; i < fences_.size(); ++i) {
    if (!fences_[i]->addCallback(callbacks_[i]).ok()) {
      // Already signalled: count it off now. If that completes the array, it signals here.
      memberDone(fences_[i]->error());
      if (isSignaledFlag()) {
        break;
      }
    }
  }
  return true;
}

bool FenceArray::checkSignaled() {
  if (numPending_.load(std::memory_order_acquire) <= 0) {
    return true;
  }
  // Signalling not enabled (or not complete): poll the members, as dma_fence_array_signaled.
  std::size_t done = 0;
  int err = 0;
  for (const FencePtr& f : fences_) {
    if (f->isSignaled()) {
      ++done;
      if (err == 0) {
        err = f->error();
      }
    }
  }
  const bool complete = signalOnAny_ ? done > 0 : done == fences_.size();
  if (complete && err != 0) {
    trySetError(err);
  }
  return complete;
}

void FenceArray::onDeadline(std::uint64_t deadlineNs) {
  for (const FencePtr& f : fences_) {
    f->setDeadline(deadlineNs);
  }
}

}  // namespace zbuf
