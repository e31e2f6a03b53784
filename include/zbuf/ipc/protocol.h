// The zbufd wire protocol, version 1 (docs/daemon.md has the whole of it).
//
// One request and one reply per SOCK_SEQPACKET message, in the host's byte order (both ends are
// on one machine). Every message starts with a MessageHeader; fixed-width fields only; reserved
// fields must be zero (EINVAL otherwise); fds travel out of band (SCM_RIGHTS) and a request names
// them by their index in the message's fd list. A request's first fd is the one the call is made
// on (none for OPEN and PING). A reply carries the call's result or errno, the bytes the call
// copies back to the caller, and the fds it made.
//
// Each header-only struct below is exactly what goes on the wire; decoding checks sizes before
// reading (decode() in ipc/codec.h).
#pragma once

#include <cstddef>
#include <cstdint>

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::ipc {

inline constexpr std::uint32_t kMagic = 0x4655425a;  // "ZBUF" in little-endian order
inline constexpr std::uint16_t kVersion = 1;
// Largest message either side sends or accepts (header included): 64 KiB of payload is more than
// any ioctl argument (the largest, SYNC_IOC_FILE_INFO's fence array, is bounded below).
inline constexpr std::size_t kMaxMessage = std::size_t{64} * 1024 + 64;
// Most bytes one Read or Write moves (a shorter count is returned, as read(2) may).
inline constexpr std::size_t kMaxIoBytes = std::size_t{60} * 1024;
// Most fds one message carries (a POLL over many fds is split by the client).
inline constexpr std::size_t kMaxFds = 64;

enum class Opcode : std::uint16_t {
  Ping = 1,     // no body; the reply's result is the daemon's protocol version
  Open = 2,     // OpenRequest + path bytes; reply: one fd
  Ioctl = 3,    // IoctlRequest + argument bytes; fds: [target, fd fields...]; reply: argument bytes
  Read = 4,     // CountRequest; fds: [target]; reply: the bytes read
  Write = 5,    // CountRequest + bytes; fds: [target]; reply: result = bytes written
  Poll = 6,     // PollRequest + PollEntry[count]; fds: one per entry; reply: PollEntry[count]
  Lseek = 7,    // LseekRequest; fds: [target]
  Fstat = 8,    // no body; fds: [target]; reply: StatReply
  Fdinfo = 9,   // no body; fds: [target]; reply: the text
  FdPath = 10,  // no body; fds: [target]; reply: the text
  Mmap = 11,    // MmapRequest; fds: [target]; the daemon checks (and maps and unmaps) as mmap(2)
                // would; the client maps the fd itself when the reply is 0
  Reap = 12,    // no body, no fds: the client has closed an fd (close(2) on its side); the
                // daemon reads the close events, so a last close is released before the reply
};

struct MessageHeader {
  std::uint32_t magic = kMagic;
  std::uint16_t version = kVersion;
  std::uint16_t opcode = 0;    // Opcode in a request; the request's opcode in its reply
  std::uint32_t size = 0;      // the whole message, header included
  std::uint32_t fdCount = 0;   // fds attached to this message (SCM_RIGHTS)
  std::uint64_t sequence = 0;  // chosen by the client, echoed in the reply
  std::uint64_t reserved = 0;  // must be 0
};
static_assert(sizeof(MessageHeader) == 32);

// Every reply: after the header, then the payload.
struct ReplyBody {
  std::int64_t result = 0;  // the call's return value when error == 0
  std::int32_t error = 0;   // errno, or 0
  std::uint32_t flags = 0;  // kReplyForeignFd, else 0
};
static_assert(sizeof(ReplyBody) == 16);

struct OpenRequest {
  std::int32_t flags = 0;
  std::uint32_t pathLength = 0;  // the path bytes follow (no terminating NUL)
};
static_assert(sizeof(OpenRequest) == 8);

struct IoctlRequest {
  std::uint64_t request = 0;    // the ioctl number (cut to 32 bits as the kernel's cmd)
  std::uint64_t value = 0;      // the argument itself, for a request that takes no pointer
  std::uint32_t argLength = 0;  // argument bytes that follow (the request's _IOC_SIZE, or a
                                // request-specific layout: docs/daemon.md)
  std::uint32_t flags = 0;      // kIoctlArgNull, else 0
};
static_assert(sizeof(IoctlRequest) == 24);

struct CountRequest {
  std::uint64_t count = 0;  // bytes to read; for a write the bytes follow
};
static_assert(sizeof(CountRequest) == 8);

struct PollRequest {
  std::int32_t timeoutMs = 0;
  std::uint32_t count = 0;  // PollEntry records follow
};
static_assert(sizeof(PollRequest) == 8);

struct PollEntry {
  std::uint32_t fdIndex = 0;  // in the message's fds; ~0u: a negative fd (ignored, as poll(2))
  std::int16_t events = 0;
  std::int16_t revents = 0;  // 0 in a request
};
static_assert(sizeof(PollEntry) == 8);

struct LseekRequest {
  std::int64_t offset = 0;
  std::int32_t whence = 0;
  std::uint32_t reserved = 0;
};
static_assert(sizeof(LseekRequest) == 16);

struct MmapRequest {
  std::uint64_t length = 0;
  std::uint64_t offset = 0;
  std::int32_t prot = 0;
  std::int32_t flags = 0;
};
static_assert(sizeof(MmapRequest) == 24);

struct StatReply {
  std::uint64_t size = 0;
  std::uint64_t inode = 0;
  std::uint64_t device = 0;
  std::uint64_t blockSize = 0;
  std::uint32_t mode = 0;
  std::uint32_t reserved = 0;
};
static_assert(sizeof(StatReply) == 40);

inline constexpr std::uint32_t kNoFd = ~0U;
// ReplyBody::flags, with error EBADF: the call's fd is not a zbuf file, and the daemon makes no
// call on another program's files (its credentials are not the client's: an ioctl, read or
// write there could do what the client may not). The client makes the call itself.
inline constexpr std::uint32_t kReplyForeignFd = 1;
inline constexpr std::uint32_t kIoctlArgNull = 1;  // IoctlRequest::flags: the caller passed NULL

}  // namespace zbuf::ipc
#pragma GCC visibility pop
