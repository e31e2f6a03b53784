// The emulated virtio video pair of seeds/004: a decoder that exports its frames as virtio
// buffers, and a display, another virtio device with its own command stream, that imports them
// by UUID. Each is a device file (zbuf's own calls, uapi/abi.h "virtio-video"):
//
//   /dev/virtio-video0  the decoder
//     ZBUF_VIRTIO_VIDEO_ALLOC     a frame buffer: a virtio exporter over system memory; returns
//                                 the fd and the UUID at once, with the UUID's registration with
//                                 the host (virtio_host.h) under way
//     ZBUF_VIRTIO_VIDEO_GET_UUID  virtio_dma_buf_get_uuid on a buffer fd: waits for the
//                                 registration (EAGAIN on an O_NONBLOCK decoder fd), then the
//                                 UUID, or the registration's error (EEXIST for a duplicate)
//     ZBUF_VIRTIO_VIDEO_DECODE    decodes frame N into the buffer: waits (in the call, as IIO's
//                                 enqueue) for every fence on it (the display may still read
//                                 the last frame), adds a WRITE fence, and writes on the
//                                 decoder's worker, which signals the fence
//   /dev/virtio-video1  the display
//     ZBUF_VIRTIO_VIDEO_IMPORT    resolves a UUID (the host's rules: ENOENT, EACCES, waits while
//                                 pending or EAGAIN), attaches the buffer to the display (the
//                                 virtio device_attach hook runs) and returns an fd for it
//     ZBUF_VIRTIO_VIDEO_DISPLAY   shows frame N from an imported buffer: waits for its WRITE
//                                 fences, adds a READ fence, and on the display's worker reads
//                                 every byte through its mapping and checks it is frame N
//     ZBUF_VIRTIO_VIDEO_DETACH    drops the display's import of a buffer (closing the display
//                                 file drops all of its imports)
//
// The frame pattern: 64-bit little-endian word i of frame N is (N << 40) ^ i, so a stale frame,
// a torn one or another buffer's shows as mismatched words.
//
// Both devices share one VirtioHost. Their counters are bench files (devices/board.h):
//   /sys/kernel/debug/zbuf/virtio/host      the host's registry counters (virtio_host.h)
//   /sys/kernel/debug/zbuf/virtio/uuids     the registry, one UUID a line
//   /sys/kernel/debug/zbuf/virtio/decoder   buffers exported, frames decoded, device attaches
//   /sys/kernel/debug/zbuf/virtio/display   frames shown, bytes verified, mismatched words
//
// Thread-safety: thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "zbuf/base/result.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/device.h"
#include "zbuf/core/importer.h"
#include "zbuf/core/virtio_dma_buf.h"
#include "zbuf/devices/virtio/virtio_host.h"
#include "zbuf/uapi/context.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::virtio {

inline constexpr const char* kDecoderPath = "/dev/virtio-video0";
inline constexpr const char* kDisplayPath = "/dev/virtio-video1";
inline constexpr const char* kBenchDir = "/sys/kernel/debug/zbuf/virtio";
inline constexpr const char* kExporterName = "virtio-video";

// The frame pattern's word `index` of frame `frame`.
[[nodiscard]] constexpr std::uint64_t frameWord(std::uint64_t frame, std::uint64_t index) noexcept {
  return (frame << 40) ^ index;
}

struct DecoderStats {
  std::uint64_t exported = 0;        // buffers allocated
  std::uint64_t decoded = 0;         // frames written
  std::uint64_t deviceAttaches = 0;  // device_attach calls (other devices attaching)
};

struct DisplayStats {
  std::uint64_t imported = 0;    // UUIDs imported
  std::uint64_t frames = 0;      // frames shown (checked)
  std::uint64_t verified = 0;    // bytes that matched
  std::uint64_t mismatches = 0;  // 64-bit words that did not
};

// How long DECODE and DISPLAY wait for conflicting fences before EBUSY.
inline constexpr std::chrono::milliseconds kFenceTimeout{5000};

class VideoDecoder {
 public:
  [[nodiscard]] static std::shared_ptr<VideoDecoder> create(std::shared_ptr<VirtioHost> host);
  ~VideoDecoder();
  VideoDecoder(const VideoDecoder&) = delete;
  VideoDecoder& operator=(const VideoDecoder&) = delete;
  VideoDecoder(VideoDecoder&&) = delete;
  VideoDecoder& operator=(VideoDecoder&&) = delete;

  // ALLOC: a frame buffer of `size` bytes named `uuid` (a random one when null), owned by
  // `owner`; its registration is requested before this returns. The system heap's errors.
  [[nodiscard]] Result<BufferPtr> allocate(std::uint64_t size, int fdFlags, const Uuid* uuid,
                                           uid_t owner);
  // The UUID the decoder gave `buffer` (registered or not yet); nullopt if not its buffer.
  [[nodiscard]] std::optional<Uuid> assignedUuid(const Buffer& buffer) const;
  // Whether `buffer` is this decoder's and its registration is still in flight.
  [[nodiscard]] bool registrationPending(const Buffer& buffer) const;
  // DECODE: EINVAL for a buffer that is not this decoder's; EBUSY for fences still pending
  // after kFenceTimeout (at once when non-blocking).
  [[nodiscard]] Result<void> decode(const BufferPtr& buffer, std::uint64_t frame, bool nonBlocking);
  [[nodiscard]] DecoderStats stats() const;

  struct Impl;
  struct Private;
  VideoDecoder(Private key, std::shared_ptr<VirtioHost> host);

 private:
  std::shared_ptr<Impl> impl_;
};

class VideoDisplay {
 public:
  [[nodiscard]] static std::shared_ptr<VideoDisplay> create(std::shared_ptr<VirtioHost> host);
  ~VideoDisplay();
  VideoDisplay(const VideoDisplay&) = delete;
  VideoDisplay& operator=(const VideoDisplay&) = delete;
  VideoDisplay(VideoDisplay&&) = delete;
  VideoDisplay& operator=(VideoDisplay&&) = delete;

  [[nodiscard]] const std::shared_ptr<Device>& device() const noexcept;
  // IMPORT: the host's resolve(), then the attachment (the import's errors).
  [[nodiscard]] Result<std::shared_ptr<ImportedBuffer>> import(const Uuid& uuid, bool nonBlocking,
                                                               uid_t requester);
  // DISPLAY: waits for the writers (EBUSY as DECODE), adds a READ fence, checks on the worker
  // (which holds `import` until it has read it).
  [[nodiscard]] Result<void> display(const std::shared_ptr<ImportedBuffer>& import,
                                     std::uint64_t frame, bool nonBlocking);
  [[nodiscard]] DisplayStats stats() const;

  struct Impl;
  struct Private;
  VideoDisplay(Private key, std::shared_ptr<VirtioHost> host);

 private:
  std::shared_ptr<Impl> impl_;
};

// Registers the two device nodes and the bench files in `context` (EEXIST if taken).
[[nodiscard]] Result<void> addToContext(uapi::Context& context,
                                        const std::shared_ptr<VirtioHost>& host,
                                        const std::shared_ptr<VideoDecoder>& decoder,
                                        const std::shared_ptr<VideoDisplay>& display);

}  // namespace zbuf::virtio
#pragma GCC visibility pop
