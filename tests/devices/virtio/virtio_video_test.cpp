// The virtio video pair through its device files (virtio_video.h), on both kernels: the
// decoder's virtio exporter with its asynchronous UUID registration, the display's import by
// UUID, the fences between them, duplicates, release, the policy, and every error path.
// ctest-labels: concurrency
#include "zbuf/devices/virtio/virtio_video.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>

#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <sstream>
#include <string>

#include "support/both_contexts.h"
#include "zbuf/uapi/abi.h"

namespace zbuf {
namespace {

using namespace std::chrono_literals;
using testing_support::BothContexts;

constexpr std::uint64_t kFrameBytes = std::uint64_t{64} * 1024;

Uuid uuidOf(const std::uint8_t (&bytes)[16]) {  // NOLINT(*-avoid-c-arrays): the uAPI's field
  Uuid u{};
  std::memcpy(u.data(), bytes, u.size());
  return u;
}

class VirtioVideo : public BothContexts {
 protected:
  struct Frame {
    UniqueFd fd;
    Uuid uuid{};
  };

  Result<Frame> alloc(int decoder, const Uuid* uuid = nullptr, std::uint64_t size = kFrameBytes) {
    uapi::VirtioVideoAlloc req{};
    req.size = size;
    req.fdFlags = O_RDWR | O_CLOEXEC;
    if (uuid != nullptr) {
      req.flags = uapi::kVirtioVideoAllocUuid;
      std::memcpy(req.uuid, uuid->data(), uuid->size());
    }
    ZBUF_TRY(calls->ioctl(decoder, uapi::kVirtioVideoAlloc, &req));
    return Frame{UniqueFd::adopt(static_cast<int>(req.fd)), uuidOf(req.uuid)};
  }
  Result<Uuid> getUuid(int decoder, int buffer) {
    uapi::VirtioVideoUuid req{};
    req.fd = static_cast<std::uint32_t>(buffer);
    ZBUF_TRY(calls->ioctl(decoder, uapi::kVirtioVideoGetUuid, &req));
    return uuidOf(req.uuid);
  }
  Result<UniqueFd> import(int display, const Uuid& uuid) {
    uapi::VirtioVideoImport req{};
    std::memcpy(req.uuid, uuid.data(), uuid.size());
    req.fdFlags = O_RDWR | O_CLOEXEC;
    ZBUF_TRY(calls->ioctl(display, uapi::kVirtioVideoImport, &req));
    return UniqueFd::adopt(static_cast<int>(req.fd));
  }
  Result<long> frameCall(int device, unsigned long request, int buffer, std::uint64_t frame) {
    uapi::VirtioVideoFrame req{static_cast<std::uint32_t>(buffer), 0, frame};
    return calls->ioctl(device, request, &req);
  }
  // A bench file's "key value" lines.
  std::map<std::string, std::uint64_t> bench(const std::string& name) {
    std::map<std::string, std::uint64_t> values;
    std::istringstream in(readFile(std::string(virtio::kBenchDir) + "/" + name));
    std::string key;
    std::uint64_t value = 0;
    while (in >> key >> value) {
      values[key] = value;
    }
    return values;
  }
  std::string readFile(const std::string& path) {
    UniqueFd fd = open(path, O_RDONLY);
    std::array<std::byte, 4096> buf{};
    auto n = calls->read(fd.get(), buf);
    EXPECT_TRUE(n.ok()) << path;
    return n.ok() ? std::string(reinterpret_cast<const char*>(buf.data()), *n) : std::string();
  }
};

class VirtioVideoSlowHost : public VirtioVideo {
 protected:
  VirtioVideoSlowHost() { boardConfig.virtioRegistrationLatency = 300ms; }
};

TEST_P(VirtioVideoSlowHost, AllocReturnsAtOnceAndGetUuidWaitsForTheRegistration) {
  UniqueFd decoder = open(virtio::kDecoderPath);
  UniqueFd nonBlocking = open(virtio::kDecoderPath, O_RDWR | O_NONBLOCK);
  const auto start = std::chrono::steady_clock::now();
  auto frame = alloc(decoder.get());
  ASSERT_TRUE(frame.ok()) << frame.error().describe();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 300ms);  // not the round trip
  EXPECT_NE(frame->uuid, Uuid{});
  // Still being registered: EAGAIN without blocking, the UUID once the host answered.
  EXPECT_EQ(getUuid(nonBlocking.get(), frame->fd.get()).code(), EAGAIN);
  EXPECT_EQ(bench("host")["pending"], 1U);
  auto uuid = getUuid(decoder.get(), frame->fd.get());
  ASSERT_TRUE(uuid.ok()) << uuid.error().describe();
  EXPECT_EQ(*uuid, frame->uuid);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  EXPECT_EQ(getUuid(nonBlocking.get(), frame->fd.get()).value(), frame->uuid);
  const std::string line = toString(frame->uuid) + " registered 0 ";  // then the inode
  EXPECT_EQ(readFile(std::string(virtio::kBenchDir) + "/uuids").substr(0, line.size()), line);
}

TEST_P(VirtioVideoSlowHost, AnImportOfAPendingUuidWaitsOrIsEagain) {
  UniqueFd decoder = open(virtio::kDecoderPath);
  UniqueFd display = open(virtio::kDisplayPath);
  UniqueFd nonBlocking = open(virtio::kDisplayPath, O_RDWR | O_NONBLOCK);
  auto frame = alloc(decoder.get());
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(import(nonBlocking.get(), frame->uuid).code(), EAGAIN);
  auto imported = import(display.get(), frame->uuid);  // waits for the host's answer
  ASSERT_TRUE(imported.ok()) << imported.error().describe();
  // The same buffer: the same file behind both fds, the same memory.
  EXPECT_EQ(calls->fstat(imported->get()).value().inode,
            calls->fstat(frame->fd.get()).value().inode);
}

TEST_P(VirtioVideo, DecodedFramesReachTheDisplayByUuidInOrder) {
  UniqueFd decoder = open(virtio::kDecoderPath);
  UniqueFd display = open(virtio::kDisplayPath);
  std::array<Frame, 2> frames;
  std::array<UniqueFd, 2> imported;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    frames[i] = std::move(alloc(decoder.get()).value());
    imported[i] = std::move(import(display.get(), frames[i].uuid).value());
  }
  EXPECT_EQ(bench("decoder")["device_attaches"], 2U);  // the display's attach ran the hook
  // Decode and show 16 frames through two buffers without waiting for anything: the fences
  // order each DISPLAY after its DECODE, and each DECODE after the DISPLAY that read the
  // buffer's previous frame.
  constexpr std::uint64_t kFrames = 16;
  for (std::uint64_t n = 0; n < kFrames; ++n) {
    const std::size_t i = n % 2;
    ASSERT_TRUE(frameCall(decoder.get(), uapi::kVirtioVideoDecode, frames[i].fd.get(), n).ok());
    ASSERT_TRUE(frameCall(display.get(), uapi::kVirtioVideoDisplay, imported[i].get(), n).ok());
  }
  // The last DISPLAY's fence: poll the buffers until every fence signalled (POLLOUT).
  for (const UniqueFd& fd : imported) {
    std::array<struct pollfd, 1> p{{{fd.get(), POLLOUT, 0}}};
    ASSERT_EQ(calls->poll(p, 10000).value(), 1);
  }
  auto shown = bench("display");
  EXPECT_EQ(shown["frames"], kFrames);
  EXPECT_EQ(shown["mismatches"], 0U);
  EXPECT_EQ(shown["verified"], kFrames * kFrameBytes);
  EXPECT_EQ(bench("decoder")["decoded"], kFrames);
  // The importer's fd maps the decoder's memory: the last frame of buffer 1 is there.
  auto map = calls->mmap(imported[1].get(), kFrameBytes, PROT_READ, MAP_SHARED, 0);
  ASSERT_TRUE(map.ok()) << map.error().describe();
  std::uint64_t word = 0;
  std::memcpy(&word, map->data() + std::size_t{8} * 100, sizeof word);
  EXPECT_EQ(word, virtio::frameWord(kFrames - 1, 100));
}

