#include "stream_report.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>

#include "command.h"
#include "zbuf/base/sys.h"
#include "zbuf/uapi/backend.h"

namespace zbuf::cli {

namespace {

double mibPerS(std::uint64_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / (1024.0 * 1024.0) / seconds : 0.0;
}

struct Spread {
  double median = 0;
  double min = 0;
  double max = 0;
};

Spread spread(std::vector<double> v) {
  if (v.empty()) {
    return {};
  }
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return {n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v.front(), v.back()};
}

nlohmann::json toJson(const Spread& s) {
  return {{"median", s.median}, {"min", s.min}, {"max", s.max}};
}

// One column of the table: a mode's runs (several with --repeat), medians of the rates and
// sums of the counts.
struct Column {
  StreamMode mode{};
  std::size_t runs = 0;
  Spread mib;
  Spread appCpu;
  Spread hwCpu;
  std::uint64_t bytes = 0;
  std::uint64_t blocksMoved = 0;
  double seconds = 0;
  std::uint64_t verified = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t errors = 0;
};

std::vector<Column> columns(const std::vector<StreamRun>& runs) {
  std::vector<Column> cols;
  for (StreamMode m : {StreamMode::Fileio, StreamMode::Dmabuf}) {
    Column c;
    c.mode = m;
    std::vector<double> mib;
    std::vector<double> app;
    std::vector<double> hw;
    for (const StreamRun& run : runs) {
      const StreamResult& r = run.result;
      if (r.mode != m) {
        continue;
      }
      ++c.runs;
      mib.push_back(r.mibPerS);
      app.push_back(r.appCpuSPerGib);
      hw.push_back(r.hwCpuSPerGib);
      c.bytes += r.bytes;
      c.blocksMoved += r.blockBytes != 0 ? r.bytes / r.blockBytes : 0;
      c.seconds += r.seconds;
      c.verified += r.verifiedBytes;
      c.mismatches += r.mismatches;
      c.errors += r.errors;
    }
    if (c.runs != 0) {
      c.mib = spread(mib);
      c.appCpu = spread(app);
      c.hwCpu = spread(hw);
      cols.push_back(c);
    }
  }
  return cols;
}

std::string isoTimestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

// --- intervals -----------------------------------------------------------------------------------

void IntervalLog::start(const char* mode) {
  mode_ = mode;
  lastSeconds_ = 0;
  lastBytes_ = 0;
  intervals_.clear();
}

void IntervalLog::update(const StreamProgress& p) {
  if (due(p)) {
    close(p.seconds, p.bytes);
  }
}

void IntervalLog::close(double end, std::uint64_t bytes) {
  const Interval i{lastSeconds_, end, bytes >= lastBytes_ ? bytes - lastBytes_ : 0};
  intervals_.push_back(i);
  if (print_) {
    fmt::print("  {:<7} {:>15}  {:>11}  {:>9.1f} MiB/s\n", mode_,
               fmt::format("{:.2f}-{:.2f} s", i.start, i.end), formatBytes(i.bytes),
               mibPerS(i.bytes, i.end - i.start));
    std::fflush(stdout);
  }
  lastSeconds_ = end;
  lastBytes_ = bytes;
}

std::vector<Interval> IntervalLog::finish(double seconds, std::uint64_t bytes) {
  if (every_ > 0 && seconds > lastSeconds_) {
    close(seconds, bytes);
  }
  return std::move(intervals_);
}

// --- progress line
// ---------------------------------------------------------------------------------

unsigned terminalColumns() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col != 0) {
    return ws.ws_col;
  }
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read-only use on the main thread
  if (const char* cols = std::getenv("COLUMNS"); cols != nullptr) {
    if (auto n = parseCount(cols, 1, 10000); n.ok()) {
      return static_cast<unsigned>(*n);
    }
  }
  return 80;
}

