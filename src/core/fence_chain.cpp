// FenceChain implementation: dma_fence_chain_{init,walk,find_seqno,signaled,enable_signaling}.
//
// The worker: a lock-free stack of nodes whose callback fired (pushed from the signaller's
// callback, which must not allocate or take locks) and one thread that pops them in FIFO order
// and re-arms or signals them. It starts with the first chain and lives as long as the process.
#include "zbuf/core/fence_chain.h"

#include <fmt/format.h>

#include <thread>

#include "zbuf/base/sys.h"

namespace zbuf {

class FenceChainWorker {
 public:
  static FenceChainWorker& instance() {
    static FenceChainWorker* worker = [] {
      auto* w = new FenceChainWorker();  // never freed: the thread runs until the process ends
      std::thread([w] { w->run(); }).detach();
      return w;
    }();
    return *worker;
  }

  // Lock-free and allocation-free: safe from a fence callback.
  void push(FenceChain* node) noexcept {
    FenceChain* head = head_.load();
    do {
      node->workNext_ = head;
    } while (!head_.compare_exchange_weak(head, node));
    if (wake_.exchange(1) == 0) {
      sys::futexWake(wake_, 1);
    }
  }

 private:
  void run() {
    sys::setThreadName("zbuf-fence-chn");
    for (;;) {
      FenceChain* list = head_.exchange(nullptr);
      if (list == nullptr) {
        wake_.store(0);
        if (head_.load() == nullptr) {
          (void)sys::futexWait(wake_, 0, std::nullopt);
        }
        continue;
      }
      FenceChain* fifo = nullptr;  // reverse the stack: oldest first
      while (list != nullptr) {
        FenceChain* next = list->workNext_;
        list->workNext_ = fifo;
        fifo = list;
        list = next;
      }
      while (fifo != nullptr) {
        FenceChain* next = fifo->workNext_;
        fifo->runWork();  // may release the node
        fifo = next;
      }
    }
  }

