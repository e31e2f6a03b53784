// The virtio video job (stream/virtio_video.h): the decoder's side, the display's side, and
// the messages between them.
#include "zbuf/stream/virtio_video.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "zbuf/base/sys.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/core/virtio_dma_buf.h"
#include "zbuf/devices/virtio/virtio_video.h"
#include "zbuf/uapi/abi.h"

namespace zbuf {
namespace {

using Clock = std::chrono::steady_clock;
constexpr unsigned kMaxBuffers = 64;
constexpr int kFenceWaitMs = 10000;

// One message between the sides: a fixed record over a SOCK_SEQPACKET socket.
enum class Kind : std::uint32_t {
  Uuid,    // decoder -> display: buffer `index` is `uuid`
  Pool,    // decoder -> display: that was every buffer
  Frame,   // decoder -> display: frame `value` is in buffer `index`
  End,     // decoder -> display: no more frames
  Ready,   // display -> decoder: every buffer imported
  Shown,   // display -> decoder: frame `value` was handed to the display device
  Done,    // display -> decoder: counts in value (frames), a (verified), b (mismatches)
  Failed,  // either way: errno in `value`
};

struct Message {
  Kind kind = Kind::Failed;
  std::uint32_t index = 0;
  std::uint64_t value = 0;
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  Uuid uuid{};
};

Result<void> send(int channel, const Message& m) {
  ZBUF_TRY(sys::writeNoSigpipe(channel, std::as_bytes(std::span(&m, 1))));
  return {};
}

Result<Message> receive(int channel) {
  Message m;
  ZBUF_ASSIGN_OR_RETURN(auto n, sys::read(channel, std::as_writable_bytes(std::span(&m, 1))));
  if (n != sizeof m) {
    return Error(EPROTO, "virtio-video", "the other side broke off");
  }
  if (m.kind == Kind::Failed) {
    return Error(static_cast<int>(m.value), "virtio-video", "the other side failed");
  }
  return m;
}

Result<Message> expect(int channel, Kind kind) {
  ZBUF_ASSIGN_OR_RETURN(auto m, receive(channel));
  if (m.kind != kind) {
    return Error(EPROTO, "virtio-video",
                 fmt::format("message {} where {} was due", static_cast<unsigned>(m.kind),
                             static_cast<unsigned>(kind)));
  }
  return m;
}

// A bench file's "key value" lines (devices/virtio/virtio_video.h).
Result<std::map<std::string, std::uint64_t>> readBench(uapi::FdCalls& k, const char* name) {
  ZBUF_ASSIGN_OR_RETURN(auto fd, k.open(fmt::format("{}/{}", virtio::kBenchDir, name), O_RDONLY));
  std::array<std::byte, 4096> buf{};
  ZBUF_ASSIGN_OR_RETURN(auto n, k.read(fd.get(), buf));
  (void)k.close(std::move(fd));
  std::map<std::string, std::uint64_t> values;
  std::istringstream in(std::string(reinterpret_cast<const char*>(buf.data()), n));  // NOLINT
  std::string key;
  std::uint64_t value = 0;
  while (in >> key >> value) {
    values[key] = value;
  }
  return values;
}

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The decoder's own set-up of a buffer: map it and clear it from the CPU, in a SYNC bracket.
Result<void> prepare(uapi::FdCalls& k, int buffer, std::uint64_t bytes) {
  ZBUF_ASSIGN_OR_RETURN(auto map, k.mmap(buffer, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, 0));
  uapi::DmaBufSync sync{uapi::kDmaBufSyncStart | uapi::kDmaBufSyncWrite};
  ZBUF_TRY(k.ioctl(buffer, uapi::kDmaBufIoctlSync, &sync));
  std::memset(map.data(), 0, map.size());
  sync.flags = uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncWrite;
  ZBUF_TRY(k.ioctl(buffer, uapi::kDmaBufIoctlSync, &sync));
  return {};
}

Result<Uuid> uuidOf(uapi::FdCalls& k, int decoder, int buffer) {
  uapi::VirtioVideoUuid req{};
  req.fd = static_cast<std::uint32_t>(buffer);
  ZBUF_TRY(k.ioctl(decoder, uapi::kVirtioVideoGetUuid, &req));
  Uuid u{};
  std::memcpy(u.data(), req.uuid, u.size());
  return u;
}

// The decoder's set-up: the pool, its UUIDs known (and sent) as the registration mode says.
Result<std::vector<UniqueFd>> setUp(uapi::FdCalls& k, int decoder, int channel,
                                    const VirtioVideoConfig& c) {
  std::vector<UniqueFd> pool;
  const auto share = [&](unsigned i) -> Result<void> {
    ZBUF_ASSIGN_OR_RETURN(auto uuid, uuidOf(k, decoder, pool[i].get()));
    Message m{.kind = Kind::Uuid, .index = i};
    m.uuid = uuid;
    return send(channel, m);
  };
  for (unsigned i = 0; i < c.buffers; ++i) {
    uapi::VirtioVideoAlloc a{};
    a.size = c.frameBytes;
    a.fdFlags = O_RDWR | O_CLOEXEC;
    ZBUF_TRY(k.ioctl(decoder, uapi::kVirtioVideoAlloc, &a));
    pool.push_back(UniqueFd::adopt(static_cast<int>(a.fd)));
    if (c.registration == Registration::Blocking) {
      ZBUF_TRY(share(i));  // waits for this buffer's round trip
    }
    ZBUF_TRY(prepare(k, pool.back().get(), c.frameBytes));
  }
  if (c.registration == Registration::Async) {
    for (unsigned i = 0; i < c.buffers; ++i) {
      ZBUF_TRY(share(i));  // the round trips ran meanwhile
    }
  }
  return pool;
}

Result<VirtioVideoResult> decoderSide(uapi::FdCalls& k, int channel, const VirtioVideoConfig& c) {
  if (c.buffers == 0 || c.buffers > kMaxBuffers || c.frames == 0 || c.frameBytes < 8) {
    return Error(
        EINVAL, "virtio-video",
        fmt::format("buffers 1..{}, frames at least 1, frames of at least 8 bytes", kMaxBuffers));
  }
  VirtioVideoResult r;
  r.registration = c.registration;
  ZBUF_ASSIGN_OR_RETURN(auto host, readBench(k, "host"));
  r.latencyNs = host["latency_ns"];
  ZBUF_ASSIGN_OR_RETURN(auto decoder, k.open(virtio::kDecoderPath, O_RDWR));
  const auto setupStart = Clock::now();
  ZBUF_ASSIGN_OR_RETURN(auto pool, setUp(k, decoder.get(), channel, c));
  r.setupSeconds = secondsSince(setupStart);
  ZBUF_TRY(send(channel, Message{.kind = Kind::Pool}));
  ZBUF_TRY(expect(channel, Kind::Ready));

  const auto streamStart = Clock::now();
  for (std::uint64_t n = 0; n < c.frames; ++n) {
    const auto i = static_cast<unsigned>(n % c.buffers);
    if (n >= c.buffers) {
      // The buffer comes back once the display was handed its last frame (V4L2's DQBUF):
      // DECODE then waits for that frame's READ fence in the device.
      ZBUF_TRY(expect(channel, Kind::Shown));
    }
    uapi::VirtioVideoFrame req{static_cast<std::uint32_t>(pool[i].get()), 0, n};
    ZBUF_TRY(k.ioctl(decoder.get(), uapi::kVirtioVideoDecode, &req));
    ZBUF_TRY(send(channel, Message{.kind = Kind::Frame, .index = i, .value = n}));
  }
  ZBUF_TRY(send(channel, Message{.kind = Kind::End}));
  for (;;) {  // the credits still in flight, then the counts
    ZBUF_ASSIGN_OR_RETURN(auto m, receive(channel));
    if (m.kind == Kind::Done) {
      r.frames = m.value;
      r.verifiedBytes = m.a;
      r.mismatches = m.b;
      break;
    }
    if (m.kind != Kind::Shown) {
      return Error(EPROTO, "virtio-video", "the display sent something else than its counts");
    }
  }
  r.streamSeconds = secondsSince(streamStart);
  for (UniqueFd& fd : pool) {
    (void)k.close(std::move(fd));
  }
  (void)k.close(std::move(decoder));
  return r;
}

Result<void> displaySide(uapi::FdCalls& k, int channel) {
  ZBUF_ASSIGN_OR_RETURN(auto display, k.open(virtio::kDisplayPath, O_RDWR));
  ZBUF_ASSIGN_OR_RETURN(auto before, readBench(k, "display"));
  std::vector<UniqueFd> imported;
  for (;;) {
    ZBUF_ASSIGN_OR_RETURN(auto m, receive(channel));
    if (m.kind == Kind::Uuid) {
      uapi::VirtioVideoImport req{};
      std::memcpy(req.uuid, m.uuid.data(), m.uuid.size());
      req.fdFlags = O_RDWR | O_CLOEXEC;
      ZBUF_TRY(k.ioctl(display.get(), uapi::kVirtioVideoImport, &req));
      if (m.index != imported.size()) {
        return Error(EPROTO, "virtio-video", "buffers out of order");
      }
      imported.push_back(UniqueFd::adopt(static_cast<int>(req.fd)));
      continue;
    }
    if (m.kind != Kind::Pool || imported.empty()) {
      return Error(EPROTO, "virtio-video", "the decoder ended its pool without a buffer");
    }
    break;
  }
  ZBUF_TRY(send(channel, Message{.kind = Kind::Ready}));
  for (;;) {
    ZBUF_ASSIGN_OR_RETURN(auto m, receive(channel));
    if (m.kind == Kind::End) {
      break;
    }
    if (m.kind != Kind::Frame || m.index >= imported.size()) {
      return Error(EPROTO, "virtio-video", "not a frame of the pool");
    }
    uapi::VirtioVideoFrame req{static_cast<std::uint32_t>(imported[m.index].get()), 0, m.value};
    ZBUF_TRY(k.ioctl(display.get(), uapi::kVirtioVideoDisplay, &req));
    ZBUF_TRY(send(channel, Message{.kind = Kind::Shown, .value = m.value}));
  }
  // Every READ fence signalled: the display device has read every frame.
  for (const UniqueFd& fd : imported) {
    struct pollfd p {
      fd.get(), POLLOUT, 0
    };
    ZBUF_ASSIGN_OR_RETURN(auto ready, k.poll(std::span(&p, 1), kFenceWaitMs));
    if (ready != 1) {
      return Error(ETIMEDOUT, "virtio-video", "a frame's fence did not signal within 10 s");
    }
  }
  ZBUF_ASSIGN_OR_RETURN(auto after, readBench(k, "display"));
  for (UniqueFd& fd : imported) {
    (void)k.close(std::move(fd));
  }
  (void)k.close(std::move(display));
  return send(channel, Message{.kind = Kind::Done,
                               .value = after["frames"] - before["frames"],
                               .a = after["verified"] - before["verified"],
                               .b = after["mismatches"] - before["mismatches"]});
}

// Tells the other side why this one stops, so it does not wait for it.
void sendFailure(int channel, const Error& e) {
  (void)send(channel, Message{.kind = Kind::Failed, .value = static_cast<std::uint64_t>(e.code())});
}

}  // namespace

const char* toString(Registration r) noexcept {
  return r == Registration::Async ? "async" : "blocking";
}

Result<Registration> parseRegistration(std::string_view text) {
  if (text == "async") {
    return Registration::Async;
  }
  if (text == "blocking") {
    return Registration::Blocking;
  }
  return Error(EINVAL, "virtio-video", fmt::format("registration '{}': async or blocking", text));
}

Result<VirtioVideoResult> runVirtioVideoDecoder(uapi::FdCalls& kernel, int channel,
                                                const VirtioVideoConfig& config) {
  auto r = decoderSide(kernel, channel, config);
  if (!r.ok()) {
    sendFailure(channel, r.error());
  }
  return r;
}

Result<void> runVirtioVideoDisplay(uapi::FdCalls& kernel, int channel) {
  auto r = displaySide(kernel, channel);
  if (!r.ok()) {
    sendFailure(channel, r.error());
  }
  return r;
}

Result<VirtioVideoResult> runVirtioVideo(uapi::FdCalls& kernel, const VirtioVideoConfig& config) {
  ZBUF_ASSIGN_OR_RETURN(auto pair, sys::socketpair(SOCK_SEQPACKET));
  Result<void> shown;
  std::thread display([&] { shown = runVirtioVideoDisplay(kernel, pair.second.get()); });
  auto decoded = runVirtioVideoDecoder(kernel, pair.first.get(), config);
  display.join();
  if (!decoded.ok()) {
    return decoded;
  }
  ZBUF_TRY(std::move(shown));
  return decoded;
}

}  // namespace zbuf