void ProgressLine::update(const char* mode, const StreamProgress& p) {
  if (!enabled_) {
    return;
  }
  const std::uint64_t now = sys::monotonicNs();
  if (now - lastNs_ < 250'000'000ULL) {
    return;
  }
  lastNs_ = now;
  std::string line = fmt::format("  {:<7} {:>9.1f} MiB/s  {:>11}  {:5.1f} s", mode,
                                 mibPerS(p.bytes, p.seconds), formatBytes(p.bytes), p.seconds);
  // One column short of the width: writing the last column makes some terminals wrap.
  const unsigned width = terminalColumns();
  if (line.size() >= width) {
    line.resize(width > 1 ? width - 1 : 0);
  }
  std::fputs(("\r\033[2K" + line).c_str(), stdout);
  std::fflush(stdout);
}

void ProgressLine::clear() {
  if (enabled_ && lastNs_ != 0) {
    std::fputs("\r\033[2K", stdout);
    std::fflush(stdout);
  }
  lastNs_ = 0;
}

// --- table
// -------------------------------------------------------------------------------------------

void printHeader(const StreamSettings& s) {
  const StreamConfig& c = s.config;
  const std::string data =
      c.benchmark ? "benchmark mode (data untouched)"
                  : fmt::format("data mode ({} pattern, every byte checked)", toString(c.pattern));
  fmt::print("zbuf stream: {}, {} blocks x {}, {}\n", toString(c.path), formatBytes(c.blockBytes),
             c.blocks, data);
  const std::string until = s.durationRun ? fmt::format("{:g} s per mode", s.seconds)
                                          : fmt::format("{} per mode", formatBytes(c.bytes));
  fmt::print("  {} channels x {}-bit, rate {}{}, {}{}\n", c.format.channels,
             c.format.bytesPerSample * 8,
             c.sampleRate == 0 ? std::string("unlimited") : fmt::format("{} S/s", c.sampleRate),
             c.path == StreamPath::IioToApp ? "" : fmt::format(", link {}", toString(c.link)),
             until, s.repeat > 1 ? fmt::format(", {} repetitions alternating", s.repeat) : "");
  if (!s.affinityApp.empty() || !s.affinityHw.empty()) {
    fmt::print("  application on CPU {}, hardware threads on CPU {}\n",
               s.affinityApp.empty() ? "any" : s.affinityApp,
               s.affinityHw.empty() ? "any" : s.affinityHw);
  }
  if (!s.output.empty()) {
    fmt::print("  samples to {}\n", s.output == "-" ? "standard output" : s.output);
  }
  if (!s.daemon.empty()) {
    fmt::print("  devices in zbufd at {} (hardware CPU is the daemon's, not counted here)\n",
               s.daemon);
  }
  if (c.backend != uapi::Backend::Emulated) {
    fmt::print("  backend {}: zero-copy buffers from {}\n", uapi::backendName(c.backend),
               uapi::requireKernelPath("/dev/dma_heap/system").ok()
                   ? "the real kernel's /dev/dma_heap/system"
                   : "the emulation (the running kernel has no system heap)");
  }
  fmt::print("\n");
  std::fflush(stdout);
}