TEST_P(VirtioVideo, AStaleFrameShowsAsMismatches) {
  UniqueFd decoder = open(virtio::kDecoderPath);
  UniqueFd display = open(virtio::kDisplayPath);
  Frame frame = std::move(alloc(decoder.get()).value());
  UniqueFd imported = std::move(import(display.get(), frame.uuid).value());
  ASSERT_TRUE(frameCall(decoder.get(), uapi::kVirtioVideoDecode, frame.fd.get(), 7).ok());
  // Shown as frame 8, which was never decoded: every word is wrong.
  ASSERT_TRUE(frameCall(display.get(), uapi::kVirtioVideoDisplay, imported.get(), 8).ok());
  std::array<struct pollfd, 1> p{{{imported.get(), POLLOUT, 0}}};
  ASSERT_EQ(calls->poll(p, 10000).value(), 1);
  EXPECT_EQ(bench("display")["mismatches"], kFrameBytes / 8);
  EXPECT_EQ(bench("display")["verified"], 0U);
}

TEST_P(VirtioVideo, ADuplicateUuidIsRefusedAndTheFirstBufferKeepsIt) {
  UniqueFd decoder = open(virtio::kDecoderPath);
  UniqueFd display = open(virtio::kDisplayPath);
  Frame first = std::move(alloc(decoder.get()).value());
  ASSERT_TRUE(getUuid(decoder.get(), first.fd.get()).ok());
  auto second = alloc(decoder.get(), &first.uuid);
  ASSERT_TRUE(second.ok()) << second.error().describe();  // export is not the registration
  EXPECT_EQ(second->uuid, first.uuid);
  EXPECT_EQ(getUuid(decoder.get(), second->fd.get()).code(), EEXIST);
  EXPECT_EQ(bench("host")["duplicates"], 1U);
  UniqueFd imported = std::move(import(display.get(), first.uuid).value());
  EXPECT_EQ(calls->fstat(imported.get()).value().inode, calls->fstat(first.fd.get()).value().inode);
}

