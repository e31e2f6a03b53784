// FileioQueue: see fileio_queue.h. ready_ is a fixed-capacity ring (input: completed blocks in
// completion order; output: free blocks), so the completion path never allocates.
#include "fileio_queue.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "zbuf/base/log.h"

namespace zbuf::iio {

ZBUF_LOG_CATEGORY(IioFileio);

FileioQueue::FileioQueue(dma::DmaEngine& engine, bool input, std::size_t frameBytes)
    : engine_(engine), input_(input), frameBytes_(frameBytes) {}

FileioQueue::~FileioQueue() {
  releaseBlocks();
}

void FileioQueue::releaseBlocks() {
  for (auto& b : blocks_) {
    if (b->iova != 0) {
      (void)engine_.device().iommu().unmap(b->iova);
      b->iova = 0;
    }
  }
  blocks_.clear();
}

Result<void> FileioQueue::configure(unsigned count, std::uint64_t blockBytes) {
  if (count == 0 || blockBytes == 0) {
    return Error(EINVAL, "iio_fileio_configure", "fileio needs at least one non-empty block");
  }
  const MutexLocker io(ioMutex_);
  {
    const MutexLocker list(listMutex_);
    if (enabled_) {
      return Error(EBUSY, "iio_fileio_configure", "buffer is enabled");
    }
  }
  const DmaDirection dir = input_ ? DmaDirection::FromDevice : DmaDirection::ToDevice;
  std::vector<std::unique_ptr<Block>> blocks;
  auto undo = [&] {
    for (auto& b : blocks) {
      if (b->iova != 0) {
        (void)engine_.device().iommu().unmap(b->iova);
      }
    }
  };
  for (unsigned i = 0; i < count; ++i) {
    auto block = std::make_unique<Block>();
    auto memory = sys::mmap(blockBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!memory.ok()) {
      undo();
      return std::move(memory).error();
    }
    block->memory = std::move(*memory);
    // Fault the pages in now, as dma_alloc_coherent hands out populated memory.
    std::memset(block->memory.data(), 0, blockBytes);
    auto iova = engine_.device().iommu().map(block->memory.bytes(), dir);
    if (!iova.ok()) {
      undo();
      return std::move(iova).error();
    }
    block->iova = *iova;
    block->descriptor.setVecs({dma::DmaVec{*iova, blockBytes}});
    Block* raw = block.get();
    block->descriptor.setCompletion(
        [this, raw](dma::DmaDescriptor& /*d*/, int status) { complete(*raw, status); });
    blocks.push_back(std::move(block));
  }
  std::vector<std::unique_ptr<Block>> old;
  {
    const MutexLocker list(listMutex_);
    old.swap(blocks_);
    blocks_ = std::move(blocks);
    blockBytes_ = blockBytes;
    ready_.assign(blocks_.size(), nullptr);
    incoming_.clear();
    incoming_.reserve(blocks_.size());
    readyHead_ = 0;
    readyCount_ = 0;
    current_ = nullptr;
    if (!input_) {
      for (auto& b : blocks_) {
        ready_[readyCount_++] = b.get();  // every output block starts free
      }
    }
  }
  for (auto& b : old) {
    (void)engine_.device().iommu().unmap(b->iova);
  }
  return {};
}

std::uint64_t FileioQueue::blockBytes() const {
  const MutexLocker list(listMutex_);
  return blockBytes_;
}

unsigned FileioQueue::blockCount() const {
  const MutexLocker list(listMutex_);
  return static_cast<unsigned>(blocks_.size());
}

FileioQueue::Block* FileioQueue::popReadyLocked() {
  if (readyCount_ == 0) {
    return nullptr;
  }
  Block* b = ready_[readyHead_];
  readyHead_ = (readyHead_ + 1) % ready_.size();
  --readyCount_;
  return b;
}

std::uint64_t FileioQueue::availableLocked() const {
  std::uint64_t bytes = readyCount_ * blockBytes_;
  if (current_ != nullptr) {
    bytes += blockBytes_ - current_->pos;
  }
  return bytes;
}

std::uint64_t FileioQueue::available() const {
  const MutexLocker list(listMutex_);
  return availableLocked();
}

void FileioQueue::submitLocked(Block& block) {
  block.pos = 0;
  if (!enabled_) {
    if (input_) {
      block.state = State::Free;
    } else {
      block.state = State::Queued;
      incoming_.push_back(&block);  // capacity reserved: never reallocates
    }
    return;
  }
  block.state = State::Queued;
  auto r = engine_.submit(block.descriptor);
  if (!r.ok()) {
    ++stats_.errors;
    block.state = State::Free;
    if (!input_) {
      ready_[(readyHead_ + readyCount_++) % ready_.size()] = &block;
    }
  }
}

void FileioQueue::complete(Block& block, int status) {
  const MutexLocker list(listMutex_);
  if (status == 0) {
    ++stats_.blocks;
  } else if (enabled_) {
    ++stats_.errors;
  }
  if (input_) {
    if (status == 0) {
      block.state = State::Ready;
      ready_[(readyHead_ + readyCount_++) % ready_.size()] = &block;
    } else if (enabled_) {
      submitLocked(block);  // a failed transfer produced nothing: hand the block back
      return;
    } else {
      block.state = State::Free;
    }
  } else {
    block.state = State::Free;
    ready_[(readyHead_ + readyCount_++) % ready_.size()] = &block;
  }
  if (waiters_ != 0) {
    cv_.notifyAll();
  }
  pollWait_.wakeUp();
}

void FileioQueue::enable() {
  const MutexLocker list(listMutex_);
  if (enabled_) {
    return;
  }
  enabled_ = true;
  if (input_) {
    for (auto& b : blocks_) {
      if (b->state == State::Free) {
        submitLocked(*b);
      }
    }
  } else {
    std::vector<Block*> pending;
    pending.swap(incoming_);
    incoming_.reserve(blocks_.size());
    for (Block* b : pending) {
      submitLocked(*b);
    }
  }
}

void FileioQueue::stop() {
  const MutexLocker list(listMutex_);
  enabled_ = false;
  cv_.notifyAll();
  pollWait_.wakeUp();
}

void FileioQueue::reset() {
  const MutexLocker io(ioMutex_);
  const MutexLocker list(listMutex_);
  readyHead_ = 0;
  readyCount_ = 0;
  current_ = nullptr;
  incoming_.clear();
  for (auto& b : blocks_) {
    b->state = State::Free;
    b->pos = 0;
    if (!input_) {
      ready_[readyCount_++] = b.get();
    }
  }
}

Result<std::size_t> FileioQueue::read(std::span<std::byte> out, bool nonblock,
                                      std::uint64_t watermarkBytes) {
  if (out.size() < frameBytes_) {
    return Error(EINVAL, "iio_buffer_read", "read smaller than one sample frame");
  }
  const std::size_t n = out.size() - out.size() % frameBytes_;
  if (nonblock) {
    // iio_buffer_read: a non-blocking read waits for nothing (to_wait = 0, whatever the
    // watermark or the enable state) and takes what is there; nothing is EAGAIN, never 0.
    const std::size_t copied = copyBlocks(out.data(), n, /*toApplication=*/true);
    if (copied == 0) {
      return Error(EAGAIN, "iio_buffer_read", "no data ready");
    }
    return copied;
  }
  {
    MutexLocker list(listMutex_);
    const std::uint64_t want =
        std::max<std::uint64_t>(std::min<std::uint64_t>(watermarkBytes, n), frameBytes_);
    while (enabled_ && availableLocked() < want) {
      ++waiters_;
      cv_.wait(list);
      --waiters_;
    }
    if (!enabled_) {
      // The kernel keeps a blocking reader waiting (for a signal) on a disabled, drained
      // buffer; zbuf has no signals to end that wait, so it reports end of file.
      return std::size_t{0};
    }
  }
  return copyBlocks(out.data(), n, /*toApplication=*/true);
}

Result<std::size_t> FileioQueue::write(std::span<const std::byte> in, bool nonblock) {
  if (in.size() < frameBytes_) {
    return Error(EINVAL, "iio_buffer_write", "write smaller than one sample frame");
  }
  const std::size_t n = in.size() - in.size() % frameBytes_;
  {
    MutexLocker list(listMutex_);
    while (availableLocked() == 0) {
      if (nonblock) {
        return Error(EAGAIN, "iio_buffer_write");
      }
      ++waiters_;
      cv_.wait(list);
      --waiters_;
    }
  }
  return copyBlocks(const_cast<std::byte*>(in.data()), n, /*toApplication=*/false);
}

std::size_t FileioQueue::copyBlocks(std::byte* app, std::size_t n, bool toApplication) {
  const MutexLocker io(ioMutex_);
  MutexLocker list(listMutex_);
  std::size_t copied = 0;
  // Input stops at a disable (the data is dropped); output may fill blocks while disabled.
  while (copied < n && (enabled_ || !input_)) {
    Block* b = current_ != nullptr ? current_ : popReadyLocked();
    if (b == nullptr) {
      break;
    }
    b->state = State::App;
    current_ = b;
    const std::uint64_t take = std::min<std::uint64_t>(n - copied, blockBytes_ - b->pos);
    std::byte* block = b->memory.data() + b->pos;
    list.unlock();  // copy outside the list lock: the hardware keeps completing meanwhile
    if (toApplication) {
      std::memcpy(app + copied, block, take);
    } else {
      std::memcpy(block, app + copied, take);
    }
    list.lock();
    b->pos += take;
    copied += take;
    if (b->pos == blockBytes_) {
      current_ = nullptr;
      submitLocked(*b);
    }
  }
  stats_.bytes += copied;
  return copied;
}

void FileioQueue::onStarved() {
  const MutexLocker list(listMutex_);
  if (!enabled_) {
    return;
  }
  if (input_) {
    ++stats_.overruns;
  } else {
    ++stats_.underruns;
  }
}

FileioStats FileioQueue::stats() const {
  const MutexLocker list(listMutex_);
  return stats_;
}

}  // namespace zbuf::iio
