// zbuf stream: the main job. Runs the Pipeline in fileio and/or dmabuf mode and prints the
// results side by side (or as one JSON document with --json).
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "command.h"
#include "zbuf/base/sys.h"
#include "zbuf/stream/pipeline.h"

namespace zbuf::cli {
namespace {

struct StreamOptions {
  std::string path = "iio-to-usb";
  std::string mode = "both";
  std::uint64_t blockSize = 1 << 20;
  unsigned blocks = 4;
  std::optional<double> seconds;
  std::uint64_t bytes = 0;
  bool benchmark = false;
  std::uint64_t rate = 0;
  unsigned channels = 4;
  std::string link = "unlimited";
  std::string pattern = "ramp";
  bool json = false;
  std::uint64_t failTransfer = 0;
  int failErrno = EIO;
  std::string coherency = "coherent";
  bool checkCpuAccess = false;
};

// The running pipeline, for the SIGINT handler (which only does an atomic store).
std::atomic<Pipeline*> gActive{nullptr};
std::atomic<bool> gInterrupted{false};

void onSigint(int /*sig*/) {
  gInterrupted.store(true, std::memory_order_relaxed);
  if (Pipeline* p = gActive.load(std::memory_order_relaxed)) {
    p->requestStop();
  }
}

class SigintScope {
 public:
  SigintScope() {
    struct sigaction sa {};
    sa.sa_handler = &onSigint;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_);
  }
  ~SigintScope() { ::sigaction(SIGINT, &old_, nullptr); }
  SigintScope(const SigintScope&) = delete;
  SigintScope& operator=(const SigintScope&) = delete;

 private:
  struct sigaction old_ {};
};

// A live progress line on a terminal, at most 4 updates a second.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}
  void update(const char* mode, const StreamProgress& p) {
    if (!enabled_) {
      return;
    }
    const std::uint64_t now = sys::monotonicNs();
    if (now - lastNs_ < 250'000'000ULL) {
      return;
    }
    lastNs_ = now;
    const double mib = static_cast<double>(p.bytes) / (1024.0 * 1024.0);
    std::fputs(fmt::format("\r\033[2K  {:<7} {:>9.1f} MiB/s  {:>11}  {:5.1f} s", mode,
                           p.seconds > 0 ? mib / p.seconds : 0.0, formatBytes(p.bytes), p.seconds)
                   .c_str(),
               stdout);
    std::fflush(stdout);
  }
  void clear() {
    if (enabled_ && lastNs_ != 0) {
      std::fputs("\r\033[2K", stdout);
      std::fflush(stdout);
    }
    lastNs_ = 0;
  }

 private:
  bool enabled_;
  std::uint64_t lastNs_ = 0;
};

nlohmann::json toJson(const StreamResult& r) {
  return {{"mode", toString(r.mode)},
          {"path", toString(r.path)},
          {"block_bytes", r.blockBytes},
          {"blocks", r.blocks},
          {"bytes", r.bytes},
          {"seconds", r.seconds},
          {"mib_per_s", r.mibPerS},
          {"app_cpu_s_per_gib", r.appCpuSPerGib},
          {"hw_cpu_s_per_gib", r.hwCpuSPerGib},
          {"verified_bytes", r.verifiedBytes},
          {"mismatches", r.mismatches},
          {"errors", r.errors},
          {"error_messages", r.errorMessages},
          {"stopped", r.stopped}};
}

