// FileioQueue: the copying interface of an IIO DMA buffer (the kernel's buffer-dma fileio
// blocks): a ring of N blocks, each allocated and mapped into the device's IOMMU once (like
// dma_alloc_coherent), handed to the DMA engine and back.
//
// Input (ADC): enable() submits every block; a completed block joins the ready FIFO; read()
// copies out of ready blocks (memcpy, outside the list lock) and re-submits each block it
// emptied. Output (DAC): every block starts free; write() copies into free blocks and submits
// each one it filled (to the engine if enabled, else to an incoming FIFO that enable() drains);
// a consumed block is free again.
//
// Locks (the kernel's queue->lock and queue->list_lock): ioMutex_ serialises read(), write()
// and reset(), and is held during the copies; listMutex_ guards the block states, the FIFOs and
// the counters, and is the only lock the DMA completion takes. Blocking waits hold listMutex_
// only (never ioMutex_), so disable() never waits behind a sleeping reader.
//
// Thread-safety: thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "zbuf/base/mutex.h"
#include "zbuf/base/result.h"
#include "zbuf/base/sys.h"
#include "zbuf/devices/dma/dma_engine.h"
#include "zbuf/uapi/file.h"

namespace zbuf::iio {

struct FileioStats {
  std::uint64_t overruns = 0;   // input: the hardware found no free block after a transfer
  std::uint64_t underruns = 0;  // output: the hardware found no filled block after a transfer
  std::uint64_t errors = 0;     // transfers that failed (not counting terminations)
  std::uint64_t bytes = 0;      // bytes copied by read() or write()
  std::uint64_t blocks = 0;     // blocks completed by the hardware
};

class FileioQueue {
 public:
  // `input`: an ADC buffer (device writes memory). The engine must outlive the queue.
  FileioQueue(dma::DmaEngine& engine, bool input, std::size_t frameBytes);
  ~FileioQueue();
  FileioQueue(const FileioQueue&) = delete;
  FileioQueue& operator=(const FileioQueue&) = delete;

  // (Re)allocates `count` blocks of `blockBytes` and maps each for the device (ENOMEM, and the
  // IOMMU's errors). Only while disabled.
  [[nodiscard]] Result<void> configure(unsigned count, std::uint64_t blockBytes);
  [[nodiscard]] std::uint64_t blockBytes() const;
  [[nodiscard]] unsigned blockCount() const;

  // Starts streaming: input submits every block; output submits the blocks filled meanwhile.
  void enable();
  // First half of disabling: no block is submitted again and waiters wake up.
  void stop();
  // Second half, after the engine was terminated: every block is free and empty again.
  void reset();

  // Copies completed data out (input). Blocking: waits until min(watermarkBytes, out.size())
  // bytes are ready; 0 when the buffer is (or gets) disabled. Non-blocking (as the kernel):
  // takes whatever is ready, whatever the watermark; EAGAIN when nothing is, disabled or not.
  // EINVAL if out is smaller than one frame; the size is rounded down to whole frames.
  [[nodiscard]] Result<std::size_t> read(std::span<std::byte> out, bool nonblock,
                                         std::uint64_t watermarkBytes);
  // Copies into output blocks (output). Waits for a free block unless `nonblock` (EAGAIN).
  [[nodiscard]] Result<std::size_t> write(std::span<const std::byte> in, bool nonblock);

  // Input: bytes ready to read; output: bytes that can be written without waiting.
  [[nodiscard]] std::uint64_t available() const;
  // The engine ran dry (counted as an overrun or underrun while enabled).
  void onStarved();
  [[nodiscard]] FileioStats stats() const;
  // Woken whenever a block becomes ready (input) or free (output), and on stop: what poll()
  // on the buffer file sleeps on.
  [[nodiscard]] uapi::WaitQueue& pollWaitQueue() noexcept { return pollWait_; }

 private:
  enum class State : std::uint8_t { Free, Queued, Ready, App };
  struct Block {
    sys::Mapping memory;
    std::uint64_t iova = 0;
    dma::DmaDescriptor descriptor;
    State state = State::Free;
    std::uint64_t pos = 0;  // bytes consumed (input) or filled (output) by the application
  };

  void complete(Block& block, int status);
  // The copy loop of read() (toApplication) and write(): takes ioMutex_, then listMutex_.
  // `app` is only read from when !toApplication.
  [[nodiscard]] std::size_t copyBlocks(std::byte* app, std::size_t n, bool toApplication);
  // Hands `block` to the hardware (or to incoming_ while disabled). listMutex_ held.
  void submitLocked(Block& block) ZBUF_REQUIRES(listMutex_);
  [[nodiscard]] Block* popReadyLocked() ZBUF_REQUIRES(listMutex_);
  [[nodiscard]] std::uint64_t availableLocked() const ZBUF_REQUIRES(listMutex_);
  void releaseBlocks();

  dma::DmaEngine& engine_;
  const bool input_;
  const std::size_t frameBytes_;

  Mutex ioMutex_ ZBUF_ACQUIRED_BEFORE(listMutex_);  // serialises read/write/configure/reset
  mutable Mutex listMutex_;
  ConditionVariable cv_;                                   // a block became ready/free, or stop
  std::vector<std::unique_ptr<Block>> blocks_;             // set by configure (both locks held)
  std::uint64_t blockBytes_ = 0;                           // both locks for writing
  std::vector<Block*> ready_ ZBUF_GUARDED_BY(listMutex_);  // FIFO ring, capacity = blocks
  std::size_t readyHead_ ZBUF_GUARDED_BY(listMutex_) = 0;
  std::size_t readyCount_ ZBUF_GUARDED_BY(listMutex_) = 0;
  std::vector<Block*> incoming_ ZBUF_GUARDED_BY(listMutex_);  // output blocks filled while disabled
  Block* current_ ZBUF_GUARDED_BY(listMutex_) = nullptr;      // partly read / written block
  bool enabled_ ZBUF_GUARDED_BY(listMutex_) = false;
  unsigned waiters_ ZBUF_GUARDED_BY(listMutex_) = 0;
  FileioStats stats_ ZBUF_GUARDED_BY(listMutex_);
  uapi::WaitQueue pollWait_;  // its own lock; woken under listMutex_
};

}  // namespace zbuf::iio
