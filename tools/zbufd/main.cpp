// zbufd: the emulated kernel as a daemon (docs/daemon.md). A thin main over zbuf::daemon::Server:
// one Context with the heaps and, unless --no-board, the board's devices (the ADC, the DAC, the
// FunctionFS function with its link and host), served on a Unix socket until SIGTERM or SIGINT.
// With --iiod-port PORT it also serves the context's IIO devices to libiio's tools over TCP on
// 127.0.0.1:PORT (0: any free port, printed), libiio 0.24's iiod protocol (daemon/iiod.h):
// `iio_info -u ip:127.0.0.1:PORT`. Off by default.
#include <grp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "zbuf/base/log.h"
#include "zbuf/base/unique_fd.h"
#include "zbuf/daemon/iiod.h"
#include "zbuf/daemon/server.h"
#include "zbuf/devices/board.h"
#include "zbuf/ipc/socket_path.h"
#include "zbuf/uapi/context.h"

namespace {

// systemd socket activation (sd_listen_fds(3)): one socket, fd 3, meant for this process.
zbuf::UniqueFd inheritedSocket() {
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  if (pid == nullptr || fds == nullptr || std::atol(pid) != ::getpid() || std::atoi(fds) != 1) {
    return {};
  }
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  return zbuf::UniqueFd::adopt(3);
}

int run(int argc, char** argv) {
  CLI::App app{"zbufd: zbuf's emulated kernel (heaps, IIO ADC/DAC, FunctionFS) as a daemon"};
  std::string socket;
  std::string group;
  std::string mode = "0600";
  bool noBoard = false;
  std::optional<std::uint16_t> iiodPort;
  app.add_option("-s,--socket", socket,
                 "socket path (default: $ZBUF_SOCKET, else $XDG_RUNTIME_DIR/zbuf/zbufd.sock, "
                 "/run/zbuf/zbufd.sock as root)");
  app.add_option("-g,--group", group, "admit this group too (the socket file gets it, mode 0660)");
  app.add_option("-m,--mode", mode, "the socket file's permissions, octal")->capture_default_str();
  app.add_flag("--no-board", noBoard, "serve the heaps and udmabuf only, no devices");
  app.add_option("--iiod-port", iiodPort,
                 "also serve the IIO devices to libiio (iio_info -u ip:127.0.0.1:PORT) on this "
                 "TCP port of 127.0.0.1; 0: any free port [off]");
  // What one client process may hold (daemon/client_account.h).
  zbuf::daemon::ClientLimits limits;
  app.add_option("--max-files", limits.files, "files one client process may hold (EMFILE past it)")
      ->capture_default_str()
      ->group("Limits");
  app.add_option("--max-buffers", limits.buffers,
                 "dma-bufs one client process may hold (ENOMEM past it)")
      ->capture_default_str()
      ->group("Limits");
  app.add_option("--max-bytes", limits.bytes,
                 "bytes of dma-bufs one client process may hold (ENOMEM past it)")
      ->capture_default_str()
      ->group("Limits");
  // The board's settings (devices/board.h; zbuf stream --daemon adopts them).
  zbuf::BoardConfig board;
  std::string pattern = zbuf::toString(board.pattern);
  std::string link = zbuf::toString(board.link);
  app.add_flag("-B,--benchmark", board.benchmark,
               "the hardware neither generates nor checks the pattern (zbuf stream -B)")
      ->group("Board");
  app.add_option("--rate", board.sampleRate, "ADC/DAC samples per second per channel [unlimited]")
      ->check(CLI::PositiveNumber)
      ->group("Board");
  app.add_option("--channels", board.format.channels, "interleaved 16-bit channels")
      ->check(CLI::Range(1, 16))
      ->capture_default_str()
      ->group("Board");
  app.add_option("--pattern", pattern, "ramp | prbs")
      ->check(CLI::IsMember({"ramp", "prbs"}))
      ->capture_default_str()
      ->group("Board");
  app.add_option("--link", link, "usb2 | usb3 | unlimited")
      ->check(CLI::IsMember({"usb2", "usb3", "unlimited"}))
      ->capture_default_str()
      ->group("Board");
  app.add_option("--fileio-blocks", board.iioFileioBlocks, "blocks of the IIO fileio rings")
      ->check(CLI::Range(1, 64))
      ->capture_default_str()
      ->group("Board");
  double virtioLatencyMs = 0;
  app.add_option("--virtio-latency", virtioLatencyMs,
                 "ms the virtio host takes to register a UUID (the round trip)")
      ->check(CLI::Range(0.0, 60000.0))
      ->capture_default_str()
      ->group("Board");
  app.footer("Logging: ZBUF_LOG=\"Daemon:info\" logs every connection (the peer's pid, uid, gid).");
  // A config file holds the same options, one "name = value" a line (TOML or INI, CLI11's
  // reader); flags on the command line win over it. docs/daemon.md has an example.
  app.set_config("--config", "", "read options from FILE (name = value lines, e.g. channels = 2)")
      ->type_name("FILE");
  app.allow_config_extras(CLI::config_extras_mode::error);  // a misspelt name is an error
  CLI11_PARSE(app, argc, argv);

  board.virtioRegistrationLatency =
      std::chrono::nanoseconds(static_cast<std::int64_t>(virtioLatencyMs * 1e6));
  zbuf::daemon::ServerConfig config;
  config.socketPath = socket.empty() ? zbuf::ipc::defaultSocketPath() : socket;
  char* end = nullptr;
  const unsigned long m = std::strtoul(mode.c_str(), &end, 8);
  if (end == mode.c_str() || *end != '\0' || m > 07777) {
    std::fprintf(stderr, "zbufd: --mode %s: not an octal mode\n", mode.c_str());
    return 2;
  }
  config.mode = static_cast<mode_t>(m);
  if (!group.empty()) {
    const struct group* g = ::getgrnam(group.c_str());
    if (g == nullptr) {
      std::fprintf(stderr, "zbufd: --group %s: no such group\n", group.c_str());
      return 2;
    }
    config.group = g->gr_gid;
    if (config.mode == 0600) {
      config.mode = 0660;
    }
  }
  config.listening = inheritedSocket();
  config.limits = limits;
  if (config.listening.isValid()) {
    // The path is the socket's own (systemd's ListenSequentialPacket=), whatever --socket says.
    sockaddr_un addr{};
    socklen_t len = sizeof(addr);
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockaddr API
    if (::getsockname(config.listening.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
        addr.sun_family == AF_UNIX && addr.sun_path[0] != '\0') {
      config.socketPath = addr.sun_path;
    }
  }
  // The signals are taken by sigwait below, in this thread only.
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGTERM);
  sigaddset(&stopSignals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);

  board.pattern = *zbuf::parsePatternKind(pattern);  // checked by the parser
  board.link = *zbuf::parseLinkSpeed(link);
  auto context = zbuf::uapi::Context::create();
  std::shared_ptr<zbuf::Board> hardware;
  if (!noBoard) {
    auto b = zbuf::Board::create(*context, board);
    if (!b.ok()) {
      std::fprintf(stderr, "zbufd: %s\n", b.error().describe().c_str());
      return 1;
    }
    hardware = std::move(*b);
  }
  config.context = context;
  auto server = zbuf::daemon::Server::create(std::move(config));
  if (!server.ok()) {
    std::fprintf(stderr, "zbufd: %s\n", server.error().describe().c_str());
    return 1;
  }
  std::fprintf(stderr, "zbufd: listening on %s\n", (*server)->socketPath().c_str());
  std::unique_ptr<zbuf::daemon::IiodServer> iiod;
  if (iiodPort) {
    zbuf::daemon::IiodConfig iiodConfig;
    iiodConfig.port = *iiodPort;
    iiodConfig.listing = [weak = std::weak_ptr<zbuf::uapi::Context>(context)] {
      auto c = weak.lock();
      return c ? c->nodes() : std::vector<std::string>{};
    };
    auto i = zbuf::daemon::IiodServer::create(*context, std::move(iiodConfig));
    if (!i.ok()) {
      std::fprintf(stderr, "zbufd: --iiod-port: %s\n", i.error().describe().c_str());
      return 1;
    }
    iiod = std::move(*i);
    std::fprintf(stderr, "zbufd: iiod on 127.0.0.1:%u\n", static_cast<unsigned>(iiod->port()));
  }
  int sig = 0;
  sigwait(&stopSignals, &sig);
  std::fprintf(stderr, "zbufd: %s: stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  if (iiod) {
    iiod->stop();
    iiod.reset();
  }
  (*server)->stop();
  server->reset();
  hardware.reset();  // in-flight transfers end (ECANCELED) and their fences signal
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zbufd: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "zbufd: unknown error\n");
  }
  return 1;
}
