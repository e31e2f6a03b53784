// zbuf virtio-video: seeds/004's use case run and measured (stream/virtio_video.h). A decoder
// exports a pool of frame buffers as virtio buffers, a display imports them by UUID and checks
// every frame; the set-up is timed with the UUIDs' registration blocking and asynchronous,
// alternating, and the table gives their medians and the ratio.
//
// Embedded, the board is built for the run (--latency sets its host's round trip) and the two
// devices' sides run on two threads. With --daemon the devices are zbufd's and the display
// side is a second process (forked before any connection), each side with its own connection,
// as a decoder process and a compositor would be.
#include "zbuf/stream/virtio_video.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "zbuf/base/sys.h"
#include "zbuf/devices/board.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/uapi/context.h"

namespace zbuf::cli {
namespace {

struct VirtioVideoOptions {
  std::uint64_t frames = 120;
  std::uint64_t buffers = 8;
  std::uint64_t frameBytes = 1U << 20;
  std::string registration = "both";
  double latencyMs = 2;
  std::uint64_t repeat = 5;
  bool json = false;
  std::string daemon;
  const CLI::Option* daemonOpt = nullptr;
  const CLI::Option* latencyOpt = nullptr;
};

struct Run {
  unsigned repetition = 0;
  VirtioVideoResult result;
};

nlohmann::json toJson(const Stats& s) {
  return {{"median", s.median}, {"min", s.min}, {"max", s.max}};
}

std::string ms(double seconds) {
  return fmt::format("{:.2f} ms", seconds * 1e3);
}

// The display side in a process of its own: connects, serves `runs` runs, exits.
[[noreturn]] void displayProcess(const std::string& socket, int channel, std::size_t runs) {
  auto remote = ipc::RemoteContext::connect(socket);
  if (!remote.ok()) {
    fmt::print(stderr, "zbuf virtio-video: the display process: {}\n", remote.error().describe());
    ::_exit(kExitFailed);
  }
  for (std::size_t i = 0; i < runs; ++i) {
    if (auto r = runVirtioVideoDisplay(**remote, channel); !r.ok()) {
      fmt::print(stderr, "zbuf virtio-video: the display process: {}\n", r.error().describe());
      ::_exit(kExitFailed);
    }
  }
  remote->reset();
  ::_exit(kExitOk);
}

int runCommand(const VirtioVideoOptions& o) {
  std::vector<Registration> modes;
  if (o.registration == "both") {
    modes = {Registration::Blocking, Registration::Async};
  } else if (auto r = parseRegistration(o.registration); r.ok()) {
    modes = {*r};
  } else {
    fmt::print(stderr, "zbuf virtio-video: --registration: {}\n", r.error().message());
    return kExitUsage;
  }
  const bool daemon = o.daemonOpt->count() != 0;
  if (daemon && o.latencyOpt->count() != 0) {
    fmt::print(stderr,
               "zbuf virtio-video: --latency configures the board's host, which is zbufd's with "
               "--daemon (zbufd --virtio-latency)\n");
    return kExitUsage;
  }
  if (auto r =
          checkMemory(o.frameBytes * o.buffers,
                      fmt::format("{} frame buffers of {}", o.buffers, formatBytes(o.frameBytes)));
      !r.ok()) {
    fmt::print(stderr, "zbuf virtio-video: {}\n", r.error().message());
    return kExitUsage;
  }
  VirtioVideoConfig config;
  config.frames = o.frames;
  config.buffers = static_cast<unsigned>(o.buffers);
  config.frameBytes = o.frameBytes;
  const std::size_t runs = modes.size() * o.repeat;

  // The kernel: a board of this run's, or zbufd with the display in a second process.
  std::shared_ptr<uapi::Context> context;
  std::shared_ptr<Board> board;
  std::shared_ptr<ipc::RemoteContext> remote;
  UniqueFd channel;
  pid_t child = -1;
  if (daemon) {
    auto pair = sys::socketpair(SOCK_SEQPACKET);
    if (!pair.ok()) {
      fmt::print(stderr, "zbuf virtio-video: {}\n", pair.error().describe());
      return kExitFailed;
    }
    child = ::fork();
    if (child < 0) {
      fmt::print(stderr, "zbuf virtio-video: fork: {}\n", std::strerror(errno));
      return kExitFailed;
    }
    if (child == 0) {
      pair->first.reset();
      displayProcess(o.daemon, pair->second.get(), runs);
    }
    pair->second.reset();
    channel = std::move(pair->first);
    auto r = ipc::RemoteContext::connect(o.daemon);
    if (!r.ok()) {
      fmt::print(stderr, "zbuf virtio-video: --daemon: {}\n", r.error().describe());
      channel.reset();  // the display process ends on its own
      ::waitpid(child, nullptr, 0);
      return kExitFailed;
    }
    remote = std::move(*r);
  } else {
    context = uapi::Context::create();
    BoardConfig bc;
    bc.virtioRegistrationLatency =
        std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(o.latencyMs * 1e6)));
    auto b = Board::create(*context, bc);
    if (!b.ok()) {
      fmt::print(stderr, "zbuf virtio-video: {}\n", b.error().describe());
      return kExitFailed;
    }
    board = std::move(*b);
  }

