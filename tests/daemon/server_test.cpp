// daemon::Server (daemon/server.h) in this process: the socket file it makes (mode, group),
// a live daemon's path refused and a dead one's taken over, its connection counts, what a client
// process holds, its clients file, a peer of another user refused, and stop() removing the file.
// The refused peer is this binary re-executed with ZBUF_SERVER_TEST_PEER set, as nobody.
// ctest-labels: concurrency
#include "zbuf/daemon/server.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "support/spawn.h"
#include "support/wait_until.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/uapi/abi.h"

namespace zbuf::daemon {
namespace {

namespace fs = std::filesystem;
constexpr uid_t kNobody = 65534;

// The refused peer: becomes nobody:nogroup and must not get a working connection.
[[maybe_unused]] const bool kIsPeer = [] {
  const char* socket = std::getenv("ZBUF_SERVER_TEST_PEER");
  if (socket == nullptr) {
    return false;
  }
  if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) {
    ::_exit(20);
  }
  auto k = ipc::RemoteContext::connect(socket);
  ::_exit(k.ok() ? 21 : 0);  // 0: refused, as it must be
}();

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t = (fs::temp_directory_path() / "zbuf-server-XXXXXX").string();
    ASSERT_NE(::mkdtemp(t.data()), nullptr);
    dir = t;
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    path = (dir / "zbufd.sock").string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  Result<std::unique_ptr<Server>> start(mode_t mode = 0600, std::optional<gid_t> group = {}) {
    ServerConfig config;
    config.socketPath = path;
    config.mode = mode;
    config.group = group;
    config.context = context;
    return Server::create(std::move(config));
  }

  fs::path dir;
  std::string path;
  std::shared_ptr<uapi::Context> context = uapi::Context::create();
};

TEST_F(ServerTest, TheSocketFileIsOwnerOnlyByDefault) {
  auto server = start();
  ASSERT_TRUE(server.ok()) << server.error().describe();
  EXPECT_EQ((*server)->socketPath(), path);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600U);
}

TEST_F(ServerTest, AGroupGetsTheFileAndItsMode) {
  if (::geteuid() != 0 || ::getgrgid(kNobody) == nullptr) {
    GTEST_SKIP() << "needs root to give the socket file the nogroup group";
  }
  auto server = start(0660, kNobody);
  ASSERT_TRUE(server.ok()) << server.error().describe();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, kNobody);
  EXPECT_EQ(st.st_mode & 0777, 0660U);
}

TEST_F(ServerTest, ALiveDaemonsPathIsRefusedAndADeadOnesIsTakenOver) {
  {
    auto first = start();
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(start().code(), EADDRINUSE);
  }
  EXPECT_FALSE(fs::exists(path));  // stop() removed it
  // A socket file nobody listens on (a daemon that died without removing it): replaced.
  const int s = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(s);
  ASSERT_TRUE(fs::exists(path));
  auto second = start();
  ASSERT_TRUE(second.ok()) << second.error().describe();
  EXPECT_TRUE(ipc::RemoteContext::connect(path).ok());
}

TEST_F(ServerTest, ItCountsConnectionsAndWhatAClientHolds) {
  auto server = std::move(start().value());
  EXPECT_EQ(server->clients(), 0U);
  {
    auto client = ipc::RemoteContext::connect(path).value();
    EXPECT_TRUE(testing_support::waitUntil([&] { return server->clients() == 1; }));
    EXPECT_GE(server->accepted(), 1U);
    UniqueFd heap = client->open("/dev/dma_heap/system", O_RDONLY).value();
    uapi::DmaHeapAllocationData data{};
    data.len = 8192;
    data.fdFlags = O_RDWR | O_CLOEXEC;
    ASSERT_TRUE(client->ioctl(heap.get(), uapi::kDmaHeapIoctlAlloc, &data).ok());
    UniqueFd buffer = UniqueFd::adopt(static_cast<int>(data.fd));
    const ClientUsage mine = server->usage(::getpid());
    EXPECT_EQ(mine.buffers, 1U);
    EXPECT_EQ(mine.bytes, 8192U);
    EXPECT_GE(mine.files, 2U);  // the heap device and the buffer
    ASSERT_EQ(mine.bufferInodes.size(), 1U);
    EXPECT_EQ(server->usage(1).files, 0U);  // a process it does not know
    // The clients file lists this process with what it holds.
    UniqueFd clients = client->open(kClientsPath, O_RDONLY).value();
    std::array<std::byte, 4096> buf{};
    auto n = client->read(clients.get(), buf);
    ASSERT_TRUE(n.ok());
    const std::string text(reinterpret_cast<const char*>(buf.data()), *n);
    EXPECT_NE(text.find(std::to_string(::getpid()) + "\t"), std::string::npos) << text;
    ASSERT_TRUE(client->close(std::move(buffer)).ok());
    EXPECT_EQ(server->usage(::getpid()).buffers, 0U);  // closed through the calls: given back
  }
  EXPECT_TRUE(testing_support::waitUntil([&] { return server->clients() == 0; }))
      << server->clients() << " connections after the client went";
}

TEST_F(ServerTest, APeerOfAnotherUserIsRefused) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root, to run a peer as nobody";
  }
  auto server = std::move(start(0666).value());  // the file lets anyone connect; the daemon not
  const pid_t peer =
      testing_support::spawn({"/proc/self/exe"}, {"ZBUF_SERVER_TEST_PEER=" + path}, nullptr);
  ASSERT_GT(peer, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(peer, &status, 0), peer);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the peer of uid " << kNobody << " was served";
  EXPECT_EQ(server->clients(), 0U);
}

TEST_F(ServerTest, StopRemovesTheSocketAndRefusesNewClients) {
  auto server = std::move(start().value());
  ASSERT_TRUE(ipc::RemoteContext::connect(path).ok());
  server->stop();
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(ipc::RemoteContext::connect(path).ok());
  server->stop();  // idempotent
}

}  // namespace
}  // namespace zbuf::daemon
