// DmaDescriptor: one transfer for the emulated DMA engine (the kernel's
// dma_async_tx_descriptor as prepared by dmaengine_prep_peripheral_dma_vec()).
//
// A descriptor holds a list of DmaVecs (device address, length): the dma_vec array of the IIO
// DMABUF series. Addresses are IOVAs in the engine's device's IOMMU address space (for a
// DMA-BUF attachment: the segments of its SgTable). The descriptor is built once (setVecs(),
// setCompletion(): these allocate) and then submitted again and again; per submission only
// setLength() and setCyclic() change, and neither allocates, so a driver can queue a transfer
// inside a fence signalling section.
//
// Ownership: the caller owns the descriptor. From DmaEngine::submit() until its completion has
// returned (or terminateAll() has returned), the engine uses it and the caller must neither
// change nor destroy it. The engine never touches a descriptor after its completion returned.
//
// Thread-safety: not thread-safe by itself; the engine's rules above decide who may touch it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "zbuf/core/sg_table.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::dma {

// struct dma_vec: one contiguous range of device addresses.
struct DmaVec {
  std::uint64_t addr;  // IOVA
  std::uint64_t len;   // bytes
};

class DmaEngine;

class DmaDescriptor {
 public:
  // Called once per submission on the engine's worker thread (or in terminateAll()'s caller),
  // with 0 or a negative errno: the IOMMU's error for a descriptor outside the mapping
  // (-EFAULT) or in the wrong direction (-EPERM), an injected error, or the terminate status.
  // Called without any engine lock held: it may submit again.
  using Completion = std::function<void(DmaDescriptor& descriptor, int status)>;

  DmaDescriptor() = default;
  DmaDescriptor(const DmaDescriptor&) = delete;
  DmaDescriptor& operator=(const DmaDescriptor&) = delete;
  ~DmaDescriptor() = default;

  // --- set-up (allocates; not while submitted) ------------------------------------------------
  void setVecs(std::vector<DmaVec> vecs);
  // The vecs of a mapping: one per segment, in buffer order.
  [[nodiscard]] static std::vector<DmaVec> vecsFrom(const SgTable& table);
  void setCompletion(Completion completion) { completion_ = std::move(completion); }

  // --- per submission (no allocation) ---------------------------------------------------------
  // Bytes to move, from the start of the vec list (bytes_used). 0 means "all of it".
  void setLength(std::uint64_t bytes) noexcept { length_ = bytes; }
  // A cyclic transfer repeats until another descriptor is submitted after it (it then
  // completes at the end of the current pass) or the engine is terminated.
  void setCyclic(bool cyclic) noexcept { cyclic_ = cyclic; }

  [[nodiscard]] std::span<const DmaVec> vecs() const noexcept { return vecs_; }
  [[nodiscard]] std::uint64_t totalLength() const noexcept { return total_; }
  [[nodiscard]] std::uint64_t length() const noexcept { return length_ == 0 ? total_ : length_; }
  [[nodiscard]] bool cyclic() const noexcept { return cyclic_; }

  // --- results (valid in the completion and after it) -----------------------------------------
  // Stream offset (bytes of the engine's stream) of the first byte of this transfer's first
  // pass. For a memory-to-device cyclic transfer every pass re-sends the same stream bytes.
  [[nodiscard]] std::uint64_t streamOffset() const noexcept { return streamOffset_; }
  // Passes completed (1 for a normal transfer; the repetition count for a cyclic one).
  [[nodiscard]] std::uint64_t passes() const noexcept { return passes_; }
  // Bytes moved by the last pass (length() on success).
  [[nodiscard]] std::uint64_t bytesTransferred() const noexcept { return bytesTransferred_; }

  // Free for the owner (e.g. a back pointer to the block it belongs to).
  void* user = nullptr;

 private:
  friend class DmaEngine;

  std::vector<DmaVec> vecs_;
  std::uint64_t total_ = 0;
  Completion completion_;
  std::uint64_t length_ = 0;
  bool cyclic_ = false;

  // Engine-owned while submitted (guarded by the engine's mutex).
  DmaDescriptor* next_ = nullptr;
  bool queued_ = false;
  std::uint64_t streamOffset_ = 0;
  std::uint64_t passes_ = 0;
  std::uint64_t bytesTransferred_ = 0;
  // The engine's IOTLB for this descriptor (worker only): the host ranges of every vec as
  // translated at IOMMU generation tlbGeneration_; sized by setVecs, so reuse never allocates.
  std::vector<std::span<std::byte>> tlb_;
  std::uint64_t tlbGeneration_ = 0;
  bool tlbValid_ = false;
};

}  // namespace zbuf::dma
#pragma GCC visibility pop
