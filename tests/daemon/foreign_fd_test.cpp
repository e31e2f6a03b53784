// Files that are not zbuf's: the daemon makes no call on them (its credentials are not the
// client's), answers with the foreign-fd reply (ipc/protocol.h, kReplyForeignFd), and the client
// makes the real system call itself, so FdCalls keeps its contract ("the real system call for an
// fd zbuf does not own") through the daemon too.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "support/in_process_daemon.h"
#include "zbuf/base/sys.h"
#include "zbuf/daemon/server.h"
#include "zbuf/ipc/message.h"
#include "zbuf/ipc/protocol.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"

namespace zbuf {
namespace {

class ForeignFd : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = testing_support::InProcessDaemon::start(ctx);
    ASSERT_NE(daemon_, nullptr);
    server = daemon_->server.get();
    kernel = daemon_->client;
    std::array<int, 2> p{};
    ASSERT_EQ(::pipe2(p.data(), O_CLOEXEC | O_NONBLOCK), 0);
    readEnd = UniqueFd::adopt(p[0]);
    writeEnd = UniqueFd::adopt(p[1]);
  }
  void TearDown() override {
    kernel.reset();
    daemon_.reset();
  }

  // One raw request on a connection of our own; the reply.
  ipc::Message rawCall(ipc::Opcode op, std::span<const std::byte> body, int fd) {
    UniqueFd s = UniqueFd::adopt(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, server->socketPath().c_str(), sizeof(addr.sun_path) - 1);
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockaddr API
    EXPECT_EQ(::connect(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
    const std::array<int, 1> fds{fd};
    EXPECT_TRUE(ipc::sendMessage(s.get(), op, 7, body, fds).ok());
    auto reply = ipc::receiveMessage(s.get());
    EXPECT_TRUE(reply.ok()) << reply.error().describe();
    return reply.ok() ? std::move(*reply) : ipc::Message{};
  }
  static ipc::ReplyBody replyBody(const ipc::Message& m) {
    ipc::ReplyBody b;
    EXPECT_GE(m.body.size(), sizeof b);
    std::memcpy(&b, m.body.data(), std::min(m.body.size(), sizeof b));
    return b;
  }
  [[nodiscard]] std::size_t pending() const {
    int n = -1;
    EXPECT_EQ(::ioctl(readEnd.get(), FIONREAD, &n), 0);
    return static_cast<std::size_t>(n);
  }

  std::shared_ptr<uapi::Context> ctx = uapi::Context::create();
  std::unique_ptr<testing_support::InProcessDaemon> daemon_;
  daemon::Server* server = nullptr;
  std::shared_ptr<ipc::RemoteContext> kernel;
  UniqueFd readEnd;
  UniqueFd writeEnd;
};

TEST_F(ForeignFd, TheDaemonMakesNoCallOnAFileThatIsNotZbufs) {
  ASSERT_EQ(::write(writeEnd.get(), "abc", 3), 3);
  // A read through the daemon would take the bytes: they stay in the pipe.
  const ipc::CountRequest three{3};
  ipc::Message r = rawCall(ipc::Opcode::Read, std::as_bytes(std::span(&three, 1)), readEnd.get());
  ipc::ReplyBody b = replyBody(r);
  EXPECT_EQ(b.error, EBADF);
  EXPECT_EQ(b.flags, ipc::kReplyForeignFd);
  EXPECT_TRUE(r.fds.empty());
  EXPECT_EQ(pending(), 3U);
  // Nor a write, an ioctl, an lseek or an mmap check.
  std::array<std::byte, 9> write{};
  write[0] = std::byte{1};  // CountRequest{1} + one byte
  b = replyBody(rawCall(ipc::Opcode::Write, write, writeEnd.get()));
  EXPECT_EQ(b.error, EBADF);
  EXPECT_EQ(b.flags, ipc::kReplyForeignFd);
  EXPECT_EQ(pending(), 3U);
  ipc::IoctlRequest ioctlReq;
  ioctlReq.request = FIONREAD;
  ioctlReq.argLength = sizeof(int);
  ipc::BodyWriter body;
  body.put(ioctlReq);
  body.put(0);
  b = replyBody(rawCall(ipc::Opcode::Ioctl, body.bytes(), readEnd.get()));
  EXPECT_EQ(b.error, EBADF);
  EXPECT_EQ(b.flags, ipc::kReplyForeignFd);
  const ipc::LseekRequest seek{0, SEEK_SET, 0};
  b = replyBody(rawCall(ipc::Opcode::Lseek, std::as_bytes(std::span(&seek, 1)), readEnd.get()));
  EXPECT_EQ(b.flags, ipc::kReplyForeignFd);
  const ipc::MmapRequest map{4096, 0, PROT_READ, MAP_SHARED};
  b = replyBody(rawCall(ipc::Opcode::Mmap, std::as_bytes(std::span(&map, 1)), readEnd.get()));
  EXPECT_EQ(b.flags, ipc::kReplyForeignFd);
  // A zbuf file gets no such answer: the heap's device answers its own errno.
  auto heap = ctx->open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(heap.ok());
  b = replyBody(rawCall(ipc::Opcode::Lseek, std::as_bytes(std::span(&seek, 1)), heap->get()));
  EXPECT_EQ(b.flags, 0U);
}

TEST_F(ForeignFd, TheClientMakesTheRealCallsItself) {
  // As the embedded context does for an fd it does not own: the real system calls.
  const std::string text = "hello";
  auto w = kernel->write(writeEnd.get(), std::as_bytes(std::span(text)));
  ASSERT_TRUE(w.ok()) << w.error().describe();
  EXPECT_EQ(*w, text.size());
  int n = 0;
  auto io = kernel->ioctl(readEnd.get(), FIONREAD, &n);
  ASSERT_TRUE(io.ok()) << io.error().describe();
  EXPECT_EQ(n, 5);
  std::array<char, 16> buf{};
  auto r = kernel->read(readEnd.get(), std::as_writable_bytes(std::span(buf)));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::string(buf.data(), *r), text);
  // The real errnos: an empty non-blocking pipe is EAGAIN, a pipe cannot seek.
  EXPECT_EQ(kernel->read(readEnd.get(), std::as_writable_bytes(std::span(buf))).code(), EAGAIN);
  EXPECT_EQ(kernel->lseek(readEnd.get(), 0, SEEK_SET).code(), ESPIPE);
  EXPECT_EQ(ctx->lseek(readEnd.get(), 0, SEEK_SET).code(), ESPIPE);
  // A plain memfd maps, and the mapping is the memfd's.
  auto memfd = sys::memfdCreate("foreign", MFD_CLOEXEC);
  ASSERT_TRUE(memfd.ok());
  ASSERT_EQ(::ftruncate(memfd->get(), 4096), 0);
  auto m = kernel->mmap(memfd->get(), 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
  ASSERT_TRUE(m.ok()) << m.error().describe();
  m->bytes()[0] = std::byte{42};
  std::array<std::byte, 1> first{};
  ASSERT_EQ(::pread(memfd->get(), first.data(), 1, 0), 1);
  EXPECT_EQ(first[0], std::byte{42});
}

TEST_F(ForeignFd, AMemfdImportedThroughTheDaemonMustBeSealedAgainstShrinking) {
  // The udmabuf rule (check_memfd_seals), checked by the daemon on the client's own memfd: no
  // client can make a device fault by truncating memory the daemon maps.
  auto udmabuf = kernel->open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
  ASSERT_TRUE(udmabuf.ok()) << udmabuf.error().describe();
  const auto create = [&](int memfd) {
    uapi::UdmabufCreate arg{static_cast<std::uint32_t>(memfd), 0, 0, 4096};
    auto r = kernel->ioctl(udmabuf->get(), uapi::kUdmabufCreate, &arg);
    if (r.ok()) {
      EXPECT_TRUE(kernel->close(static_cast<int>(*r)).ok());
    }
    return r.code();
  };
  const auto memfd = [](unsigned seals) {
    auto fd = sys::memfdCreate("import", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    EXPECT_TRUE(fd.ok());
    EXPECT_EQ(::ftruncate(fd->get(), 4096), 0);
    if (seals != 0) {
      EXPECT_EQ(::fcntl(fd->get(), F_ADD_SEALS, seals), 0);
    }
    return std::move(*fd);
  };
  EXPECT_EQ(create(memfd(0).get()), EINVAL);                             // may shrink
  EXPECT_EQ(create(memfd(F_SEAL_SHRINK | F_SEAL_WRITE).get()), EINVAL);  // F_SEAL_WRITE too
  EXPECT_EQ(create(readEnd.get()), EBADFD);                              // not a memfd
  EXPECT_EQ(create(memfd(F_SEAL_SHRINK).get()), 0);
  EXPECT_TRUE(kernel->close(std::move(*udmabuf)).ok());
}

}  // namespace
}  // namespace zbuf