void printTable(const StreamConfig& c, const std::vector<StreamResult>& runs,
                std::optional<double> speedup) {
  const std::string data =
      c.benchmark ? "benchmark mode (data untouched)"
                  : fmt::format("data mode ({} pattern, every byte checked)", toString(c.pattern));
  fmt::print("zbuf stream: {}, {} blocks x {}, {}\n", toString(c.path), formatBytes(c.blockBytes),
             c.blocks, data);
  fmt::print("  {} channels x {}-bit, rate {}, link {}\n\n", c.format.channels,
             c.format.bytesPerSample * 8,
             c.sampleRate == 0 ? std::string("unlimited") : fmt::format("{} S/s", c.sampleRate),
             toString(c.link));
  auto row = [&](const char* name, auto&& cell) {
    std::string line = fmt::format("  {:<22}", name);
    for (const auto& r : runs) {
      line += fmt::format("{:>16}", cell(r));
    }
    fmt::print("{}\n", line);
  };
  row("", [](const StreamResult& r) { return std::string(toString(r.mode)); });
  row("throughput (MiB/s)", [](const StreamResult& r) { return fmt::format("{:.1f}", r.mibPerS); });
  row("app CPU (s/GiB)",
      [](const StreamResult& r) { return fmt::format("{:.4f}", r.appCpuSPerGib); });
  row("hw CPU (s/GiB)",
      [](const StreamResult& r) { return fmt::format("{:.4f}", r.hwCpuSPerGib); });
  row("moved", [](const StreamResult& r) { return formatBytes(r.bytes); });
  row("blocks", [](const StreamResult& r) {
    return fmt::format("{}", r.blockBytes != 0 ? r.bytes / r.blockBytes : 0);
  });
  row("seconds", [](const StreamResult& r) { return fmt::format("{:.2f}", r.seconds); });
  row("verified", [](const StreamResult& r) { return formatBytes(r.verifiedBytes); });
  row("mismatched bytes", [](const StreamResult& r) { return fmt::format("{}", r.mismatches); });
  row("failed transfers", [](const StreamResult& r) { return fmt::format("{}", r.errors); });
  if (speedup) {
    const auto& f = runs[0];
    const auto& d = runs[1];
    fmt::print("\n  zero-copy speed-up: {:.2f}x throughput", *speedup);
    if (d.appCpuSPerGib > 0) {
      fmt::print(", {:.1f}x less application CPU per GiB", f.appCpuSPerGib / d.appCpuSPerGib);
    }
    fmt::print("\n  (the IIO and FunctionFS cover letters measured 2.16x: 127 vs 274 MiB/s)\n");
  }
}

int runStream(const StreamOptions& o) {
  StreamConfig c;
  auto path = parseStreamPath(o.path);
  auto link = parseLinkSpeed(o.link);
  auto pattern = parsePatternKind(o.pattern);
  std::vector<StreamMode> modes;
  if (o.mode == "both") {
    modes = {StreamMode::Fileio, StreamMode::Dmabuf};
  } else if (auto m = parseStreamMode(o.mode)) {
    modes = {*m};
  } else {
    fmt::print(stderr, "zbuf stream: {}\n", m.error().message());
    return kExitUsage;
  }
  for (const Error* e : {path ? nullptr : &path.error(), link ? nullptr : &link.error(),
                         pattern ? nullptr : &pattern.error()}) {
    if (e != nullptr) {
      fmt::print(stderr, "zbuf stream: {}\n", e->message());
      return kExitUsage;
    }
  }
  c.path = *path;
  c.link = *link;
  c.pattern = *pattern;
  c.blockBytes = o.blockSize;
  c.blocks = o.blocks;
  c.bytes = o.bytes;
  if (o.seconds) {
    c.duration = std::chrono::nanoseconds(static_cast<std::int64_t>(*o.seconds * 1e9));
  }
  c.benchmark = o.benchmark;
  c.sampleRate = o.rate;
  c.format.channels = o.channels;
  c.failTransfer = o.failTransfer;
  c.failErrno = o.failErrno;
  auto coherency = parseStreamCoherency(o.coherency);
  if (!coherency) {
    fmt::print(stderr, "zbuf stream: --coherency: {}\n", coherency.error().message());
    return kExitUsage;
  }
  c.coherency = *coherency;
  c.checkCpuAccess = o.checkCpuAccess;
  auto pipeline = Pipeline::create(c);
  if (!pipeline) {
    fmt::print(stderr, "zbuf stream: {}\n",
               pipeline.error().message().empty() ? pipeline.error().describe()
                                                  : pipeline.error().message());
    return kExitUsage;
  }

  const bool tty = ::isatty(STDOUT_FILENO) == 1 && !o.json;
  ProgressLine progress(tty);
  std::vector<StreamResult> runs;
  int status = kExitOk;
  {
    const SigintScope sigint;
    gActive.store(&*pipeline);
    for (StreamMode mode : modes) {
      if (gInterrupted.load()) {
        break;
      }
      auto r =
          pipeline->run(mode, [&](const StreamProgress& p) { progress.update(toString(mode), p); });
      progress.clear();
      if (!r) {
        fmt::print(stderr, "zbuf stream: {} mode failed: {}\n", toString(mode),
                   r.error().describe());
        status = kExitFailed;
        break;
      }
      runs.push_back(std::move(*r));
    }
    gActive.store(nullptr);
  }

  std::optional<double> speedup;
  if (runs.size() == 2 && runs[0].mibPerS > 0) {
    speedup = runs[1].mibPerS / runs[0].mibPerS;
  }
  if (o.json) {
    nlohmann::json doc;
    doc["runs"] = nlohmann::json::array();
    for (const auto& r : runs) {
      doc["runs"].push_back(toJson(r));
    }
    doc["speedup"] = speedup ? nlohmann::json(*speedup) : nlohmann::json(nullptr);
    doc["interrupted"] = gInterrupted.load();
    fmt::print("{}\n", doc.dump(2));
  } else if (!runs.empty()) {
    printTable(c, runs, speedup);
  }

  for (const auto& r : runs) {
    if (r.mismatches != 0) {
      fmt::print(stderr, "zbuf stream: {}: {} bytes differed from the {} pattern\n",
                 toString(r.mode), r.mismatches, toString(c.pattern));
      status = kExitFailed;
    }
    if (r.errors != 0) {
      fmt::print(stderr, "zbuf stream: {}: {} transfers failed{}{}\n", toString(r.mode), r.errors,
                 r.errorMessages.empty() ? "" : ": ",
                 r.errorMessages.empty() ? "" : r.errorMessages.front());
      status = kExitFailed;
    }
  }
  if (gInterrupted.load()) {
    fmt::print(stderr, "zbuf stream: interrupted; the results above cover the run so far\n");
    return status == kExitOk ? kExitInterrupted : status;
  }
  return status;
}

}  // namespace

