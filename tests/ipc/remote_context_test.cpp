// RemoteContext (ipc/remote_context.h) against a fake daemon of the test's own that speaks the
// wire protocol (ipc/message.h): connect's errors (ENOENT, ECONNREFUSED, EPROTO for another
// protocol version), the daemon's errno as the call's error, EBADF for an fd that is not open
// without asking the daemon, and EPIPE or ECONNRESET once the daemon has gone. The calls served
// by the real daemon are tested in tests/daemon.
#include "zbuf/ipc/remote_context.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "zbuf/ipc/message.h"
#include "zbuf/ipc/protocol.h"

namespace zbuf::ipc {
namespace {

// A temporary directory, removed with what is in it.
struct TempDir {
  TempDir() {
    std::string tmpl = "/tmp/zbuf-remote-XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path = tmpl;
  }
  ~TempDir() {
    ::unlink((path + "/d.sock").c_str());
    ::rmdir(path.c_str());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string socket() const { return path + "/d.sock"; }
  std::string path;
};

UniqueFd boundSocket(const std::string& path) {
  const int s = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  EXPECT_GE(s, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  EXPECT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);  // NOLINT
  return UniqueFd::adopt(s);
}

// Serves one connection: answers up to `maxMessages` requests with `answer`, then hangs up.
class FakeDaemon {
 public:
  using Answer = std::function<ReplyBody(const Message&)>;
  FakeDaemon(const std::string& path, Answer answer, int maxMessages = 1000)
      : listener_(boundSocket(path)), answer_(std::move(answer)) {
    EXPECT_EQ(::listen(listener_.get(), 4), 0);
    thread_ = std::thread([this, maxMessages] { serve(maxMessages); });
  }
  ~FakeDaemon() { join(); }
  FakeDaemon(const FakeDaemon&) = delete;
  FakeDaemon& operator=(const FakeDaemon&) = delete;
  // Waits until the daemon has hung up; then `seen` is what it received.
  void join() {
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  std::vector<Opcode> seen;
  std::vector<std::string> bodies;

 private:
  void serve(int maxMessages) {
    UniqueFd conn = UniqueFd::adopt(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) {
      return;
    }
    for (int i = 0; i < maxMessages; ++i) {
      auto m = receiveMessage(conn.get());
      if (!m.ok()) {
        return;  // the client hung up
      }
      seen.push_back(static_cast<Opcode>(m->header.opcode));
      bodies.emplace_back(reinterpret_cast<const char*>(m->body.data()), m->body.size());
      const ReplyBody reply = answer_(*m);
      BodyWriter w;
      w.put(reply);
      if (!sendMessage(conn.get(), static_cast<Opcode>(m->header.opcode), m->header.sequence,
                       w.bytes(), {})
               .ok()) {
        return;
      }
    }
  }

  UniqueFd listener_;
  Answer answer_;
  std::thread thread_;
};

// Answers a Ping with `version` and every other request with `error`.
FakeDaemon::Answer speaking(std::int64_t version, int error = ENOSYS) {
  return [version, error](const Message& m) {
    ReplyBody r;
    if (m.header.opcode == static_cast<std::uint16_t>(Opcode::Ping)) {
      r.result = version;
    } else {
      r.error = error;
    }
    return r;
  };
}

TEST(RemoteContext, ConnectWithoutADaemonIsEnoent) {
  TempDir dir;
  EXPECT_EQ(RemoteContext::connect(dir.socket()).code(), ENOENT);
}

TEST(RemoteContext, ConnectToASocketNobodyListensOnIsEconnrefused) {
  TempDir dir;
  UniqueFd s = boundSocket(dir.socket());  // bound, never listening
  EXPECT_EQ(RemoteContext::connect(dir.socket()).code(), ECONNREFUSED);
}

TEST(RemoteContext, ADaemonOfAnotherProtocolVersionIsEproto) {
  TempDir dir;
  FakeDaemon daemon(dir.socket(), speaking(kVersion + 1));
  EXPECT_EQ(RemoteContext::connect(dir.socket()).code(), EPROTO);
  daemon.join();
  ASSERT_EQ(daemon.seen.size(), 1U);
  EXPECT_EQ(daemon.seen[0], Opcode::Ping);
}

TEST(RemoteContext, ConnectPingsTheDaemonAndKeepsThePath) {
  TempDir dir;
  FakeDaemon daemon(dir.socket(), speaking(kVersion));
  {
    auto k = RemoteContext::connect(dir.socket());
    ASSERT_TRUE(k.ok()) << k.error().describe();
    EXPECT_EQ((*k)->socketPath(), dir.socket());
  }
  daemon.join();
  ASSERT_EQ(daemon.seen.size(), 1U);
  EXPECT_EQ(daemon.seen[0], Opcode::Ping);
}

TEST(RemoteContext, TheDaemonsErrnoIsTheCallsError) {
  TempDir dir;
  FakeDaemon daemon(dir.socket(), speaking(kVersion, ENOENT));
  {
    auto k = RemoteContext::connect(dir.socket()).value();
    EXPECT_EQ(k->open("/dev/nothing", O_RDONLY).code(), ENOENT);
  }
  daemon.join();
  ASSERT_EQ(daemon.seen.size(), 2U);
  EXPECT_EQ(daemon.seen[1], Opcode::Open);
  EXPECT_NE(daemon.bodies[1].find("/dev/nothing"), std::string::npos);  // the path follows
}

TEST(RemoteContext, AnFdThatIsNotOpenIsEbadfWithoutAskingTheDaemon) {
  TempDir dir;
  FakeDaemon daemon(dir.socket(), speaking(kVersion));
  {
    auto k = RemoteContext::connect(dir.socket()).value();
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    ::close(fds[0]);
    ::close(fds[1]);  // two fd numbers that are not open now
    EXPECT_EQ(k->fstat(fds[0]).code(), EBADF);
    EXPECT_EQ(k->fdinfo(fds[1]).code(), EBADF);
    std::array<std::byte, 4> buf{};
    EXPECT_EQ(k->read(fds[0], buf).code(), EBADF);
    EXPECT_EQ(k->lseek(fds[0], 0, SEEK_SET).code(), EBADF);
  }
  daemon.join();
  EXPECT_EQ(daemon.seen.size(), 1U);  // the Ping only
}

TEST(RemoteContext, ADaemonThatHasGoneIsEpipeOrEconnreset) {
  TempDir dir;
  FakeDaemon daemon(dir.socket(), speaking(kVersion), 1);  // hangs up after the Ping
  auto k = RemoteContext::connect(dir.socket()).value();
  daemon.join();
  const int code = k->open("/dev/dma_heap/system", O_RDONLY).code();
  EXPECT_TRUE(code == EPIPE || code == ECONNRESET) << code;
}

}  // namespace
}  // namespace zbuf::ipc