  std::vector<Run> done;
  int status = kExitOk;
  for (unsigned rep = 1; rep <= o.repeat && status == kExitOk; ++rep) {
    for (Registration mode : modes) {
      config.registration = mode;
      auto r = daemon ? runVirtioVideoDecoder(*remote, channel.get(), config)
                      : runVirtioVideo(*context, config);
      if (!r.ok()) {
        fmt::print(stderr, "zbuf virtio-video: {} registration: {}\n", toString(mode),
                   r.error().describe());
        status = kExitFailed;
        break;
      }
      done.push_back({rep, *r});
    }
  }
  if (daemon) {
    channel.reset();
    int childStatus = 0;
    if (::waitpid(child, &childStatus, 0) != child || !WIFEXITED(childStatus) ||
        (WEXITSTATUS(childStatus) != 0 && status == kExitOk)) {
      status = kExitFailed;
    }
  }

  // The checks: every frame shown, every byte the frame's.
  std::uint64_t mismatches = 0;
  std::uint64_t shortRuns = 0;
  for (const Run& run : done) {
    mismatches += run.result.mismatches;
    shortRuns += run.result.frames != o.frames ? 1 : 0;
  }
  const std::uint64_t latencyNs = done.empty() ? 0 : done.front().result.latencyNs;
  std::map<Registration, std::vector<double>> setup;
  std::map<Registration, std::vector<double>> fps;
  for (const Run& run : done) {
    setup[run.result.registration].push_back(run.result.setupSeconds);
    fps[run.result.registration].push_back(static_cast<double>(run.result.frames) /
                                           run.result.streamSeconds);
  }
  const bool compared = setup.size() == 2;
  const Stats blocking = stats(setup[Registration::Blocking]);
  const Stats async = stats(setup[Registration::Async]);

