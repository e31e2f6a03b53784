// Target iiod: zbufd's IIOD server (daemon/iiod.h) as libiio's network backend reaches it. Each
// input is the bytes one client sends on one connection (request lines, WRITE values, WRITEBUF
// samples, or anything else), sent to a server on 127.0.0.1 that serves a board's ADC and DAC,
// while the harness reads every reply; then the client half-closes. Checked, beyond the
// sanitizers:
//  - the server ends the connection (EOF) within the idle timeout plus a margin after the
//    input ends: a hostile or truncated request never hangs it;
//  - the connection's buffers are given back: the server's client count returns to 0 and the
//    context's file table to what it listed before the input;
//  - the server still serves: a fresh connection's VERSION is answered "0.24...".
// The server lives for the whole run (one per process, as zbufd's), with a short idle timeout.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "fuzz_support.h"
#include "zbuf/daemon/iiod.h"
#include "zbuf/devices/board.h"

namespace zbuf::fuzz {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kIdle = std::chrono::milliseconds(300);
constexpr auto kMargin = std::chrono::seconds(20);

struct Served {
  std::shared_ptr<uapi::Context> ctx = uapi::Context::create();
  std::shared_ptr<Board> board;
  std::unique_ptr<daemon::IiodServer> server;
};

Served& served() {
  static Served* s = [] {
    auto* out = new Served();  // NOLINT(cppcoreguidelines-owning-memory): lives for the run
    BoardConfig bc;
    bc.iioLength = 1024;  // small buffers: a READBUF's worth is quick to produce
    auto board = Board::create(*out->ctx, bc);
    if (!board.ok()) {
      fail("board: {}", board.error().describe());
    }
    out->board = std::move(*board);
    daemon::IiodConfig config;
    config.listing = [c = out->ctx] { return c->nodes(); };
    config.idleTimeout = kIdle;
    config.maxConnections = 4;
    config.maxBufferBytes = std::size_t{1} << 20;
    auto server = daemon::IiodServer::create(*out->ctx, config);
    if (!server.ok()) {
      fail("iiod: {}", server.error().describe());
    }
    out->server = std::move(*server);
    return out;
  }();
  return *s;
}

UniqueFd connectTo(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fail("socket: {}", std::strerror(errno));
  }
  UniqueFd sock = UniqueFd::adopt(fd);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    fail("connect: {}", std::strerror(errno));
  }
  return sock;
}

// Sends `in` while reading (and dropping) every reply, half-closes, reads to EOF. Returns the
// first reply bytes (up to 64) and fails if EOF does not come in time.
std::string converse(std::uint16_t port, std::span<const std::byte> in) {
  UniqueFd sock = connectTo(port);
  std::size_t sent = 0;
  bool halfClosed = false;
  std::string head;
  std::array<char, 65536> buf{};
  Clock::time_point deadline = Clock::now() + kIdle + kMargin;
  for (;;) {
    if (!halfClosed && sent == in.size()) {
      (void)::shutdown(sock.get(), SHUT_WR);
      halfClosed = true;
      deadline = Clock::now() + kIdle + kMargin;
    }
    struct pollfd p {
      sock.get(), static_cast<short>(POLLIN | (halfClosed ? 0 : POLLOUT)), 0
    };
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      fail("the server did not end the connection within {} ms of the input's end",
           std::chrono::duration_cast<std::chrono::milliseconds>(kIdle + kMargin).count());
    }
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0) {
      continue;
    }
    if ((p.revents & POLLOUT) != 0) {
      const ssize_t n =
          ::send(sock.get(), in.data() + sent, std::min<std::size_t>(in.size() - sent, 4096),
                 MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        sent = in.size();  // the server closed on us: what is left is never read
      }
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = ::recv(sock.get(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        return head;  // EOF (or a reset): the server ended the connection
      }
      if (n > 0 && head.size() < 64) {
        head.append(buf.data(),
                    std::min<std::size_t>(static_cast<std::size_t>(n), 64 - head.size()));
      }
    }
  }
}

void waitForNoClients(daemon::IiodServer& server) {
  const auto deadline = Clock::now() + kMargin;
  while (server.clients() != 0) {
    if (Clock::now() > deadline) {
      fail("{} connections still open after their clients left", server.clients());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the server's own thread ends
  }
}

}  // namespace
}  // namespace zbuf::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace zbuf::fuzz;
  Served& s = served();
  const std::size_t filesBefore = s.ctx->files().list().size();
  (void)converse(s.server->port(), {reinterpret_cast<const std::byte*>(data), size});
  waitForNoClients(*s.server);
  // Every OPEN's buffer fd was closed through the context: the table is back where it was.
  const std::size_t filesAfter = s.ctx->files().list().size();
  if (filesAfter != filesBefore) {
    fail("the context holds {} files after the connection, {} before", filesAfter, filesBefore);
  }
  const std::string version = "VERSION\n";
  const std::string reply = converse(
      s.server->port(), {reinterpret_cast<const std::byte*>(version.data()), version.size()});
  if (!reply.starts_with("0.24")) {
    fail("after the input, VERSION was answered '{}'", reply);
  }
  waitForNoClients(*s.server);
  return 0;
}
