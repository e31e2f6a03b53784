// The emulated hardware's deterministic test pattern.
//
// An ADC produces interleaved samples (channel 0, 1, ..., n-1, then the next sample) of a fixed
// sample format. The value of every sample is a function of its position in the stream alone,
// so a consumer that knows only the byte offset of a block in the stream can check it:
//  - Ramp: channel c of sample n is (n + c * 0x1000) truncated to the sample width;
//  - Prbs: a PRBS-15 sequence (x^15 + x^14 + 1) indexed by the sample's position in the whole
//    interleaved stream, XOR a per-channel salt, truncated to the sample width.
// Stream offsets are in bytes and need not be aligned to a sample: a block may start or end in
// the middle of one.
//
// Thread-safety: PatternGenerator and PatternChecker are immutable after construction; their
// const functions may be called from any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "zbuf/base/result.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

enum class PatternKind : std::uint8_t { Ramp, Prbs };

[[nodiscard]] Result<PatternKind> parsePatternKind(std::string_view name);
[[nodiscard]] const char* toString(PatternKind kind) noexcept;

struct SampleFormat {
  unsigned channels = 4;        // interleaved channels (an AD9361-class part: 2 I/Q pairs)
  unsigned bytesPerSample = 2;  // per channel: 1, 2, 4 or 8 (16-bit signed is 2)
  bool isSigned = true;

  [[nodiscard]] std::size_t frameBytes() const noexcept {
    return static_cast<std::size_t>(channels) * bytesPerSample;
  }
  // EINVAL for 0 channels, more than 64, or an unsupported sample size.
  [[nodiscard]] Result<void> validate() const;
};

class PatternGenerator {
 public:
  PatternGenerator(SampleFormat format, PatternKind kind);

  // Writes the bytes of the stream at [offset, offset + out.size()) into `out`.
  void fill(std::span<std::byte> out, std::uint64_t offset) const noexcept;
  [[nodiscard]] const SampleFormat& format() const noexcept { return format_; }
  [[nodiscard]] PatternKind kind() const noexcept { return kind_; }
  // The stream repeats with this period (in bytes): a whole number of frames.
  [[nodiscard]] std::size_t periodBytes() const noexcept { return period_.size() / 2; }
  // Two periods back to back: periodData()[i] is the stream byte at offset i % periodBytes()
  // for every i < 2 * periodBytes().
  [[nodiscard]] const std::byte* periodData() const noexcept { return period_.data(); }

 private:
  SampleFormat format_;
  PatternKind kind_;
  // Two back-to-back copies of one period of the stream, so that any window of up to one
  // period starting anywhere in the period is a contiguous slice.
  std::vector<std::byte> period_;
};

class PatternChecker {
 public:
  PatternChecker(SampleFormat format, PatternKind kind) : generator_(format, kind) {}

  // Number of bytes of `data` that differ from the stream at [offset, offset + data.size()).
  [[nodiscard]] std::uint64_t countMismatches(std::span<const std::byte> data,
                                              std::uint64_t offset) const noexcept;
  [[nodiscard]] const PatternGenerator& generator() const noexcept { return generator_; }

 private:
  PatternGenerator generator_;
};

}  // namespace zbuf
#pragma GCC visibility pop