void addStreamCommand(CLI::App& app, Runner& runner) {
  auto opts = std::make_shared<StreamOptions>();
  CLI::App* cmd = app.add_subcommand(
      "stream",
      "Stream an emulated ADC into an emulated USB endpoint (or the other paths) through the "
      "copying fileio path and zero-copy, check every byte, and compare");
  cmd->add_option("--path", opts->path, "iio-to-usb | iio-to-app | usb-to-dac")
      ->check(CLI::IsMember({"iio-to-usb", "iio-to-app", "usb-to-dac"}))
      ->capture_default_str();
  cmd->add_option("--mode", opts->mode, "fileio | dmabuf | both")
      ->check(CLI::IsMember({"fileio", "dmabuf", "both"}))
      ->capture_default_str();
  cmd->add_option_function<std::string>("--block-size", sizeSetter(opts->blockSize, "--block-size"),
                                        "block size, with K/M/G suffixes [1M]");
  cmd->add_option("--blocks", opts->blocks, "buffers in flight")
      ->check(CLI::Range(1U, 64U))
      ->capture_default_str();
  auto* seconds = cmd->add_option("--seconds", opts->seconds, "run time per mode [5]")
                      ->check(CLI::PositiveNumber);
  auto* bytes = cmd->add_option_function<std::string>("--bytes", sizeSetter(opts->bytes, "--bytes"),
                                                      "stop each mode after this many bytes");
  seconds->excludes(bytes);
  cmd->add_flag("--benchmark", opts->benchmark,
                "data untouched by the application, not generated or checked by the hardware "
                "(like iio_rwdev -B)");
  cmd->add_option("--rate", opts->rate, "ADC/DAC samples per second per channel [unlimited]")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--channels", opts->channels, "interleaved 16-bit channels")
      ->check(CLI::Range(1U, 16U))
      ->capture_default_str();
  cmd->add_option("--link", opts->link, "usb2 | usb3 | unlimited")
      ->check(CLI::IsMember({"usb2", "usb3", "unlimited"}))
      ->capture_default_str();
  cmd->add_option("--pattern", opts->pattern, "ramp | prbs")
      ->check(CLI::IsMember({"ramp", "prbs"}))
      ->capture_default_str();
  cmd->add_flag("--json", opts->json, "print one JSON document instead of the table");
  cmd->add_option("--coherency", opts->coherency,
                  "coherent | non-coherent (every device), or per device: "
                  "adc=non-coherent,usb=coherent (devices adc, dac, usb; docs/coherency.md)")
      ->capture_default_str();
  cmd->add_flag("--check-cpu-access", opts->checkCpuAccess,
                "the application's CPU mappings of the buffers fault outside SYNC brackets, "
                "reported with the buffer and offset (also: ZBUF_CHECK_CPU_ACCESS=1)");
  cmd->add_option("--fail-transfer", opts->failTransfer,
                  "fault injection: fail the Nth transfer of each mode (1-based)")
      ->check(CLI::PositiveNumber)
      ->group("Fault injection");
  cmd->add_option("--fail-errno", opts->failErrno, "errno for --fail-transfer [EIO = 5]")
      ->check(CLI::Range(1, 4095))
      ->group("Fault injection");
  cmd->callback([opts, &runner] { runner = [opts] { return runStream(*opts); }; });
}

}  // namespace zbuf::cli
