// InProcessDaemon: zbufd's server started in the test process on a temporary socket, serving a
// given context, with one connected client (ipc::RemoteContext). Stops the server and removes
// the socket's directory when it goes. For tests of the daemon that need no separate process
// (tests/daemon/zbufd_process_test.cpp starts a real zbufd).
//
//   auto d = testing_support::InProcessDaemon::start(ctx);   // ASSERT_NO_FATAL_FAILURE around
//   d->client->open(...);
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "zbuf/daemon/server.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/uapi/context.h"

namespace zbuf::testing_support {

class InProcessDaemon {
 public:
  // The server and its client, or nullptr after a failed assertion.
  static std::unique_ptr<InProcessDaemon> start(std::shared_ptr<uapi::Context> context,
                                                daemon::ClientLimits limits = {}) {
    static std::atomic<int> counter{0};
    auto d = std::unique_ptr<InProcessDaemon>(new InProcessDaemon);
    d->dir = std::filesystem::temp_directory_path() /
             ("zbufd-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    daemon::ServerConfig config;
    config.socketPath = (d->dir / "zbufd.sock").string();
    config.context = std::move(context);
    config.limits = limits;
    auto s = daemon::Server::create(std::move(config));
    EXPECT_TRUE(s.ok()) << s.error().describe();
    if (!s.ok()) {
      return nullptr;
    }
    d->server = std::move(*s);
    auto remote = ipc::RemoteContext::connect(d->server->socketPath());
    EXPECT_TRUE(remote.ok()) << remote.error().describe();
    if (!remote.ok()) {
      return nullptr;
    }
    d->client = std::move(*remote);
    return d;
  }
  ~InProcessDaemon() {
    client.reset();
    if (server) {
      server->stop();
      EXPECT_FALSE(std::filesystem::exists(server->socketPath()));
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  InProcessDaemon(const InProcessDaemon&) = delete;
  InProcessDaemon& operator=(const InProcessDaemon&) = delete;

  std::filesystem::path dir;
  std::unique_ptr<daemon::Server> server;
  std::shared_ptr<ipc::RemoteContext> client;

 private:
  InProcessDaemon() = default;
};

}  // namespace zbuf::testing_support
