// zbuf stream: the main job. Runs the Pipeline in fileio and/or dmabuf mode and prints the
// results side by side (or as one JSON document with --json).
#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "command.h"
#include "output.h"
#include "stream_report.h"
#include "zbuf/base/hw_thread.h"
#include "zbuf/base/sys.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/stream/pipeline.h"
#include "zbuf/uapi/backend.h"

namespace zbuf::cli {
namespace {

struct StreamOptions {
  std::string path = "iio-to-usb";
  std::string mode = "both";
  std::uint64_t blockSize = 1 << 20;
  std::uint64_t bufferSamples = 0;  // -b: block size in samples of the channel set
  std::uint64_t blocks = 4;
  std::uint64_t batch = 0;  // 0: automatic
  double seconds = 5;
  std::uint64_t bytes = 0;
  std::uint64_t samples = 0;  // -s: stop after this many samples of the channel set
  bool benchmark = false;
  std::uint64_t rate = 0;
  std::uint64_t channels = 4;
  std::string link = "unlimited";
  std::string pattern = "ramp";
  bool json = false;
  std::string format = "table";
  double interval = 0;
  std::uint64_t repeat = 1;
  std::uint64_t failTransfer = 0;
  std::uint64_t failErrno = EIO;
  std::string coherency = "coherent";
  bool checkCpuAccess = false;
  std::string output;    // --output FILE|-: the received samples
  std::string affinity;  // --affinity APP[:HW]
  std::string daemon;    // --daemon [SOCKET]: the socket ("" with the flag alone: the default)
  std::string backend = "emulated";  // --backend
  // Set by the parser, to tell a flag given from its default.
  const CLI::Option* daemonOpt = nullptr;
  std::vector<const CLI::Option*> boardOpts;  // what configures a board built for the run
  const CLI::Option* linkOpt = nullptr;
  const CLI::Option* patternOpt = nullptr;
  const CLI::Option* intervalOpt = nullptr;
  const CLI::Option* formatOpt = nullptr;
};

constexpr double kMaxSeconds = 1e7;  // 115 days: the nanosecond count stays far from 2^63
// What a run allocates, in blocks: the blocks in flight, the IIO fileio ring (as deep as the
// blocks in flight) and, beside them, the application's copy block and a USB request buffer.
constexpr std::uint64_t kExtraBlocks = 2;

// The running pipeline, for the signal handler (which only does atomic operations).
std::atomic<Pipeline*> gActive{nullptr};
std::atomic<int> gSignal{0};  // the first SIGINT, SIGTERM or SIGHUP
std::atomic<bool> gInterrupted{false};

std::atomic<std::int64_t> gFirstSignalNs{0};
// The --output temporary file, for the second signal's _exit (which must not leave it behind).
std::atomic<const char*> gTemporaryOutput{nullptr};

std::int64_t monotonicNowNs() {  // async-signal-safe (clock_gettime)
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// SIGINT, SIGTERM, SIGHUP: the first stops the run (the results so far are printed, the exit
// status is 128 + the signal); a second one exits at once. "Second" means 0.2 s or more
// later: timeout(1) and a terminal's process-group kill can deliver one request twice.
void onStopSignal(int sig) {
  const std::int64_t now = monotonicNowNs();
  std::int64_t first = 0;
  if (!gFirstSignalNs.compare_exchange_strong(first, now)) {
    if (now - first >= 200'000'000) {
      if (const char* tmp = gTemporaryOutput.load(); tmp != nullptr) {
        ::unlink(tmp);  // async-signal-safe
      }
      ::_exit(128 + sig);
    }
    return;
  }
  gSignal.store(sig);
  gInterrupted.store(true);
  if (Pipeline* p = gActive.load(std::memory_order_relaxed)) {
    p->requestStop();
  }
}

class StopSignalScope {
 public:
  StopSignalScope() {
    struct sigaction sa {};
    sa.sa_handler = &onStopSignal;
    sigemptyset(&sa.sa_mask);
    for (std::size_t i = 0; i < kSignals.size(); ++i) {
      ::sigaction(kSignals[i], &sa, &old_[i]);
    }
  }
  ~StopSignalScope() {
    for (std::size_t i = 0; i < kSignals.size(); ++i) {
      ::sigaction(kSignals[i], &old_[i], nullptr);
    }
  }
  StopSignalScope(const StopSignalScope&) = delete;
  StopSignalScope& operator=(const StopSignalScope&) = delete;

 private:
  static constexpr std::array<int, 3> kSignals{SIGINT, SIGTERM, SIGHUP};
  std::array<struct sigaction, 3> old_{};
};

// Usage errors the parser cannot see: flags that do not apply to the path or mode, products
// that overflow, and what the machine cannot back. Returns the message, or "".
std::string checkApplicable(const StreamOptions& o, const StreamConfig& c) {
  if (o.linkOpt->count() != 0 && c.path == StreamPath::IioToApp) {
    return "--link applies to the USB paths (iio-to-usb, usb-to-dac), not iio-to-app";
  }
  if (o.json && o.formatOpt->count() != 0 && o.format != "json") {
    return fmt::format("--json and --format {} exclude each other", o.format);
  }
  if (o.intervalOpt->count() != 0 && o.interval != 0 && o.interval < 0.25) {
    return "--interval: at least 0.25 s (the pipeline reports progress 4 times a second), or "
           "0 for none";
  }
  if (o.batch != 0 && o.mode == "fileio") {
    return "--batch sets the zero-copy loop's wake-ups: it does not apply to --mode fileio";
  }
  // With --daemon the flag is refused as a board setting (below, naming the daemon).
  if (c.checkCpuAccess && o.daemonOpt->count() == 0 &&
      (c.path != StreamPath::IioToApp || o.mode == "fileio" || c.benchmark)) {
    return "--check-cpu-access checks the application's CPU access to the buffers it maps: "
           "--path iio-to-app in dmabuf mode, in data mode (elsewhere the application maps no "
           "buffer or touches none)";
  }
  if (o.patternOpt->count() != 0 && c.benchmark) {
    return "--pattern does not apply with --benchmark (no data is generated or checked)";
  }
  if (!o.output.empty()) {
    if (c.path != StreamPath::IioToApp) {
      return "--output writes the samples the application receives: --path iio-to-app only (on "
             "the USB paths they go to or come from the USB host)";
    }
    if (c.benchmark) {
      return "--output does not apply with --benchmark (the application does not touch the data)";
    }
    if (o.mode == "both" || o.repeat > 1) {
      return "--output writes the samples of one run: give --mode fileio or --mode dmabuf, "
             "without --repeat";
    }
  }
  const std::uint64_t frame = c.format.frameBytes();
  std::uint64_t product = 0;
  if (o.bufferSamples != 0 && __builtin_mul_overflow(o.bufferSamples, frame, &product)) {
    return fmt::format("--buffer-samples {} x {}-byte frames overflows 64 bits", o.bufferSamples,
                       frame);
  }
  if (o.samples != 0 && __builtin_mul_overflow(o.samples, frame, &product)) {
    return fmt::format("--samples {} x {}-byte frames overflows 64 bits", o.samples, frame);
  }
  if (c.sampleRate != 0 && __builtin_mul_overflow(c.sampleRate, frame, &product)) {
    return fmt::format("--rate {} x {}-byte frames overflows 64 bits (bytes per second)",
                       c.sampleRate, frame);
  }
  std::uint64_t need = 0;
  if (__builtin_mul_overflow(c.blockBytes, 2 * std::uint64_t{c.blocks} + kExtraBlocks, &need)) {
    need = std::numeric_limits<std::uint64_t>::max();
  }
  if (auto r =
          checkMemory(need, fmt::format("{} blocks of {}", c.blocks, formatBytes(c.blockBytes)));
      !r.ok()) {
    return r.error().message();
  }
  return "";
}

// Why a run moved nothing: the first block takes longer than the run.
std::string noBlockReason(const StreamConfig& c) {
  if (c.bytes == 0 && c.sampleRate != 0) {
    const double blockSeconds =
        static_cast<double>(c.blockBytes) /
        (static_cast<double>(c.sampleRate) * static_cast<double>(c.format.frameBytes()));
    return fmt::format(
        "one block of {} takes {:.3g} s at {} S/s; run longer (--seconds) or use smaller "
        "blocks (--block-size, --buffer-samples)",
        formatBytes(c.blockBytes), blockSeconds, c.sampleRate);
  }
  return "the run ended before the first block completed; run longer (--seconds) or use "
         "smaller blocks";
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
  c.format.channels = static_cast<unsigned>(o.channels);
  const std::uint64_t frame = c.format.frameBytes();
  c.blockBytes = o.bufferSamples != 0 ? o.bufferSamples * frame : o.blockSize;
  c.blocks = static_cast<unsigned>(o.blocks);
  c.batch = static_cast<unsigned>(o.batch);
  c.bytes = o.samples != 0 ? o.samples * frame : o.bytes;
  // parseSeconds bounds the value: the product stays far below 2^63 ns.
  c.duration = std::chrono::nanoseconds(std::llround(o.seconds * 1e9));
  c.benchmark = o.benchmark;
  c.sampleRate = o.rate;
  c.failTransfer = o.failTransfer;
  c.failErrno = static_cast<int>(o.failErrno);
  auto coherency = parseStreamCoherency(o.coherency);
  if (!coherency) {
    fmt::print(stderr, "zbuf stream: --coherency: {}\n", coherency.error().message());
    return kExitUsage;
  }
  c.coherency = *coherency;
  c.checkCpuAccess = o.checkCpuAccess;
  auto backend = uapi::parseBackend(o.backend);
  if (!backend) {
    fmt::print(stderr, "zbuf stream: --backend: {}\n", backend.error().message());
    return kExitUsage;
  }
  c.backend = *backend;
  if (const std::string why = checkApplicable(o, c); !why.empty()) {
    fmt::print(stderr, "zbuf stream: {}\n", why);
    return kExitUsage;
  }
  Affinity affinity;
  if (!o.affinity.empty()) {
    auto a = parseAffinity(o.affinity);
    if (a.ok()) {
      affinity = std::move(*a);
    }
    const Result<void> available = a.ok() ? checkAffinity(affinity) : Result<void>(a.error());
    if (!available.ok()) {
      fmt::print(stderr, "zbuf stream: {}\n", available.error().message());
      return kExitUsage;
    }
  }
  // The samples' file, made before the run so that an unwritable path fails at once. Its
  // writer stops the run on a write error (a full disk, a reader that went away).
  std::optional<OutputFile> output;
  std::optional<Error> outputError;
  Pipeline* running = nullptr;
  // With "-", the report (header, intervals, progress line, results) goes to standard error.
  if (auto r = openOutput(o.output, output); !r.ok()) {
    fmt::print(stderr, "zbuf stream: {}\n", r.error().message());
    return kExitFailed;
  }
  if (output) {
    gTemporaryOutput.store(output->temporaryPath());
    c.received = [&output, &outputError, &running](std::span<const std::byte> data) {
      if (outputError) {
        return;
      }
      if (auto r = output->write(data); !r.ok()) {
        outputError = r.error();
        gTemporaryOutput.store(nullptr);
        if (running != nullptr) {
          running->requestStop();
        }
      }
    };
  }
  // The application thread first (the threads it starts, the hardware's included, inherit its
  // CPUs), then the hardware threads, which pin themselves as they start.
  if (!affinity.app.empty()) {
    if (auto r = sys::setThreadAffinity(affinity.app); !r.ok()) {
      fmt::print(stderr, "zbuf stream: --affinity: {}\n", r.error().describe());
      return kExitFailed;
    }
  }
  HardwareThread::setAffinity(affinity.hw);
  std::shared_ptr<uapi::FdCalls> kernel;
  if (o.daemonOpt->count() != 0) {
    // The devices are zbufd's: what configures a board built for the run is its flags there.
    for (const CLI::Option* opt : o.boardOpts) {
      if (opt->count() != 0) {
        fmt::print(stderr,
                   "zbuf stream: {} configures the board, which is zbufd's with --daemon "
                   "(zbufd --help lists what it takes)\n",
                   opt->get_name());
        return kExitUsage;
      }
    }
    if (!affinity.hw.empty()) {
      fmt::print(stderr,
                 "zbuf stream: --affinity: the hardware threads are zbufd's with --daemon\n");
      return kExitUsage;
    }
    auto remote = ipc::RemoteContext::connect(o.daemon);
    if (!remote.ok()) {
      fmt::print(stderr, "zbuf stream: --daemon: {}\n", remote.error().describe());
      return kExitFailed;
    }
    kernel = std::move(*remote);
  }
  auto pipeline = Pipeline::create(c, kernel);
  if (!pipeline) {
    fmt::print(stderr, "zbuf stream: {}\n",
               pipeline.error().message().empty() ? pipeline.error().describe()
                                                  : pipeline.error().message());
    return kExitUsage;
  }

  const std::string format = o.json ? "json" : o.format;
  const bool table = format == "table";
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  StreamSettings settings;
  settings.config = pipeline->config();  // with --daemon, the daemon board's settings
  settings.modes = modes;
  settings.durationRun = c.bytes == 0;
  settings.seconds = o.seconds;
  settings.repeat = static_cast<unsigned>(o.repeat);
  settings.output = o.output;
  settings.affinityApp = formatCpuList(affinity.app);
  settings.affinityHw = formatCpuList(affinity.hw);
  if (auto* remote = dynamic_cast<ipc::RemoteContext*>(kernel.get()); remote != nullptr) {
    settings.daemon = remote->socketPath();
  }
  // iperf3's default: interval lines when stdout is a log, not a terminal (that has the
  // progress line); the JSON carries intervals of 1 s unless told otherwise.
  settings.interval = o.intervalOpt->count() != 0 ? o.interval : (tty && table ? 0.0 : 1.0);
  ProgressLine progress(tty && table);
  IntervalLog intervals(settings.interval, table);
  if (table) {
    printHeader(settings);
  }
  std::vector<StreamRun> runs;
  int status = kExitOk;
  {
    const StopSignalScope signals;
    gActive.store(&*pipeline);
    running = &*pipeline;
    for (unsigned rep = 1; rep <= settings.repeat && status == kExitOk; ++rep) {
      for (StreamMode mode : modes) {
        if (gInterrupted.load()) {
          break;
        }
        intervals.start(toString(mode));
        auto r = pipeline->run(mode, [&](const StreamProgress& p) {
          if (intervals.due(p)) {
            progress.clear();  // the interval line replaces it
            intervals.update(p);
          }
          progress.update(toString(mode), p);
        });
        progress.clear();
        if (!r) {
          fmt::print(stderr, "zbuf stream: {} mode failed: {}\n", toString(mode),
                     r.error().describe());
          status = kExitFailed;
          break;
        }
        StreamRun run;
        run.repetition = rep;
        run.intervals = intervals.finish(r->seconds, r->bytes);
        run.result = std::move(*r);
        runs.push_back(std::move(run));
      }
    }
    gActive.store(nullptr);
    running = nullptr;
  }

  if (format == "json") {
    fmt::print("{}\n", toJson(settings, runs, gInterrupted.load()).dump(2));
  } else if (format == "csv") {
    printCsv(runs);
  } else {
    printTable(settings, runs);
  }
  // The messages below go to stderr, unbuffered; with --output - the report is there too.
  std::fflush(stdout);

  for (const StreamRun& run : runs) {
    const StreamResult& r = run.result;
    if (r.bytes == 0 && !gInterrupted.load()) {
      fmt::print(stderr, "zbuf stream: {}: no block moved in {:.3g} s: {}\n", toString(r.mode),
                 r.seconds, noBlockReason(c));
      status = kExitFailed;
    }
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
  if (outputError) {
    fmt::print(stderr, "zbuf stream: {}; the run stopped there\n", outputError->message());
    status = kExitFailed;
  }
  if (output) {
    // A run that failed leaves no file (nor a half one); an interrupted run keeps the samples
    // it received, as iio_readdev does.
    gTemporaryOutput.store(nullptr);
    if (status != kExitOk) {
      if (!output->isStdout()) {
        fmt::print(stderr, "zbuf stream: --output {} not written: the run failed\n",
                   output->path());
      }
      output->abandon();
    } else if (auto r = output->commit(); !r.ok()) {
      fmt::print(stderr, "zbuf stream: {}\n", r.error().message());
      status = kExitFailed;
    }
  }
  if (gInterrupted.load()) {
    const int sig = gSignal.load();
    fmt::print(stderr, "zbuf stream: {}; the results above cover the run so far\n",
               sig == SIGINT    ? "interrupted"
               : sig == SIGTERM ? "terminated"
                                : "hung up");
    return status == kExitOk ? 128 + sig : status;
  }
  return status;
}

}  // namespace

void addStreamCommand(CLI::App& app, Runner& runner) {
  auto opts = std::make_shared<StreamOptions>();
  StreamOptions& o = *opts;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  CLI::App* cmd = app.add_subcommand(
      "stream",
      "Stream an emulated ADC into an emulated USB endpoint (or the other paths) through the "
      "copying fileio path and zero-copy, check every byte, and compare");
  cmd->add_option("--path", o.path, "iio-to-usb | iio-to-app | usb-to-dac")
      ->check(CLI::IsMember({"iio-to-usb", "iio-to-app", "usb-to-dac"}))
      ->capture_default_str();
  cmd->add_option("--mode", o.mode, "fileio | dmabuf | both")
      ->check(CLI::IsMember({"fileio", "dmabuf", "both"}))
      ->capture_default_str();
  auto* blockSize =
      cmd->add_option_function<std::string>("--block-size", sizeSetter(o.blockSize, "--block-size"),
                                            "block size in bytes, with K/M/G suffixes [1M]")
          ->type_name("SIZE");
  auto* bufferSamples =
      cmd->add_option_function<std::string>(
             "-b,--buffer-samples", countSetter(o.bufferSamples, "--buffer-samples", 1, kMax),
             "block size in samples of the channel set (iio_readdev -b)")
          ->type_name("N");
  blockSize->excludes(bufferSamples);
  cmd->add_option_function<std::string>("--blocks", countSetter(o.blocks, "--blocks", 1, 64),
                                        "buffers in flight (1..64) [4]")
      ->type_name("N");
  cmd->add_option_function<std::string>(
         "--batch", countSetter(o.batch, "--batch", 1, 64),
         "zero-copy: completed blocks per wake-up of the application (libiio's block queue; "
         "1: every block) [half of --blocks]")
      ->type_name("N");
  auto* seconds = cmd->add_option_function<std::string>(
                         "-t,--seconds", secondsSetter(o.seconds, "--seconds", kMaxSeconds),
                         "run time per mode, in seconds (iperf3 -t) [5]")
                      ->type_name("S");
  auto* bytes = cmd->add_option_function<std::string>("--bytes", sizeSetter(o.bytes, "--bytes"),
                                                      "stop each mode after this many bytes")
                    ->type_name("SIZE");
  auto* samples = cmd->add_option_function<std::string>(
                         "-s,--samples", countSetter(o.samples, "--samples", 1, kMax),
                         "stop each mode after this many samples of the "
                         "channel set (iio_readdev -s)")
                      ->type_name("N");
  seconds->excludes(bytes);
  seconds->excludes(samples);
  bytes->excludes(samples);
  o.boardOpts.push_back(
      cmd->add_flag("-B,--benchmark", o.benchmark,
                    "data untouched by the application, not generated or checked by the hardware "
                    "(iio_rwdev -B)"));
  o.boardOpts.push_back(
      cmd->add_option_function<std::string>("--rate", countSetter(o.rate, "--rate", 1, kMax),
                                            "ADC/DAC samples per second per channel [unlimited]")
          ->type_name("N"));
  o.boardOpts.push_back(cmd->add_option_function<std::string>(
                               "--channels", countSetter(o.channels, "--channels", 1, 16),
                               "interleaved 16-bit channels (1..16) [4]")
                            ->type_name("N"));
  o.linkOpt = cmd->add_option("--link", o.link, "USB paths: usb2 | usb3 | unlimited")
                  ->check(CLI::IsMember({"usb2", "usb3", "unlimited"}))
                  ->capture_default_str();
  o.patternOpt = cmd->add_option("--pattern", o.pattern, "data mode: ramp | prbs")
                     ->check(CLI::IsMember({"ramp", "prbs"}))
                     ->capture_default_str();
  cmd->add_flag("-J,--json", o.json,
                "print one JSON document instead of the table (iperf3 -J): the settings, "
                "version, host, every run with its intervals, medians");
  o.formatOpt = cmd->add_option("--format", o.format, "table | json | csv (one row per run)")
                    ->check(CLI::IsMember({"table", "json", "csv"}))
                    ->capture_default_str();
  o.intervalOpt = cmd->add_option_function<std::string>(
                         "-i,--interval",
                         [&o](const std::string& text) {
                           if (text == "0") {
                             o.interval = 0;
                             return;
                           }
                           secondsSetter(o.interval, "--interval", kMaxSeconds)(text);
                         },
                         "print throughput every S seconds (iperf3 -i; 0: never) [1 when stdout "
                         "is not a terminal]")
                      ->type_name("S");
  cmd->add_option_function<std::string>(
         "--repeat", countSetter(o.repeat, "--repeat", 1, 1000),
         "run the modes N times, alternating, and report medians and spread [1]")
      ->type_name("N");
  o.boardOpts.push_back(o.linkOpt);
  o.boardOpts.push_back(o.patternOpt);
  o.boardOpts.push_back(
      cmd->add_option("--coherency", o.coherency,
                      "coherent | non-coherent (every device), or per device: "
                      "adc=non-coherent,usb=coherent (devices adc, dac, usb; docs/coherency.md)")
          ->capture_default_str());
  cmd->add_option("--output", o.output,
                  "iio-to-app, data mode, one mode: write the samples the application receives "
                  "to FILE (raw, interleaved, as iio_readdev does; the file appears whole when "
                  "the run succeeds), or to standard output with - (the report then goes to "
                  "standard error)")
      ->type_name("FILE|-");
  cmd->add_option("--affinity", o.affinity,
                  "pin the application thread to the CPUs APP and the emulated hardware threads "
                  "(DMA engines, USB link) to HW, as taskset -c lists: 0:1, 0-1 (both on 0-1), "
                  "2: (application only), :3 (hardware only)")
      ->type_name("APP[:HW]");
  o.boardOpts.push_back(
      cmd->add_flag("--check-cpu-access", o.checkCpuAccess,
                    "the application's CPU mappings of the buffers fault outside SYNC brackets, "
                    "reported with the buffer and offset (also: ZBUF_CHECK_CPU_ACCESS=1)"));
  auto* failTransfer =
      cmd->add_option_function<std::string>(
             "--fail-transfer", countSetter(o.failTransfer, "--fail-transfer", 1, kMax),
             "fault injection: fail the Nth transfer of each mode (1-based)")
          ->type_name("N")
          ->group("Fault injection");
  cmd->add_option_function<std::string>("--fail-errno",
                                        countSetter(o.failErrno, "--fail-errno", 1, 4095),
                                        "errno for --fail-transfer [EIO = 5]")
      ->type_name("ERRNO")
      ->needs(failTransfer)
      ->group("Fault injection");
  o.boardOpts.push_back(failTransfer);
  cmd->add_option("--backend", o.backend,
                  "which kernel the application calls: emulated (default), auto (the real "
                  "kernel's heap where it has one, for the zero-copy buffers) or kernel (refused "
                  "naming the missing device: no kernel has these DMABUF devices here); "
                  "docs/kernel-lane.md")
      ->type_name("NAME");
  o.daemonOpt = cmd->add_option("--daemon", o.daemon,
                                "run as a client of zbufd: its board, this process the "
                                "application (SOCKET: $ZBUF_SOCKET, else the default path; "
                                "docs/daemon.md)")
                    ->expected(0, 1)
                    ->type_name("[SOCKET]");
  cmd->callback([opts, &runner] { runner = [opts] { return runStream(*opts); }; });
}

}  // namespace zbuf::cli