void printTable(const StreamSettings& s, const std::vector<StreamRun>& runs) {
  const std::vector<Column> cols = columns(runs);
  if (cols.empty()) {
    return;
  }
  const bool repeated = s.repeat > 1;
  auto row = [&](const char* name, auto&& cell) {
    std::string line = fmt::format("  {:<22}", name);
    for (const Column& c : cols) {
      line += fmt::format("{:>18}", cell(c));
    }
    fmt::print("{}\n", line);
  };
  if (s.interval > 0) {
    fmt::print("\n");
  }
  row("", [](const Column& c) { return std::string(toString(c.mode)); });
  row(repeated ? "throughput (MiB/s) med" : "throughput (MiB/s)",
      [](const Column& c) { return fmt::format("{:.1f}", c.mib.median); });
  if (repeated) {
    row("  spread (min-max)",
        [](const Column& c) { return fmt::format("{:.0f}-{:.0f}", c.mib.min, c.mib.max); });
  }
  row(repeated ? "app CPU (s/GiB) median" : "app CPU (s/GiB)",
      [](const Column& c) { return fmt::format("{:.4f}", c.appCpu.median); });
  row(repeated ? "hw CPU (s/GiB) median" : "hw CPU (s/GiB)",
      [](const Column& c) { return fmt::format("{:.4f}", c.hwCpu.median); });
  row("moved", [](const Column& c) { return formatBytes(c.bytes); });
  row("blocks moved", [](const Column& c) { return fmt::format("{}", c.blocksMoved); });
  row("seconds", [](const Column& c) { return fmt::format("{:.2f}", c.seconds); });
  row("verified", [](const Column& c) { return formatBytes(c.verified); });
  row("mismatched bytes", [](const Column& c) { return fmt::format("{}", c.mismatches); });
  row("failed transfers", [](const Column& c) { return fmt::format("{}", c.errors); });
  const std::optional<double> up = speedup(runs);
  if (up && cols.size() == 2) {
    const Column& f = cols[0];
    const Column& d = cols[1];
    fmt::print("\n  zero-copy speed-up: {:.2f}x throughput", *up);
    if (d.appCpu.median > 0) {
      fmt::print(", {:.1f}x less application CPU per GiB", f.appCpu.median / d.appCpu.median);
    }
    fmt::print("{}\n", repeated ? " (medians)" : "");
    // Only where it compares like with like: the cover letters streamed real data from an
    // IIO ADC into a FunctionFS endpoint.
    if (s.config.path == StreamPath::IioToUsb && !s.config.benchmark) {
      fmt::print(
          "  (the IIO and FunctionFS cover letters measured 2.16x, 127 vs 274 MiB/s, ADC to a "
          "real USB 3 link{})\n",
          s.config.link == LinkSpeed::Usb3 ? "" : "; --link usb3 models it");
    }
  }
}

std::optional<double> speedup(const std::vector<StreamRun>& runs) {
  const std::vector<Column> cols = columns(runs);
  if (cols.size() != 2 || cols[0].mib.median <= 0) {
    return std::nullopt;
  }
  return cols[1].mib.median / cols[0].mib.median;
}

// --- JSON and CSV
// ------------------------------------------------------------------------------------