  if (o.json) {
    nlohmann::json doc;
    doc["command"] = "virtio-video";
    doc["version"] = kVersion;
    doc["settings"] = {{"frames", o.frames},
                       {"buffers", o.buffers},
                       {"frame_bytes", o.frameBytes},
                       {"registration_latency_ns", latencyNs},
                       {"repeat", o.repeat},
                       {"processes", daemon ? 2 : 1},
                       {"daemon", remote ? remote->socketPath() : ""}};
    doc["runs"] = nlohmann::json::array();
    for (const Run& run : done) {
      const VirtioVideoResult& r = run.result;
      doc["runs"].push_back({{"registration", toString(r.registration)},
                             {"repetition", run.repetition},
                             {"setup_seconds", r.setupSeconds},
                             {"stream_seconds", r.streamSeconds},
                             {"frames", r.frames},
                             {"verified_bytes", r.verifiedBytes},
                             {"mismatches", r.mismatches}});
    }
    for (const auto& [mode, v] : setup) {
      doc["summary"][toString(mode)] = {{"setup_seconds", toJson(stats(v))},
                                        {"frames_per_second", toJson(stats(fps[mode]))}};
    }
    if (compared && async.median > 0) {
      doc["summary"]["setup_blocking_over_async"] = blocking.median / async.median;
    }
    doc["ok"] = status == kExitOk && mismatches == 0 && shortRuns == 0;
    fmt::print("{}\n", doc.dump(2));
  } else {
    fmt::print(
        "zbuf virtio-video: {} frames of {} through {} buffers, decoder -> display by "
        "UUID{}; host round trip {}\n",
        o.frames, formatBytes(o.frameBytes), o.buffers, daemon ? " (two processes, zbufd)" : "",
        ms(static_cast<double>(latencyNs) * 1e-9));
    fmt::print("{:<10} {:>4} {:>12} {:>8} {:>10} {:>12} {:>11}\n", "register", "rep", "set-up",
               "frames", "frames/s", "verified", "mismatches");
    for (const Run& run : done) {
      const VirtioVideoResult& r = run.result;
      fmt::print("{:<10} {:>4} {:>12} {:>8} {:>10.0f} {:>12} {:>11}\n", toString(r.registration),
                 run.repetition, ms(r.setupSeconds), r.frames,
                 static_cast<double>(r.frames) / r.streamSeconds, formatBytes(r.verifiedBytes),
                 r.mismatches);
    }
    for (const auto& [mode, v] : setup) {
      const Stats s = stats(v);
      fmt::print("set-up with {} registration: median {} [{} .. {}] of {}\n", toString(mode),
                 ms(s.median), ms(s.min), ms(s.max), v.size());
    }
    if (compared && async.median > 0) {
      fmt::print(
          "asynchronous registration sets {} buffers up {:.2f}x faster than blocking "
          "(medians)\n",
          o.buffers, blocking.median / async.median);
    }
  }
  if (status != kExitOk) {
    return status;
  }
  if (mismatches != 0 || shortRuns != 0) {
    fmt::print(stderr, "zbuf virtio-video: FAILED: {} mismatched words, {} runs short of frames\n",
               mismatches, shortRuns);
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace

void addVirtioVideoCommand(CLI::App& app, Runner& runner) {
  auto opts = std::make_shared<VirtioVideoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "virtio-video",
      "Share frames by UUID between a virtio video decoder and a display, and time the set-up "
      "with blocking against asynchronous UUID registration");
  cmd->add_option("-n,--frames", opts->frames, "frames to decode and show")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 32))
      ->capture_default_str();
  cmd->add_option("--buffers", opts->buffers, "frame buffers in the pool (each one a UUID)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option_function<std::string>("--frame-size",
                                        sizeSetter(opts->frameBytes, "--frame-size"),
                                        "bytes per frame (K, M, G suffixes) [1M]")
      ->type_name("SIZE");
  cmd->add_option("--registration", opts->registration, "async | blocking | both (alternating)")
      ->check(CLI::IsMember({"async", "blocking", "both"}))
      ->capture_default_str();
  opts->latencyOpt =
      cmd->add_option("--latency", opts->latencyMs, "ms the host takes to register a UUID")
          ->check(CLI::Range(0.0, 10000.0))
          ->capture_default_str();
  cmd->add_option("--repeat", opts->repeat, "repetitions of each registration mode")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_flag("-J,--json", opts->json, "print JSON instead of the table");
  opts->daemonOpt = cmd->add_option("--daemon", opts->daemon,
                                    "use zbufd's devices, the display in a second process "
                                    "(SOCKET: $ZBUF_SOCKET, else the default path)")
                        ->expected(0, 1)
                        ->type_name("[SOCKET]");
  cmd->callback([opts, &runner] { runner = [opts] { return runCommand(*opts); }; });
}

}  // namespace zbuf::cli
