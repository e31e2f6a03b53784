// DmabufQueue: see dmabuf_queue.h.
#include "dmabuf_queue.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "zbuf/base/log.h"
#include "zbuf/core/fence_signalling.h"
#include "zbuf/core/importer.h"
#include "zbuf/core/resv.h"
#include "zbuf/devices/iio/iio_uapi.h"

namespace zbuf::iio {

ZBUF_LOG_CATEGORY(IioDmabuf);

struct DmabufQueue::Block {
  ImportedBuffer import;  // attached and mapped from ATTACH to DETACH
  std::shared_ptr<Timeline> timeline;
  dma::DmaDescriptor descriptor;
  // Guarded by the queue's mutex_:
  State state = State::Idle;
  FencePtr fence;  // the fence of the transfer in flight
  Block* nextParked = nullptr;
  bool detached = false;
};

DmabufQueue::DmabufQueue(dma::DmaEngine& engine, bool input,
                         std::chrono::milliseconds enqueueTimeout)
    : engine_(engine), input_(input), enqueueTimeout_(enqueueTimeout) {}

DmabufQueue::~DmabufQueue() {
  detachAll();
  reap();
  // Whatever is left was never completed: the engine was destroyed or terminated without it.
  std::vector<std::shared_ptr<Block>> left;
  {
    const MutexLocker lock(mutex_);
    left.swap(zombies_);
  }
  for (auto& b : left) {
    if (b->fence) {
      b->fence->setError(-ECANCELED);
      b->fence->signal();
    }
    release(*b);
  }
}

std::shared_ptr<DmabufQueue::Block> DmabufQueue::findLocked(const Buffer& buffer) const {
  for (const auto& b : blocks_) {
    if (b->import.buffer().get() == &buffer) {
      return b;
    }
  }
  return nullptr;
}

void DmabufQueue::release(Block& block) {
  block.import.release();
}

Result<void> DmabufQueue::attach(const BufferPtr& buffer, bool nonblock) {
  if (!buffer) {
    return Error(EINVAL, "iio_buffer_attach_dmabuf", "no buffer");
  }
  reap();
  {
    const MutexLocker lock(mutex_);
    if (findLocked(*buffer)) {
      return Error(
          EBUSY, "iio_buffer_attach_dmabuf",
          fmt::format("buffer {} is already attached to this IIO buffer", buffer->inode()));
    }
  }
  auto block = std::make_shared<Block>();
  auto imported = ImportedBuffer::create(buffer, engine_.devicePtr(),
                                         input_ ? DmaDirection::FromDevice : DmaDirection::ToDevice,
                                         nonblock, "iio_buffer_attach_dmabuf");
  if (!imported.ok()) {
    return std::move(imported).error();
  }
  block->import = std::move(*imported);
  block->timeline = Timeline::create("iio", "iio");
  block->descriptor.setVecs(dma::DmaDescriptor::vecsFrom(block->import.table()));
  Block* raw = block.get();
  block->descriptor.setCompletion(
      [this, raw](dma::DmaDescriptor& /*d*/, int status) { complete(*raw, status); });
  {
    const MutexLocker lock(mutex_);
    if (!findLocked(*buffer)) {
      blocks_.push_back(block);
      return {};
    }
  }
  // Lost a race with another attach of the same buffer.
  release(*block);
  return Error(EBUSY, "iio_buffer_attach_dmabuf", "buffer attached concurrently");
}

Result<void> DmabufQueue::detach(const Buffer& buffer) {
  std::shared_ptr<Block> idle;
  {
    const MutexLocker lock(mutex_);
    auto it = std::find_if(blocks_.begin(), blocks_.end(),
                           [&](const auto& b) { return b->import.buffer().get() == &buffer; });
    if (it == blocks_.end()) {
      return Error(EPERM, "iio_buffer_detach_dmabuf", "buffer is not attached");
    }
    std::shared_ptr<Block> block = std::move(*it);
    blocks_.erase(it);
    block->detached = true;
    if (block->state == State::Parked) {
      // Never reached the hardware: unpark it and fail its fence so it still signals.
      Block** link = &parkedHead_;
      Block* prev = nullptr;
      while (*link != block.get()) {
        prev = *link;
        link = &(*link)->nextParked;
      }
      *link = block->nextParked;
      if (parkedTail_ == block.get()) {
        parkedTail_ = prev;
      }
      block->nextParked = nullptr;
      block->state = State::Idle;
      (void)block->import.endDeviceAccess();
      FencePtr fence = std::move(block->fence);
      const FenceSignallingSection section(fence.get());
      fence->setError(-ECANCELED);
      fence->signal();
      ++stats_.failed;
    }
    if (block->state == State::Idle) {
      idle = std::move(block);
    } else {
      zombies_.push_back(std::move(block));
    }
  }
  if (idle) {
    release(*idle);
  }
  reap();
  return {};
}

void DmabufQueue::detachAll() {
  for (;;) {
    const Buffer* buffer = nullptr;
    {
      const MutexLocker lock(mutex_);
      if (blocks_.empty()) {
        return;
      }
      buffer = blocks_.front()->import.buffer().get();
    }
    (void)detach(*buffer);
  }
}

void DmabufQueue::reap() {
  std::vector<std::shared_ptr<Block>> done;
  {
    const MutexLocker lock(mutex_);
    if (zombies_.empty()) {
      return;
    }
    auto keep = std::partition(zombies_.begin(), zombies_.end(),
                               [](const auto& b) { return b->state != State::Idle; });
    done.assign(std::make_move_iterator(keep), std::make_move_iterator(zombies_.end()));
    zombies_.erase(keep, zombies_.end());
  }
  for (auto& b : done) {
    release(*b);
  }
}

Result<FencePtr> DmabufQueue::enqueue(const Buffer& buffer, bool cyclic, std::uint64_t bytesUsed,
                                      bool nonblock) {
  if (bytesUsed == 0 || bytesUsed > buffer.size()) {
    return Error(
        EINVAL, "iio_buffer_enqueue_dmabuf",
        fmt::format("bytes_used {} not in 1..{} (the buffer's size)", bytesUsed, buffer.size()));
  }
  reap();
  std::shared_ptr<Block> block;
  {
    const MutexLocker lock(mutex_);
    block = findLocked(buffer);
  }
  if (!block) {
    return Error(EPERM, "iio_buffer_enqueue_dmabuf", "buffer is not attached");
  }
  // The fence is allocated before anything is published (the kernel's kmalloc).
  FencePtr fence = block->timeline->createFence();
  // Input: the device writes memory, so it waits for every reader and writer.
  auto slot = FenceSlot::reserve(buffer.resv(), usageRw(input_), enqueueTimeout_, nonblock,
                                 "iio_buffer_enqueue_dmabuf");
  if (!slot.ok()) {
    return std::move(slot).error();
  }
  MutexLocker lock(mutex_);  // the kernel's lock_queue
  slot->publish(fence, input_ ? ResvUsage::Write : ResvUsage::Read);
  ++stats_.enqueued;

  // From here the fence is visible: nothing may allocate, wait or take a resv lock.
  int error = 0;
  const char* why = nullptr;
  {
    const FenceSignallingSection section(fence.get());
    if (block->detached) {
      error = EPERM;
      why = "buffer detached during enqueue";
    } else if (block->state == State::Active) {
      error = EBUSY;
      why = "block already in flight";
    } else if (block->state == State::Parked) {
      error = EPERM;
      why = "block already queued";
    } else if (auto begun = block->import.beginDeviceAccess(); !begun.ok()) {
      error = begun.code();
      why = "cache maintenance before the transfer (begin device access) failed";
    } else {
      block->fence = fence;
      block->descriptor.setLength(bytesUsed);
      block->descriptor.setCyclic(cyclic);
      if (enabled_) {
        block->state = State::Active;
        auto r = engine_.queue(block->descriptor);  // issued after the queue lock, below
        if (!r.ok()) {
          block->state = State::Idle;
          block->fence.reset();
          (void)block->import.endDeviceAccess();
          error = r.code();
          why = "the DMA engine refused the transfer";
        }
      } else {
        block->state = State::Parked;
        if (parkedTail_ != nullptr) {
          parkedTail_->nextParked = block.get();
        } else {
          parkedHead_ = block.get();
        }
        parkedTail_ = block.get();
      }
    }
    if (error != 0) {
      fence->setError(-error);
      fence->signal();
      ++stats_.failed;
    }
  }
  lock.unlock();
  if (error != 0) {
    return Error(error, "iio_buffer_enqueue_dmabuf", why);
  }
  // A sleeping worker is woken only now: woken under the queue lock, it would finish a small
  // block and block at once on that lock in complete() (a second futex wake per enqueue).
  engine_.issuePending();
  return fence;
}

void DmabufQueue::complete(Block& block, int status) {
  const MutexLocker lock(mutex_);
  FencePtr fence = std::move(block.fence);
  const FenceSignallingSection section(fence.get());
  // What the device wrote becomes visible before the fence says so (the v5 series ends the
  // access in its signalling path, before dma_fence_signal).
  if (auto r = block.import.endDeviceAccess(); !r.ok() && status == 0) {
    status = r.error().negative();
  }
  block.state = State::Idle;
  if (status < 0) {
    fence->setError(status);
    ++stats_.failed;
  } else {
    ++stats_.completed;
  }
  fence->signal();
}

void DmabufQueue::enable() {
  const MutexLocker lock(mutex_);
  enabled_ = true;
  while (parkedHead_ != nullptr) {
    Block& b = *parkedHead_;
    parkedHead_ = b.nextParked;
    b.nextParked = nullptr;
    b.state = State::Active;
    if (auto r = engine_.submit(b.descriptor); !r.ok()) {
      (void)b.import.endDeviceAccess();
      b.state = State::Idle;
      FencePtr fence = std::move(b.fence);
      fence->setError(r.error().negative());
      fence->signal();
      ++stats_.failed;
    }
  }
  parkedTail_ = nullptr;
}

void DmabufQueue::disable() {
  const MutexLocker lock(mutex_);
  enabled_ = false;
}

std::size_t DmabufQueue::attachedCount() const {
  const MutexLocker lock(mutex_);
  return blocks_.size();
}

std::size_t DmabufQueue::zombieCount() const {
  const MutexLocker lock(mutex_);
  return zombies_.size();
}

DmabufStats DmabufQueue::stats() const {
  const MutexLocker lock(mutex_);
  return stats_;
}

}  // namespace zbuf::iio