nlohmann::json toJson(const StreamSettings& s, const std::vector<StreamRun>& runs,
                      bool interrupted) {
  const StreamConfig& c = s.config;
  nlohmann::json doc;
  doc["zbuf_version"] = kVersion;
  doc["timestamp"] = isoTimestamp();
  utsname u{};
  char host[256] = {};
  (void)::gethostname(host, sizeof host - 1);
  (void)::uname(&u);
  doc["host"] = {{"hostname", host},
                 {"system", u.sysname},
                 {"kernel", u.release},
                 {"machine", u.machine},
                 {"cores", ::sysconf(_SC_NPROCESSORS_ONLN)}};
  nlohmann::json modes = nlohmann::json::array();
  for (StreamMode m : s.modes) {
    modes.push_back(toString(m));
  }
  doc["settings"] = {
      {"path", toString(c.path)},
      {"modes", modes},
      {"block_bytes", c.blockBytes},
      {"block_samples", c.blockBytes / c.format.frameBytes()},
      {"blocks_in_flight", c.blocks},
      {"batch", effectiveBatch(c)},
      {"seconds", s.durationRun ? nlohmann::json(s.seconds) : nlohmann::json(nullptr)},
      {"bytes", s.durationRun ? nlohmann::json(nullptr) : nlohmann::json(c.bytes)},
      {"benchmark", c.benchmark},
      {"sample_rate", c.sampleRate},
      {"channels", c.format.channels},
      {"sample_bits", c.format.bytesPerSample * 8},
      {"frame_bytes", c.format.frameBytes()},
      {"link",
       c.path == StreamPath::IioToApp ? nlohmann::json(nullptr) : nlohmann::json(toString(c.link))},
      {"pattern", c.benchmark ? nlohmann::json(nullptr) : nlohmann::json(toString(c.pattern))},
      {"fail_transfer", c.failTransfer},
      {"fail_errno", c.failTransfer != 0 ? nlohmann::json(c.failErrno) : nlohmann::json(nullptr)},
      {"repeat", s.repeat},
      {"interval_s", s.interval},
      {"output", s.output.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.output)},
      {"daemon", s.daemon.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.daemon)},
      {"backend", uapi::backendName(c.backend)},
      {"affinity",
       {{"app", s.affinityApp.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.affinityApp)},
        {"hw", s.affinityHw.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.affinityHw)}}}};
  doc["runs"] = nlohmann::json::array();
  for (const StreamRun& run : runs) {
    const StreamResult& r = run.result;
    nlohmann::json intervals = nlohmann::json::array();
    for (const Interval& i : run.intervals) {
      intervals.push_back({{"start_s", i.start},
                           {"end_s", i.end},
                           {"bytes", i.bytes},
                           {"mib_per_s", mibPerS(i.bytes, i.end - i.start)}});
    }
    doc["runs"].push_back({{"mode", toString(r.mode)},
                           {"repetition", run.repetition},
                           {"path", toString(r.path)},
                           {"block_bytes", r.blockBytes},
                           {"blocks_in_flight", r.blocks},
                           {"blocks_moved", r.blockBytes != 0 ? r.bytes / r.blockBytes : 0},
                           {"bytes", r.bytes},
                           {"seconds", r.seconds},
                           {"mib_per_s", r.mibPerS},
                           {"app_cpu_s_per_gib", r.appCpuSPerGib},
                           {"hw_cpu_s_per_gib", r.hwCpuSPerGib},
                           {"verified_bytes", r.verifiedBytes},
                           {"mismatches", r.mismatches},
                           {"errors", r.errors},
                           {"error_messages", r.errorMessages},
                           {"stopped", r.stopped},
                           {"intervals", intervals}});
  }
  nlohmann::json summary = nlohmann::json::object();
  for (const Column& col : columns(runs)) {
    summary[toString(col.mode)] = {{"runs", col.runs},
                                   {"mib_per_s", toJson(col.mib)},
                                   {"app_cpu_s_per_gib", toJson(col.appCpu)},
                                   {"hw_cpu_s_per_gib", toJson(col.hwCpu)}};
  }
  doc["summary"] = summary;
  const std::optional<double> up = speedup(runs);
  doc["speedup"] = up ? nlohmann::json(*up) : nlohmann::json(nullptr);
  doc["interrupted"] = interrupted;
  return doc;
}

void printCsv(const std::vector<StreamRun>& runs) {
  fmt::print(
      "mode,repetition,path,block_bytes,blocks_in_flight,blocks_moved,bytes,seconds,mib_per_s,"
      "app_cpu_s_per_gib,hw_cpu_s_per_gib,verified_bytes,mismatches,errors,stopped\n");
  for (const StreamRun& run : runs) {
    const StreamResult& r = run.result;
    fmt::print("{},{},{},{},{},{},{},{:.6f},{:.3f},{:.6f},{:.6f},{},{},{},{}\n", toString(r.mode),
               run.repetition, toString(r.path), r.blockBytes, r.blocks,
               r.blockBytes != 0 ? r.bytes / r.blockBytes : 0, r.bytes, r.seconds, r.mibPerS,
               r.appCpuSPerGib, r.hwCpuSPerGib, r.verifiedBytes, r.mismatches, r.errors,
               r.stopped ? 1 : 0);
  }
}

}  // namespace zbuf::cli
