// IioBuffer: the attribute state machine and the glue between the DMA engine's callbacks (the
// ADC pattern generator, the DAC checker, starvation) and the two queues.
#include "zbuf/devices/iio/iio_buffer.h"

#include <fmt/format.h>

#include "dmabuf_queue.h"
#include "fileio_queue.h"
#include "zbuf/devices/iio/iio_uapi.h"

namespace zbuf::iio {

namespace {
constexpr std::uint64_t kDefaultBufferBytes = 4ULL << 20;
}  // namespace

const char* toString(IioDirection dir) noexcept {
  return dir == IioDirection::Input ? "input" : "output";
}

struct IioBuffer::Private {};

Result<std::unique_ptr<IioBuffer>> IioBuffer::create(std::shared_ptr<Device> device, unsigned index,
                                                     IioBufferParams params) {
  ZBUF_TRY(params.format.validate());
  if (params.fileioBlocks == 0) {
    return Error(EINVAL, "iio_buffer_create", "the fileio ring needs at least one block");
  }
  auto buffer = std::make_unique<IioBuffer>(Private{}, std::move(device), index, params);
  if (!buffer->engine_) {
    return Error(EINVAL, "iio_buffer_create", "the DMA engine could not be created");
  }
  std::uint64_t length = 0;
  {
    const MutexLocker lock(buffer->stateMutex_);  // nobody else has the buffer yet
    length = buffer->length_;
  }
  ZBUF_TRY(buffer->fileio_->configure(params.fileioBlocks, buffer->blockBytesFor(length)));
  return buffer;
}

IioBuffer::IioBuffer(Private /*key*/, std::shared_ptr<Device> device, unsigned index,
                     IioBufferParams params)
    : index_(index),
      params_(std::move(params)),
      device_(std::move(device)),
      generator_(params_.format, params_.pattern),
      checker_(params_.format, params_.pattern) {
  const std::size_t frame = params_.format.frameBytes();
  length_ = params_.length != 0 ? std::max<std::uint64_t>(params_.length, 2)
                                : kDefaultBufferBytes / frame;
  watermark_ = length_ / 2;
  watermarkBytes_ = watermark_ * frame;

  dma::DmaEngineConfig config;
  config.name = params_.engineName;
  config.device = device_;
  config.direction =
      isInput() ? dma::TransferDirection::DevToMem : dma::TransferDirection::MemToDev;
  config.mode = params_.mode;
  config.bytesPerSecond = params_.sampleRate * frame;
  config.produce = [this](const dma::DmaChunk& c) { generator_.fill(c.data, c.streamOffset); };
  config.consume = [this](const dma::DmaChunk& c) {
    mismatches_.fetch_add(checker_.countMismatches(c.data, c.streamOffset),
                          std::memory_order_relaxed);
    checkedBytes_.fetch_add(c.data.size(), std::memory_order_relaxed);
  };
  config.onStarved = [this] { onStarved(); };
  config.idleSpin = params_.dmaIdleSpin;
  auto engine = dma::DmaEngine::create(std::move(config));
  if (engine.ok()) {
    engine_ = std::move(*engine);
    fileio_ = std::make_unique<FileioQueue>(*engine_, isInput(), frame);
    dmabuf_ = std::make_unique<DmabufQueue>(*engine_, isInput(), params_.enqueueTimeout);
  }
}

IioBuffer::~IioBuffer() {
  if (engine_) {
    disable();
    engine_->terminateAll(-ECANCELED);
  }
  dmabuf_.reset();
  fileio_.reset();
  engine_.reset();
}

std::uint64_t IioBuffer::blockBytesFor(std::uint64_t frames) const {
  const std::uint64_t frame = frameBytes();
  const std::uint64_t blocks = params_.fileioBlocks;
  const std::uint64_t framesPerBlock = (frames + blocks - 1) / blocks;
  return std::max<std::uint64_t>(framesPerBlock, 1) * frame;
}

Result<void> IioBuffer::enable() {
  const MutexLocker lock(stateMutex_);
  if (enabled_) {
    return {};
  }
  if (dmabuf_->attachedCount() > 0) {
    mode_ = Mode::Dmabuf;
    streaming_.store(kStreamingDmabuf, std::memory_order_release);
    dmabuf_->enable();
  } else {
    mode_ = Mode::Fileio;
    const std::uint64_t bytes = blockBytesFor(length_);
    if (bytes != fileio_->blockBytes()) {
      ZBUF_TRY(fileio_->configure(params_.fileioBlocks, bytes));
    }
    streaming_.store(kStreamingFileio, std::memory_order_release);
    fileio_->enable();
  }
  enabled_ = true;
  return {};
}

void IioBuffer::disable() {
  const MutexLocker lock(stateMutex_);
  if (!enabled_) {
    return;
  }
  enabled_ = false;
  streaming_.store(kStreamingNone, std::memory_order_release);
  if (mode_ == Mode::Fileio) {
    fileio_->stop();
    engine_->terminateAll(-EINTR);
    fileio_->reset();
  } else {
    dmabuf_->disable();
    engine_->terminateAll(-EINTR);
  }
}

PatternKind IioBuffer::pattern() const {
  const MutexLocker lock(stateMutex_);
  return params_.pattern;
}

Result<void> IioBuffer::setPattern(PatternKind kind) {
  const MutexLocker lock(stateMutex_);
  if (enabled_) {
    return Error(EBUSY, "test_mode", "buffer is enabled");
  }
  // No transfer runs while disabled (disable() ended them), so the DMA worker does not read
  // the generator or the checker now.
  params_.pattern = kind;
  generator_ = PatternGenerator(params_.format, kind);
  checker_ = PatternChecker(params_.format, kind);
  return {};
}

bool IioBuffer::enabled() const {
  const MutexLocker lock(stateMutex_);
  return enabled_;
}

Result<void> IioBuffer::setLength(std::uint64_t frames) {
  const MutexLocker lock(stateMutex_);
  if (frames == length_) {
    return {};
  }
  if (enabled_) {
    return Error(EBUSY, "iio_buffer_write_length", "buffer is enabled");
  }
  length_ = std::max<std::uint64_t>(frames, 2);
  watermark_ = length_ / 2;
  watermarkBytes_ = watermark_ * frameBytes();
  return {};
}

std::uint64_t IioBuffer::length() const {
  const MutexLocker lock(stateMutex_);
  return length_;
}

Result<void> IioBuffer::setWatermark(std::uint64_t frames) {
  const MutexLocker lock(stateMutex_);
  if (frames == 0) {
    return Error(EINVAL, "iio_buffer_store_watermark", "watermark 0");
  }
  if (frames > length_) {
    return Error(EINVAL, "iio_buffer_store_watermark",
                 fmt::format("watermark {} beyond the length {}", frames, length_));
  }
  if (enabled_) {
    return Error(EBUSY, "iio_buffer_store_watermark", "buffer is enabled");
  }
  watermark_ = frames;
  watermarkBytes_ = frames * frameBytes();
  return {};
}

std::uint64_t IioBuffer::watermark() const {
  const MutexLocker lock(stateMutex_);
  return watermark_;
}

std::uint64_t IioBuffer::fileioBlockBytes() const {
  const MutexLocker lock(stateMutex_);
  return blockBytesFor(length_);
}

void IioBuffer::setMode(dma::DataMode mode) {
  engine_->setMode(mode);
}

void IioBuffer::setSampleRate(std::uint64_t framesPerSecond) {
  engine_->setRate(framesPerSecond * frameBytes());
}

void IioBuffer::onStarved() {
  // Runs on the engine's worker, possibly while disable() holds stateMutex_ and waits for this
  // very completion: only the atomic mirror of the mode may be read here.
  switch (streaming_.load(std::memory_order_acquire)) {
    case kStreamingFileio:
      fileio_->onStarved();
      break;
    case kStreamingDmabuf:
      dmabufStarved_.fetch_add(1, std::memory_order_relaxed);
      break;
    default:
      break;
  }
}

IioBufferStats IioBuffer::stats() const {
  IioBufferStats s;
  const dma::DmaEngineStats e = engine_->stats();
  s.hardwareBytes = e.bytes;
  s.transfers = e.passes;
  s.streamOffset = engine_->streamOffset();
  const FileioStats f = fileio_->stats();
  const DmabufStats d = dmabuf_->stats();
  s.transferErrors = f.errors;
  s.overruns = f.overruns;
  s.underruns = f.underruns;
  if (isInput()) {
    s.overruns += dmabufStarved_.load(std::memory_order_relaxed);
  } else {
    s.underruns += dmabufStarved_.load(std::memory_order_relaxed);
  }
  s.checkedBytes = checkedBytes_.load(std::memory_order_relaxed);
  s.mismatches = mismatches_.load(std::memory_order_relaxed);
  s.fileioBytes = f.bytes;
  s.dmabufEnqueued = d.enqueued;
  s.dmabufCompleted = d.completed;
  s.dmabufFailed = d.failed;
  s.dmabufAttached = dmabuf_->attachedCount();
  return s;
}

uapi::WaitQueue& IioBuffer::pollWaitQueue() noexcept {
  return fileio_->pollWaitQueue();
}

Result<std::size_t> IioBuffer::read(std::span<std::byte> out, bool nonblock) {
  if (!isInput()) {
    return Error(EPERM, "iio_buffer_read", "read() on an output buffer");
  }
  {
    const MutexLocker lock(stateMutex_);
    if (enabled_ && mode_ == Mode::Dmabuf) {
      return Error(EBUSY, "iio_buffer_read", "buffer is streaming through DMABUFs");
    }
  }
  return fileio_->read(out, nonblock, watermarkBytes_.load(std::memory_order_relaxed));
}

Result<std::size_t> IioBuffer::write(std::span<const std::byte> in, bool nonblock) {
  if (isInput()) {
    return Error(EPERM, "iio_buffer_write", "write() on an input buffer");
  }
  {
    const MutexLocker lock(stateMutex_);
    if (enabled_ && mode_ == Mode::Dmabuf) {
      return Error(EBUSY, "iio_buffer_write", "buffer is streaming through DMABUFs");
    }
  }
  return fileio_->write(in, nonblock);
}

std::uint64_t IioBuffer::fileioAvailable() const {
  return fileio_->available();
}

Result<void> IioBuffer::attachDmabuf(const BufferPtr& buffer, bool nonblock) {
  if (!params_.dmabuf) {
    return Error(EPERM, "iio_buffer_attach_dmabuf", "this buffer has no DMABUF support");
  }
  {
    const MutexLocker lock(stateMutex_);
    if (enabled_ && mode_ == Mode::Fileio) {
      return Error(EBUSY, "iio_buffer_attach_dmabuf", "buffer is enabled in fileio mode");
    }
  }
  return dmabuf_->attach(buffer, nonblock);
}

Result<void> IioBuffer::detachDmabuf(const Buffer& buffer) {
  return dmabuf_->detach(buffer);
}

void IioBuffer::detachAllDmabufs() {
  dmabuf_->detachAll();
}

Result<FencePtr> IioBuffer::enqueueDmabuf(const Buffer& buffer, std::uint32_t flags,
                                          std::uint64_t bytesUsed, bool nonblock) {
  if ((flags & ~kDmabufSupportedFlags) != 0) {
    return Error(EINVAL, "iio_buffer_enqueue_dmabuf", fmt::format("unknown flags {:#x}", flags));
  }
  const bool cyclic = (flags & kDmabufCyclic) != 0;
  if (cyclic && isInput()) {
    return Error(EINVAL, "iio_buffer_enqueue_dmabuf", "CYCLIC is only supported on output");
  }
  return dmabuf_->enqueue(buffer, cyclic, bytesUsed, nonblock);
}

std::size_t IioBuffer::dmabufZombies() const {
  dmabuf_->reap();
  return dmabuf_->zombieCount();
}

bool IioBuffer::tryOpen() noexcept {
  bool expected = false;
  return open_.compare_exchange_strong(expected, true);
}

void IioBuffer::close() noexcept {
  open_.store(false);
}

}  // namespace zbuf::iio
