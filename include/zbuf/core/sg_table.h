// SgTable: a scatter-gather mapping of a buffer for one device: segments of device-visible
// address and length, in buffer order, with the DMA direction they were mapped for.
//
// Segments come from the buffer's real pages: physically (here: host-virtually) contiguous
// pages merge into one segment up to the device's maximum segment size. The segments' device
// addresses are IOVAs in the device's emulated IOMMU address space (see device.h); only the
// device's IOMMU can turn them back into memory.
#pragma once

#include <cstdint>
#include <vector>

namespace zbuf {

enum class DmaDirection : std::uint8_t {
  Bidirectional = 0,  // DMA_BIDIRECTIONAL
  ToDevice = 1,       // DMA_TO_DEVICE: the device reads memory
  FromDevice = 2,     // DMA_FROM_DEVICE: the device writes memory
};

[[nodiscard]] const char* toString(DmaDirection dir) noexcept;

struct SgSegment {
  std::uint64_t dmaAddress;  // IOVA in the mapping device's address space
  std::uint64_t length;      // bytes
};

class SgTable {
 public:
  SgTable() = default;
  SgTable(std::vector<SgSegment> segments, DmaDirection direction)
      : segments_(std::move(segments)), direction_(direction) {}

  [[nodiscard]] const std::vector<SgSegment>& segments() const noexcept { return segments_; }
  [[nodiscard]] std::size_t segmentCount() const noexcept { return segments_.size(); }
  [[nodiscard]] DmaDirection direction() const noexcept { return direction_; }
  // Sum of the segment lengths.
  [[nodiscard]] std::uint64_t totalLength() const noexcept;

 private:
  std::vector<SgSegment> segments_;
  DmaDirection direction_ = DmaDirection::Bidirectional;
};

}  // namespace zbuf
