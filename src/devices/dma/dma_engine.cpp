// DmaEngine: the worker takes the head of an intrusive queue as the active descriptor, runs
// one pass with the lock dropped (translate each vec, then produce/consume chunk by chunk and
// pace), and either repeats it (cyclic, nothing queued behind it) or pops it and calls its
// completion with the lock dropped. terminateAll() detaches the queued descriptors, flags the
// active one for abort (the worker checks the flag per chunk and wakes from pacing sleeps),
// waits for the active one's completion to return, then completes the detached ones itself.
#include "zbuf/devices/dma/dma_engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "zbuf/base/log.h"

namespace zbuf::dma {

ZBUF_LOG_CATEGORY(Dma);

const char* toString(TransferDirection dir) noexcept {
  return dir == TransferDirection::DevToMem ? "dev-to-mem" : "mem-to-dev";
}

const char* toString(DataMode mode) noexcept {
  return mode == DataMode::Data ? "data" : "benchmark";
}

void DmaDescriptor::setVecs(std::vector<DmaVec> vecs) {
  vecs_ = std::move(vecs);
  tlb_.assign(vecs_.size(), std::span<std::byte>());
  tlbValid_ = false;
  total_ = 0;
  for (const DmaVec& v : vecs_) {
    total_ += v.len;
  }
}

std::vector<DmaVec> DmaDescriptor::vecsFrom(const SgTable& table) {
  std::vector<DmaVec> vecs;
  vecs.reserve(table.segmentCount());
  for (const SgSegment& s : table.segments()) {
    vecs.push_back(DmaVec{s.dmaAddress, s.length});
  }
  return vecs;
}

struct DmaEngine::Private {};

Result<std::unique_ptr<DmaEngine>> DmaEngine::create(DmaEngineConfig config) {
  if (!config.device) {
    return Error(EINVAL, "dma_engine_create", fmt::format("DMA engine {}: no device", config.name));
  }
  if (config.mode == DataMode::Data) {
    if (config.direction == TransferDirection::DevToMem && !config.produce) {
      return Error(
          EINVAL, "dma_engine_create",
          fmt::format("DMA engine {}: data mode dev-to-mem needs a producer", config.name));
    }
    if (config.direction == TransferDirection::MemToDev && !config.consume) {
      return Error(
          EINVAL, "dma_engine_create",
          fmt::format("DMA engine {}: data mode mem-to-dev needs a consumer", config.name));
    }
  }
  if (config.chunkBytes == 0) {
    config.chunkBytes = std::uint64_t{256} * 1024;
  }
  return std::make_unique<DmaEngine>(Private{}, std::move(config));
}

DmaEngine::DmaEngine(Private /*key*/, DmaEngineConfig config)
    : config_(std::move(config)),
      idleSpin_(config_.idleSpin),
      bytesPerSecond_(config_.bytesPerSecond),
      mode_(config_.mode) {
  faults_.reserve(16);
  if (const char* us = std::getenv("ZBUF_DMA_IDLE_SPIN_US"); us != nullptr) {
    idleSpin_ = std::chrono::microseconds(std::strtoul(us, nullptr, 10));
  }
  worker_ = HardwareThread(config_.name, [this] { run(); });
}

DmaEngine::~DmaEngine() {
  {
    const MutexLocker lock(mutex_);
    stop_ = true;
  }
  terminateAll(-ECANCELED);
  {
    const MutexLocker lock(mutex_);
    workCv_.notifyAll();
  }
  worker_.join();
}

Result<void> DmaEngine::submit(DmaDescriptor& d) noexcept {
  bool wake = false;
  if (auto r = queue(d, wake); !r.ok()) {
    return r;
  }
  // Woken after the unlock: a worker woken under the lock would only block on it again (two
  // futex wakes per submit instead of one).
  if (wake) {
    workCv_.notifyOne();
  }
  return {};
}

Result<void> DmaEngine::queue(DmaDescriptor& d) noexcept {
  bool wake = false;
  return queue(d, wake);
}

void DmaEngine::issuePending() noexcept {
  bool wake = false;
  {
    const MutexLocker lock(mutex_);
    wake = workerWaiting_ && head_ != nullptr;
  }
  if (wake) {
    workCv_.notifyOne();
  }
}

Result<void> DmaEngine::queue(DmaDescriptor& d, bool& wake) noexcept {
  if (d.vecs_.empty()) {
    return Error(EINVAL, "dma_submit");
  }
  if (d.length_ > d.total_) {
    return Error(EINVAL, "dma_submit");
  }
  const MutexLocker lock(mutex_);
  if (stop_) {
    return Error(ESHUTDOWN, "dma_submit");
  }
  if (d.queued_) {
    return Error(EBUSY, "dma_submit");
  }
  d.queued_ = true;
  d.next_ = nullptr;
  d.passes_ = 0;
  d.bytesTransferred_ = 0;
  if (tail_ != nullptr) {
    tail_->next_ = &d;
  } else {
    head_ = &d;
  }
  tail_ = &d;
  ++pending_;
  ++stats_.submitted;
  submitSeq_.fetch_add(1, std::memory_order_release);
  wake = workerWaiting_;
  return {};
}

void DmaEngine::terminateAll(int status) {
  MutexLocker lock(mutex_);
  DmaDescriptor* list = nullptr;
  const bool onWorker = std::this_thread::get_id() == workerId_;
  if (active_ != nullptr && !completing_) {
    // active_ is head_: keep it, detach what follows, and stop it.
    list = active_->next_;
    active_->next_ = nullptr;
    tail_ = active_;
    abort_ = true;
    abortStatus_ = status;
    workCv_.notifyAll();
  } else {
    list = head_;
    head_ = nullptr;
    tail_ = nullptr;
  }
  if (active_ != nullptr && !onWorker) {
    const std::uint64_t snapshot = finished_;
    idleCv_.wait(lock, [&]() ZBUF_REQUIRES(mutex_) { return finished_ > snapshot; });
  }
  while (list != nullptr) {
    DmaDescriptor& d = *list;
    list = d.next_;
    d.next_ = nullptr;
    d.queued_ = false;
    --pending_;
    ++stats_.failed;
    lock.unlock();
    if (d.completion_) {
      d.completion_(d, status);
    }
    lock.lock();
    ++finished_;
  }
  idleCv_.notifyAll();
}

bool DmaEngine::waitIdle(Duration timeout) {
  MutexLocker lock(mutex_);
  return idleCv_.waitFor(
      lock, timeout, [&]() ZBUF_REQUIRES(mutex_) { return pending_ == 0 && active_ == nullptr; });
}

void DmaEngine::setRate(std::uint64_t bytesPerSecond) {
  const MutexLocker lock(mutex_);
  bytesPerSecond_ = bytesPerSecond;
}

void DmaEngine::setMode(DataMode mode) {
  const MutexLocker lock(mutex_);
  if (mode == DataMode::Data) {
    const bool missing =
        config_.direction == TransferDirection::DevToMem ? !config_.produce : !config_.consume;
    if (missing) {
      log(LogDma, LogLevel::Warn, "DMA engine {}: data mode without a callback ignored",
          config_.name);
      return;
    }
  }
  mode_ = mode;
}

DataMode DmaEngine::mode() const {
  const MutexLocker lock(mutex_);
  return mode_;
}

void DmaEngine::injectError(std::uint64_t nth, int errnoValue) {
  const MutexLocker lock(mutex_);
  faults_.push_back(
      Fault{transfersStarted_ + std::max<std::uint64_t>(nth, 1), errnoValue, Duration::zero()});
}

void DmaEngine::injectStall(std::uint64_t nth, Duration stall) {
  const MutexLocker lock(mutex_);
  faults_.push_back(Fault{transfersStarted_ + std::max<std::uint64_t>(nth, 1), 0, stall});
}

void DmaEngine::clearFaults() {
  const MutexLocker lock(mutex_);
  faults_.clear();
}

DmaEngineStats DmaEngine::stats() const {
  const MutexLocker lock(mutex_);
  return stats_;
}

std::uint64_t DmaEngine::streamOffset() const {
  const MutexLocker lock(mutex_);
  return streamOffset_;
}

std::size_t DmaEngine::pending() const {
  const MutexLocker lock(mutex_);
  return pending_;
}

bool DmaEngine::sleepUntilLocked(MutexLocker& lock,
                                 std::chrono::steady_clock::time_point deadline) {
  return !workCv_.waitUntil(lock, deadline,
                            [&]() ZBUF_REQUIRES(mutex_) { return abort_.load() || stop_; });
}

bool DmaEngine::pace(std::uint64_t bytes, std::uint64_t rate) {
  if (rate == 0) {
    return !abort_.load(std::memory_order_relaxed);
  }
  due_ += std::chrono::nanoseconds(bytes * 1'000'000'000ULL / rate);
  if (due_ <= std::chrono::steady_clock::now()) {
    return !abort_.load(std::memory_order_relaxed);
  }
  MutexLocker lock(mutex_);
  return sleepUntilLocked(lock, due_);
}

int DmaEngine::executePass(DmaDescriptor& d, std::uint64_t streamBase, DataMode mode,
                           std::uint64_t rate) {
  const bool write = config_.direction == TransferDirection::DevToMem;
  const auto& callback = write ? config_.produce : config_.consume;
  const bool touch = mode == DataMode::Data && callback;
  const auto now = std::chrono::steady_clock::now();
  if (due_ < now) {
    due_ = now;  // an idle engine banks no time
  }
  // Translate every vec through the IOMMU before moving a byte (a descriptor that leaves the
  // mapping fails as a whole), unless the translations cached at this IOMMU generation are
  // still valid: nothing was unmapped since (an IOTLB hit).
  Iommu& iommu = config_.device->iommu();
  const std::uint64_t generation = iommu.generation();
  if (!d.tlbValid_ || d.tlbGeneration_ != generation) {
    d.tlbValid_ = false;
    for (std::size_t i = 0; i < d.vecs_.size(); ++i) {
      auto host = iommu.translate(d.vecs_[i].addr, d.vecs_[i].len, write);
      if (!host.ok()) {
        log(LogDma, LogLevel::Debug, "DMA engine {}: transfer failed: {}", config_.name,
            host.error().describe());
        return host.error().negative();
      }
      d.tlb_[i] = *host;
    }
    d.tlbGeneration_ = generation;
    d.tlbValid_ = true;
  }
  std::uint64_t remaining = d.length();
  std::uint64_t blockOffset = 0;
  d.bytesTransferred_ = 0;
  for (std::size_t i = 0; i < d.vecs_.size() && remaining != 0; ++i) {
    const std::uint64_t len = std::min<std::uint64_t>(d.tlb_[i].size(), remaining);
    const std::span<std::byte> host = d.tlb_[i].first(len);
    for (std::uint64_t pos = 0; pos < len;) {
      const std::uint64_t n = std::min(config_.chunkBytes, len - pos);
      if (touch) {
        callback(DmaChunk{host.subspan(pos, n), streamBase + blockOffset, blockOffset, d});
      }
      pos += n;
      blockOffset += n;
      d.bytesTransferred_ = blockOffset;
      if (!pace(n, rate)) {
        return abortStatus_.load();
      }
    }
    remaining -= len;
  }
  return 0;
}

void DmaEngine::completeLocked(DmaDescriptor& d, int status) {
  head_ = d.next_;
  if (head_ == nullptr) {
    tail_ = nullptr;
  }
  d.next_ = nullptr;
  d.queued_ = false;
  --pending_;
  if (status == 0) {
    ++stats_.completed;
  } else {
    ++stats_.failed;
  }
  completing_ = true;
  mutex_.unlock();
  if (d.completion_) {
    d.completion_(d, status);
  }
  mutex_.lock();
  // `d` may be gone now. The hardware ran dry if nothing was queued meanwhile.
  if (head_ == nullptr && !abort_ && !stop_) {
    ++stats_.starved;
    if (config_.onStarved) {
      mutex_.unlock();
      config_.onStarved();
      mutex_.lock();
    }
  }
  completing_ = false;
  active_ = nullptr;
  abort_ = false;
  ++finished_;
  idleCv_.notifyAll();
}

bool DmaEngine::spinForWork() {
  if (idleSpin_.count() <= 0) {
    return false;
  }
  if (spinSkip_ > 0) {
    --spinSkip_;
    return false;
  }
  const std::uint64_t seen = submitSeq_.load(std::memory_order_acquire);
  mutex_.unlock();
  const auto until = std::chrono::steady_clock::now() + idleSpin_;
  bool came = false;
  for (unsigned i = 0;; ++i) {
    if (submitSeq_.load(std::memory_order_acquire) != seen) {
      came = true;
      break;
    }
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= until) {
      break;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();  // the spin-wait hint: yields the core's resources to its sibling
#endif
  }
  if (!came && config_.afterVainSpin) {
    config_.afterVainSpin();
  }
  mutex_.lock();
  // A submit between the last look and the relock saw no waiting worker and woke nobody: the
  // worker must see it here, or it sleeps with work queued.
  came = came || submitSeq_.load(std::memory_order_acquire) != seen;
  if (came) {
    spinBackoff_ = 1;
  } else {
    spinSkip_ = spinBackoff_;
    spinBackoff_ = std::min(spinBackoff_ * 2, 64U);
  }
  return came;
}

void DmaEngine::run() {
  MutexLocker lock(mutex_);
  workerId_ = std::this_thread::get_id();
  for (;;) {
    while (!stop_ && head_ == nullptr) {
      if (spinForWork()) {
        continue;  // a submission came while spinning: no wake-up was needed
      }
      if (stop_ || head_ != nullptr) {
        continue;  // stopped (or given work) while the lock was dropped for the spin
      }
      workerWaiting_ = true;
      workCv_.wait(lock);
      workerWaiting_ = false;
    }
    if (head_ == nullptr) {
      break;  // stopping, nothing left
    }
    DmaDescriptor& d = *head_;
    active_ = &d;
    ++transfersStarted_;
    int status = 0;
    Duration stall = Duration::zero();
    for (auto it = faults_.begin(); it != faults_.end();) {
      if (it->at == transfersStarted_) {
        if (it->error != 0 && status == 0) {
          status = -it->error;
        }
        stall += it->stall;
        it = faults_.erase(it);
      } else {
        ++it;
      }
    }
    if (d.passes_ == 0) {
      d.streamOffset_ = streamOffset_;
    }
    const std::uint64_t streamBase =
        config_.direction == TransferDirection::MemToDev ? d.streamOffset_ : streamOffset_;
    if (stall > Duration::zero() &&
        !sleepUntilLocked(lock, std::chrono::steady_clock::now() + stall)) {
      status = abortStatus_;
    }
    if (status == 0 && abort_) {
      status = abortStatus_;
    }
    if (status == 0) {
      const DataMode mode = mode_;
      const std::uint64_t rate = bytesPerSecond_;
      lock.unlock();
      status = executePass(d, streamBase, mode, rate);
      lock.lock();
    }
    if (status != 0 && d.passes_ == 0 && config_.direction == TransferDirection::MemToDev) {
      streamOffset_ += d.length();  // the memory held those stream bytes; they are skipped
    }
    if (status == 0) {
      ++d.passes_;
      ++stats_.passes;
      stats_.bytes += d.bytesTransferred_;
      if (config_.direction == TransferDirection::DevToMem || d.passes_ == 1) {
        streamOffset_ += d.bytesTransferred_;
      }
      if (d.cyclic_) {
        if (d.next_ == nullptr && !abort_ && !stop_) {
          continue;  // repeat the pass; d stays active
        }
        if (abort_) {
          status = abortStatus_;
        }
      }
    }
    completeLocked(d, status);
  }
}

}  // namespace zbuf::dma