TEST_P(VirtioVideo, AUuidIsGoneOnceItsBufferIsReleased) {
  UniqueFd decoder = open(virtio::kDecoderPath);
  UniqueFd display = open(virtio::kDisplayPath);
  Frame frame = std::move(alloc(decoder.get()).value());
  const Uuid uuid = getUuid(decoder.get(), frame.fd.get()).value();
  // An import holds the buffer: closing the decoder's fd leaves it registered.
  UniqueFd imported = std::move(import(display.get(), uuid).value());
  ASSERT_TRUE(calls->close(std::move(frame.fd)).ok());
  auto again = import(display.get(), uuid);
  ASSERT_TRUE(again.ok()) << again.error().describe();
  ASSERT_TRUE(calls->close(std::move(*again)).ok());
  // The fd and the display file's attachment were the last holders.
  ASSERT_TRUE(calls->close(std::move(imported)).ok());
  ASSERT_TRUE(calls->close(std::move(display)).ok());
  UniqueFd other = open(virtio::kDisplayPath);
  EXPECT_EQ(import(other.get(), uuid).code(), ENOENT);
  EXPECT_EQ(bench("host")["entries"], 0U);
  EXPECT_EQ(readFile(std::string(virtio::kBenchDir) + "/uuids"), "");
}

TEST_P(VirtioVideo, DetachDropsTheDisplaysImport) {
  UniqueFd decoder = open(virtio::kDecoderPath);
  UniqueFd display = open(virtio::kDisplayPath);
  Frame frame = std::move(alloc(decoder.get()).value());
  UniqueFd imported = std::move(import(display.get(), frame.uuid).value());
  int fd = imported.get();
  ASSERT_TRUE(calls->ioctl(display.get(), uapi::kVirtioVideoDetach, &fd).ok());
  EXPECT_EQ(calls->ioctl(display.get(), uapi::kVirtioVideoDetach, &fd).code(), EPERM);
  EXPECT_EQ(frameCall(display.get(), uapi::kVirtioVideoDisplay, imported.get(), 0).code(), EPERM);
}

