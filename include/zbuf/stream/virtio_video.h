// The virtio video job (`zbuf virtio-video`): seeds/004's use case on the emulated pair of
// devices/virtio/virtio_video.h. A decoder side exports a pool of frame buffers and hands
// their UUIDs to a display side, which imports them by UUID; then the decoder decodes frames
// into the pool and the display shows each one, the display's device checking every byte. The
// buffers' fences order the two devices (DECODE waits for the READ fence of the frame the
// buffer showed last, DISPLAY for the WRITE fence of its frame); the two sides exchange only
// messages (the UUIDs, "frame n is in buffer i", "frame n was handed to the display").
//
// Set-up is measured as the seed argued it: the time from the first ALLOC until every UUID is
// known (GET_UUID returned), with the decoder's own set-up of each buffer (mapping it and
// clearing it from the CPU) in between. Blocking registration asks for each UUID right after
// its ALLOC, so every buffer pays the host's round trip in turn; asynchronous registration
// asks only after all buffers are set up, so the round trips overlap each other and the
// set-up work.
//
// The two sides speak over `channel`, a connected SOCK_SEQPACKET socket: on threads of one
// process (runVirtioVideo) or in two processes, each with its own connection to zbufd (the
// CLI forks).
//
// Thread-safety: each function runs on its calling thread; the sides share nothing but the
// channel and the kernel behind their FdCalls.
#pragma once

#include <cstdint>
#include <string_view>

#include "zbuf/base/result.h"
#include "zbuf/uapi/fd_calls.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

enum class Registration : std::uint8_t { Async, Blocking };

[[nodiscard]] const char* toString(Registration r) noexcept;  // "async", "blocking"
[[nodiscard]] Result<Registration> parseRegistration(std::string_view text);

struct VirtioVideoConfig {
  std::uint64_t frames = 120;
  unsigned buffers = 4;                 // the pool (1..64)
  std::uint64_t frameBytes = 1U << 20;  // rounded up to the page by the decoder
  Registration registration = Registration::Async;
};

struct VirtioVideoResult {
  Registration registration = Registration::Async;
  double setupSeconds = 0;   // first ALLOC to every UUID known
  double streamSeconds = 0;  // first DECODE to the last frame checked
  std::uint64_t frames = 0;  // frames the display checked
  std::uint64_t verifiedBytes = 0;
  std::uint64_t mismatches = 0;  // 64-bit words that were not the frame's
  std::uint64_t latencyNs = 0;   // the host's registration round trip
};

// The decoder's side, until the display reported its counts. EINVAL for a bad config; the
// devices' errors; EPROTO if the display side broke off.
[[nodiscard]] Result<VirtioVideoResult> runVirtioVideoDecoder(uapi::FdCalls& kernel, int channel,
                                                              const VirtioVideoConfig& config);
// The display's side, until the decoder's end.
[[nodiscard]] Result<void> runVirtioVideoDisplay(uapi::FdCalls& kernel, int channel);
// Both sides on `kernel`, the display on a thread of its own.
[[nodiscard]] Result<VirtioVideoResult> runVirtioVideo(uapi::FdCalls& kernel,
                                                       const VirtioVideoConfig& config);

}  // namespace zbuf
#pragma GCC visibility pop