  std::atomic<FenceChain*> head_{nullptr};
  std::atomic<std::uint32_t> wake_{0};
};

struct FenceChain::Private {};

Result<std::shared_ptr<FenceChain>> FenceChain::create(FencePtr prev, FencePtr fence,
                                                       std::uint64_t seqno) {
  if (fence == nullptr) {
    return Error(EINVAL, "FenceChain::create", "a chain node needs a fence");
  }
  if (isChain(*fence)) {
    return Error(EINVAL, "FenceChain::create",
                 "the contained fence is a chain: chains link through prev only (flatten it "
                 "into a FenceArray instead)");
  }
  const FenceChain* prevChain = prev != nullptr ? from(*prev) : nullptr;
  std::uint64_t context = 0;
  std::uint64_t prevSeqno = 0;
  if (prevChain != nullptr && seqno > prev->seqno()) {  // chains compare 64-bit seqnos
    context = prev->context();
    prevSeqno = prev->seqno();
  } else {
    context = Timeline::allocateContexts(1);
    if (prevChain != nullptr) {
      seqno = std::max(prev->seqno(), seqno);
    }
  }
  (void)FenceChainWorker::instance();  // start the worker here, where allocating is allowed
  return std::make_shared<FenceChain>(Private{}, std::move(prev), std::move(fence), context, seqno,
                                      prevSeqno);
}

FenceChain::FenceChain(Private /*key*/, FencePtr prev, FencePtr fence, std::uint64_t context,
                       std::uint64_t seqno, std::uint64_t prevSeqno)
    : Fence(context, seqno, /*seqno64=*/true),
      prev_(std::move(prev)),
      fence_(std::move(fence)),
      prevSeqno_(prevSeqno) {}

FenceChain::~FenceChain() {
  // dma_fence_chain_release: unlink the nodes only we hold, one at a time, so that releasing a
  // long chain does not recurse once per node.
  FencePtr prev = std::move(prev_);
  while (prev != nullptr && prev.use_count() == 1) {
    FenceChain* prevChain = from(*prev);
    if (prevChain == nullptr) {
      break;
    }
    FencePtr next = std::move(prevChain->prev_);  // we hold the last reference: no lock needed
    prev = std::move(next);                       // frees the old prev, whose prev_ is empty
  }
}

FenceChain* FenceChain::from(Fence& fence) noexcept {
  return dynamic_cast<FenceChain*>(&fence);
}

const FenceChain* FenceChain::from(const Fence& fence) noexcept {
  return dynamic_cast<const FenceChain*>(&fence);
}

std::shared_ptr<FenceChain> FenceChain::from(const FencePtr& fence) noexcept {
  return std::dynamic_pointer_cast<FenceChain>(fence);
}

const FencePtr& FenceChain::contained(const FencePtr& fence) noexcept {
  const FenceChain* chain = fence != nullptr ? from(*fence) : nullptr;
  return chain != nullptr ? chain->fence_ : fence;
}

FencePtr FenceChain::prev() const {
  const MutexLocker lock(prevMutex_);
  return prev_;
}

void FenceChain::replacePrev(const FencePtr& expected, FencePtr replacement) {
  {
    const MutexLocker lock(prevMutex_);
    if (prev_ != expected) {
      return;  // another walker got there first
    }
    prev_.swap(replacement);
  }
  // `replacement` now holds the old link; it is released here, outside prevMutex_.
}

FencePtr FenceChain::walk(const FencePtr& fence) {
  FenceChain* chain = fence != nullptr ? from(*fence) : nullptr;
  if (chain == nullptr) {
    return nullptr;
  }
  FencePtr prev;
  while ((prev = chain->prev()) != nullptr) {
    FencePtr replacement;
    if (FenceChain* prevChain = from(*prev); prevChain != nullptr) {
      if (!prevChain->fence_->isSignaled()) {
        break;
      }
      replacement = prevChain->prev();
    } else if (!prev->isSignaled()) {
      break;
    }
    chain->replacePrev(prev, std::move(replacement));
  }
  return prev;
}

Result<void> FenceChain::findSeqno(FencePtr& fence, std::uint64_t seqno) {
  if (seqno == 0) {
    return {};
  }
  const FenceChain* head = fence != nullptr ? from(*fence) : nullptr;
  if (head == nullptr) {
    return Error(
        EINVAL, "FenceChain::findSeqno",
        fmt::format("{} is not a fence chain", fence != nullptr ? fence->driverName() : "(null)"));
  }
  if (head->seqno() < seqno) {
    return Error(EINVAL, "FenceChain::findSeqno",
                 fmt::format("seqno {} is beyond the chain head's seqno {}", seqno, head->seqno()));
  }
  const std::uint64_t context = head->context();
  FencePtr iter = fence;
  while (iter != nullptr) {
    const FenceChain* c = from(*iter);
    if (iter->context() != context || c == nullptr || c->prevSeqno_ < seqno) {
      break;
    }
    iter = walk(iter);
  }
  fence = std::move(iter);
  return {};
}

bool FenceChain::checkSignaled() {
  for (FencePtr it = shared_from_this(); it != nullptr; it = walk(it)) {
    if (!contained(it)->isSignaled()) {
      return false;
    }
  }
  return true;
}

void FenceChain::onDeadline(std::uint64_t deadlineNs) {
  for (FencePtr it = shared_from_this(); it != nullptr; it = walk(it)) {
    contained(it)->setDeadline(deadlineNs);
  }
}

bool FenceChain::arm() {
  // Set before queuing: the callback may fire (and the worker run) before addCallback returns.
  armedSelf_ = std::static_pointer_cast<FenceChain>(shared_from_this());
  for (FencePtr it = armedSelf_; it != nullptr; it = walk(it)) {
    if (contained(it)->addCallback(cb_).ok()) {
      return true;
    }
  }
  armedSelf_.reset();  // the caller still holds a reference
  return false;
}

bool FenceChain::enableSignalingUnlocked() {
  return arm();
}

void FenceChain::onFenceSignaled(Fence& /*fence*/, FenceCallback& cb) {
  FenceChainWorker::instance().push(static_cast<NodeCallback&>(cb).node);
}

void FenceChain::runWork() {
  const std::shared_ptr<FenceChain> self = std::move(armedSelf_);
  if (!arm()) {
    signal();  // nothing left unsignalled
  }
}

}  // namespace zbuf