TEST_P(VirtioVideo, BadRequestsGetTheirErrors) {
  UniqueFd decoder = open(virtio::kDecoderPath);
  UniqueFd display = open(virtio::kDisplayPath);
  UniqueFd heapBuffer = allocate(4096);
  Frame frame = std::move(alloc(decoder.get()).value());

  uapi::VirtioVideoAlloc a{};
  a.size = 4096;
  a.fdFlags = O_RDWR | O_CLOEXEC;
  a.flags = 2;
  EXPECT_EQ(calls->ioctl(decoder.get(), uapi::kVirtioVideoAlloc, &a).code(), EINVAL);
  a.flags = 0;
  a.fdFlags = O_RDWR | O_NONBLOCK;
  EXPECT_EQ(calls->ioctl(decoder.get(), uapi::kVirtioVideoAlloc, &a).code(), EINVAL);
  a.fdFlags = O_RDWR | O_CLOEXEC;
  a.size = 0;
  EXPECT_EQ(calls->ioctl(decoder.get(), uapi::kVirtioVideoAlloc, &a).code(), EINVAL);
  // GET_UUID: a buffer that is not virtio is EINVAL (virtio_dma_buf_get_uuid); no fd is EBADF.
  EXPECT_EQ(getUuid(decoder.get(), heapBuffer.get()).code(), EINVAL);
  EXPECT_EQ(getUuid(decoder.get(), closedFd()).code(), EBADF);
  // DECODE: another exporter's buffer, unknown flags.
  EXPECT_EQ(frameCall(decoder.get(), uapi::kVirtioVideoDecode, heapBuffer.get(), 0).code(), EINVAL);
  uapi::VirtioVideoFrame f{static_cast<std::uint32_t>(frame.fd.get()), 1, 0};
  EXPECT_EQ(calls->ioctl(decoder.get(), uapi::kVirtioVideoDecode, &f).code(), EINVAL);
  // IMPORT: an unknown UUID, a non-zero fd on input.
  EXPECT_EQ(import(display.get(), randomUuid()).code(), ENOENT);
  uapi::VirtioVideoImport imp{};
  imp.fdFlags = O_RDWR | O_CLOEXEC;
  imp.fd = 3;
  EXPECT_EQ(calls->ioctl(display.get(), uapi::kVirtioVideoImport, &imp).code(), EINVAL);
  // DISPLAY of a buffer this display file did not import.
  EXPECT_EQ(frameCall(display.get(), uapi::kVirtioVideoDisplay, frame.fd.get(), 0).code(), EPERM);
  // Each file's calls are its own: the display's on the decoder is ENOTTY, and so on.
  EXPECT_EQ(frameCall(decoder.get(), uapi::kVirtioVideoDisplay, frame.fd.get(), 0).code(), ENOTTY);
  EXPECT_EQ(frameCall(display.get(), uapi::kVirtioVideoDecode, frame.fd.get(), 0).code(), ENOTTY);
  EXPECT_EQ(calls->fdPath(decoder.get()).value(), virtio::kDecoderPath);
  EXPECT_EQ(calls->fdPath(display.get()).value(), virtio::kDisplayPath);
}

ZBUF_BOTH_CONTEXTS(VirtioVideo);
ZBUF_BOTH_CONTEXTS(VirtioVideoSlowHost);

// The policy needs callers of different users: in one process, the calls' user is set per
// thread (zbufd sets its client's, from SO_PEERCRED; tests/daemon/virtio_process_test.cpp
// has a client of another user).
TEST(VirtioVideoPolicy, AnotherUserGetsEaccesAndRootResolves) {
  auto ctx = uapi::Context::create();
  auto board = Board::create(*ctx, {}).value();
  UniqueFd decoder = ctx->open(virtio::kDecoderPath, O_RDWR).value();
  UniqueFd display = ctx->open(virtio::kDisplayPath, O_RDWR).value();
  uapi::VirtioVideoAlloc a{};
  a.size = 4096;
  a.fdFlags = O_RDWR | O_CLOEXEC;
  uapi::Context::setCallerUid(1000);
  ASSERT_TRUE(ctx->ioctl(decoder.get(), uapi::kVirtioVideoAlloc, &a).ok());
  UniqueFd buffer = UniqueFd::adopt(static_cast<int>(a.fd));
  uapi::VirtioVideoImport imp{};
  std::memcpy(imp.uuid, a.uuid, sizeof imp.uuid);
  imp.fdFlags = O_RDWR | O_CLOEXEC;
  uapi::Context::setCallerUid(1001);
  EXPECT_EQ(ctx->ioctl(display.get(), uapi::kVirtioVideoImport, &imp).code(), EACCES);
  uapi::Context::setCallerUid(1000);
  ASSERT_TRUE(ctx->ioctl(display.get(), uapi::kVirtioVideoImport, &imp).ok());
  UniqueFd own = UniqueFd::adopt(static_cast<int>(imp.fd));
  imp.fd = 0;
  uapi::Context::setCallerUid(0);
  ASSERT_TRUE(ctx->ioctl(display.get(), uapi::kVirtioVideoImport, &imp).ok());
  UniqueFd roots = UniqueFd::adopt(static_cast<int>(imp.fd));
  uapi::Context::setCallerUid(std::nullopt);
  EXPECT_EQ(uapi::Context::callerUid(), ::geteuid());
  EXPECT_EQ(board->virtioHost().stats().refused, 1U);
}

}  // namespace
}  // namespace zbuf
