// The pattern is precomputed for one period and stored twice back to back; generating and
// checking are then memcpy/memcmp over slices of it, so data mode runs near memory bandwidth.
#include "zbuf/devices/pattern.h"

#include <cstring>
#include <numeric>

namespace zbuf {
namespace {

constexpr std::size_t kPrbsPeriod = 32767;  // PRBS-15

std::vector<std::uint16_t> prbs15() {
  std::vector<std::uint16_t> seq(kPrbsPeriod);
  std::uint16_t state = 0x7fff;
  for (auto& v : seq) {
    // Collect 16 successive output bits per position, from a position-dependent state.
    std::uint16_t word = 0;
    std::uint16_t s = state;
    for (int b = 0; b < 16; ++b) {
      const auto bit = static_cast<std::uint16_t>(((s >> 14) ^ (s >> 13)) & 1U);
      s = static_cast<std::uint16_t>(((s << 1) | bit) & 0x7fff);
      word = static_cast<std::uint16_t>((word << 1) | bit);
    }
    v = word;
    const auto bit = static_cast<std::uint16_t>(((state >> 14) ^ (state >> 13)) & 1U);
    state = static_cast<std::uint16_t>(((state << 1) | bit) & 0x7fff);
  }
  return seq;
}

void store(std::byte* dst, std::uint16_t value16, const SampleFormat& f) {
  if (f.bytesPerSample == 1) {
    dst[0] = static_cast<std::byte>(value16 & 0xff);
    return;
  }
  // Little-endian; wider samples extend the 16-bit value (sign-extended when signed).
  const bool negative = f.isSigned && (value16 & 0x8000U) != 0;
  dst[0] = static_cast<std::byte>(value16 & 0xff);
  dst[1] = static_cast<std::byte>(value16 >> 8);
  for (unsigned i = 2; i < f.bytesPerSample; ++i) {
    dst[i] = negative ? std::byte{0xff} : std::byte{0};
  }
}

}  // namespace

Result<PatternKind> parsePatternKind(std::string_view name) {
  if (name == "ramp") {
    return PatternKind::Ramp;
  }
  if (name == "prbs") {
    return PatternKind::Prbs;
  }
  return Error(EINVAL, "pattern", "unknown pattern '" + std::string(name) + "' (ramp|prbs)");
}

const char* toString(PatternKind kind) noexcept {
  return kind == PatternKind::Ramp ? "ramp" : "prbs";
}

Result<void> SampleFormat::validate() const {
  if (channels == 0 || channels > 16) {
    return Error(EINVAL, "sample format", "channels must be 1 to 16");
  }
  if (bytesPerSample != 1 && bytesPerSample != 2 && bytesPerSample != 4 && bytesPerSample != 8) {
    return Error(EINVAL, "sample format", "sample size must be 1, 2, 4 or 8 bytes");
  }
  return {};
}

PatternGenerator::PatternGenerator(SampleFormat format, PatternKind kind)
    : format_(format), kind_(kind) {
  const std::size_t frame = format_.frameBytes();
  std::size_t frames = 0;
  if (kind_ == PatternKind::Ramp) {
    frames = format_.bytesPerSample == 1 ? 256 : 65536;
  } else {
    frames = std::lcm(kPrbsPeriod, static_cast<std::size_t>(format_.channels)) / format_.channels;
  }
  const std::size_t bytes = frames * frame;
  period_.resize(2 * bytes);
  const std::vector<std::uint16_t> prbs =
      kind_ == PatternKind::Prbs ? prbs15() : std::vector<std::uint16_t>{};
  for (std::size_t n = 0; n < frames; ++n) {
    for (unsigned c = 0; c < format_.channels; ++c) {
      std::uint16_t v = 0;
      if (kind_ == PatternKind::Ramp) {
        v = static_cast<std::uint16_t>(n + std::size_t{c} * 0x1000U);
      } else {
        const std::size_t s = n * format_.channels + c;
        v = static_cast<std::uint16_t>(prbs[s % kPrbsPeriod] ^ (0x5a5aU * (c + 1)));
      }
      store(&period_[n * frame + static_cast<std::size_t>(c) * std::size_t{format_.bytesPerSample}],
            v, format_);
    }
  }
  std::memcpy(period_.data() + bytes, period_.data(), bytes);
}

void PatternGenerator::fill(std::span<std::byte> out, std::uint64_t offset) const noexcept {
  const std::size_t period = periodBytes();
  std::size_t pos = static_cast<std::size_t>(offset % period);
  std::size_t done = 0;
  while (done < out.size()) {
    const std::size_t n = std::min(out.size() - done, period);
    std::memcpy(out.data() + done, period_.data() + pos, n);
    done += n;
    pos = (pos + n) % period;
  }
}

std::uint64_t PatternChecker::countMismatches(std::span<const std::byte> data,
                                              std::uint64_t offset) const noexcept {
  const std::size_t period = generator_.periodBytes();
  const std::byte* expected = nullptr;
  std::size_t pos = static_cast<std::size_t>(offset % period);
  std::size_t done = 0;
  std::uint64_t mismatches = 0;
  // The generator's doubled period gives a contiguous expected slice for every chunk.
  while (done < data.size()) {
    const std::size_t n = std::min(data.size() - done, period);
    expected = generator_.periodData() + pos;
    if (std::memcmp(data.data() + done, expected, n) != 0) {
      for (std::size_t i = 0; i < n; ++i) {
        mismatches += data[done + i] != expected[i] ? 1 : 0;
      }
    }
    done += n;
    pos = (pos + n) % period;
  }
  return mismatches;
}

}  // namespace zbuf
