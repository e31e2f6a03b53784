// zbuf bench: the benchmark suite. Pipeline sweeps (fileio vs dmabuf, per path, block size and
// data/benchmark mode, several repetitions, medians and spread), the machine's memcpy bandwidth
// as a yardstick, and the micro-benchmarks built next to this binary (Google Benchmark, JSON).
// Writes <out>/bench.json and <out>/bench.md, and <out>/throughput.png when gnuplot exists.
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <vector>

#include "command.h"
#include "output.h"
#include "zbuf/base/sys.h"
#include "zbuf/stream/pipeline.h"

namespace zbuf::cli {
namespace {

namespace fs = std::filesystem;

struct BenchOptions {
  std::string out = "bench-results";
  unsigned repetitions = 5;
  std::uint64_t bytes = 256ULL << 20;
  bool quick = false;
  bool skipMicro = false;
  std::string microFilter;  // --micro-filter REGEX: Google Benchmark's --benchmark_filter
  std::string output;       // --output FILE|-: bench.json's document there too
};

nlohmann::json toJson(const Stats& s) {
  return {{"median", s.median}, {"min", s.min}, {"max", s.max}};
}

// memcpy bandwidth of this machine, MiB/s (median of repetitions over 64 MiB).
Stats memcpyBandwidth(unsigned repetitions) {
  constexpr std::size_t kBytes = 64ULL << 20;
  std::vector<std::byte> a(kBytes, std::byte{1});
  std::vector<std::byte> b(kBytes);
  std::vector<double> mibs;
  for (unsigned i = 0; i < repetitions + 1; ++i) {
    const std::uint64_t t0 = sys::monotonicNs();
    std::memcpy(b.data(), a.data(), kBytes);
    const std::uint64_t t1 = sys::monotonicNs();
    if (i > 0) {  // the first run faults the pages in
      mibs.push_back(static_cast<double>(kBytes) / (1024.0 * 1024.0) /
                     (static_cast<double>(t1 - t0) / 1e9));
    }
    a[i % kBytes] = b[(std::size_t{i} * 7) % kBytes];
  }
  return stats(mibs);
}

struct Case {
  StreamPath path;
  bool benchmark;
  std::uint64_t block;
  LinkSpeed link;
};

std::string caseName(const Case& c) {
  return fmt::format("{} {} {} link={}", toString(c.path), c.benchmark ? "benchmark" : "data",
                     formatBytes(c.block), toString(c.link));
}

std::string runCapture(const std::string& cmd, int& status) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    status = -1;
    return out;
  }
  std::array<char, 8192> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) {
    out.append(buf.data(), n);
  }
  const int st = ::pclose(p);
  status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

fs::path selfDir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path(".") : p.parent_path();
}

// Google Benchmark writes bare nan/inf (e.g. the cv of one repetition), which JSON does not
// have: those values become null so that the document parses.
std::string sanitizeNonFinite(const std::string& in) {
  static const std::regex kNonFinite(R"(([:\[,]\s*)-?(nan|NaN|inf|Inf|infinity|Infinity)\b)");
  return std::regex_replace(in, kNonFinite, "$1null");
}

// The micro-benchmark programs: bench/'s Google Benchmark executables, named bench_*_bench
// (bench/CMakeLists.txt; bench_daemon_cycle, a program of its own, is not one).
bool isMicroBenchmark(const fs::path& p) {
  const std::string name = p.filename().string();
  return name.starts_with("bench_") && name.ends_with("_bench") && name.size() > 12;
}

nlohmann::json runMicroBenchmarks(unsigned repetitions, const std::string& filter, bool& failed) {
  nlohmann::json all = nlohmann::json::object();
  const fs::path dir = selfDir() / "bench";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return all;
  }
  std::vector<fs::path> exes;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && isMicroBenchmark(e.path()) &&
        ::access(e.path().c_str(), X_OK) == 0) {
      exes.push_back(e.path());
    }
  }
  std::sort(exes.begin(), exes.end());
  for (const auto& exe : exes) {
    fmt::print(stderr, "zbuf bench: {}\n", exe.filename().string());
    int status = 0;
    const std::string filterFlag =
        filter.empty() ? std::string() : fmt::format(" '--benchmark_filter={}'", filter);
    const std::string out = runCapture(
        fmt::format("'{}' --benchmark_format=json --benchmark_repetitions={} "
                    "--benchmark_report_aggregates_only=true --benchmark_min_time=0.05{} "
                    "2>/dev/null",
                    exe.string(), repetitions, filterFlag),
        status);
    if (status == 0 && !filter.empty() && out.find_first_not_of(" \n") == std::string::npos) {
      all[exe.filename().string()] = nlohmann::json::array();  // nothing matched the filter
      continue;
    }
    auto doc = nlohmann::json::parse(sanitizeNonFinite(out), nullptr, false);
    if (status != 0 || doc.is_discarded() || !doc.contains("benchmarks")) {
      // A benchmark that cannot be run or read fails the suite.
      const std::string why = status != 0 ? fmt::format("exit status {}", status)
                                          : std::string("its JSON output cannot be parsed");
      fmt::print(stderr, "zbuf bench: {}: {}\n", exe.filename().string(), why);
      all[exe.filename().string()] = {{"error", why}};
      failed = true;
      continue;
    }
    all[exe.filename().string()] = doc["benchmarks"];
  }
  return all;
}

void writePlot(const fs::path& out, const nlohmann::json& sweeps) {
  if (::system("command -v gnuplot >/dev/null 2>&1") != 0) {  // NOLINT(cert-env33-c)
    return;
  }
  // One data file per (path, mode) series in data mode at unlimited link speed.
  std::map<std::string, std::vector<std::pair<double, double>>> series;
  for (const auto& s : sweeps) {
    if (s["benchmark"].get<bool>() || s["link"] != "unlimited") {
      continue;
    }
    const std::string key =
        fmt::format("{} {}", s["path"].get<std::string>(), s["mode"].get<std::string>());
    series[key].emplace_back(s["block_bytes"].get<double>() / 1024.0,
                             s["mib_per_s"]["median"].get<double>());
  }
  std::string plot = fmt::format(
      "set terminal png size 900,560\nset output '{}'\nset logscale x 2\nset xlabel 'block "
      "size (KiB)'\nset ylabel 'MiB/s (median)'\nset key top left\nset grid\n"
      "set title 'zbuf stream, data mode: fileio vs zero-copy'\nplot ",
      (out / "throughput.png").string());
  bool first = true;
  for (auto& [key, points] : series) {
    std::sort(points.begin(), points.end());
    std::string file =
        (out / ("series-" + std::to_string(std::hash<std::string>{}(key)) + ".dat")).string();
    std::ofstream dat(file);
    for (auto& [x, y] : points) {
      dat << x << ' ' << y << '\n';
    }
    plot += fmt::format("{}'{}' with linespoints title '{}'", first ? "" : ", ", file, key);
    first = false;
  }
  if (first) {
    return;
  }
  std::ofstream(out / "plot.gp") << plot << '\n';
  const std::string cmd = fmt::format("gnuplot '{}'", (out / "plot.gp").string());
  if (::system(cmd.c_str()) != 0) {  // NOLINT(cert-env33-c)
    fmt::print(stderr, "zbuf bench: gnuplot failed; no plot\n");
  }
}

// The real time of aggregate `name` ("median", "stddev") of the run `run` in a program's list.
std::optional<double> aggregate(const nlohmann::json& list, const std::string& run,
                                const char* name) {
  for (const auto& b : list) {
    if (b.value("run_name", "") == run && b.value("aggregate_name", "") == name &&
        b["real_time"].is_number()) {
      return b["real_time"].get<double>();
    }
  }
  return std::nullopt;
}

// The coherency syncs' cost against buffer size, 4 KiB against 2 MiB pages (bench_sg_bench's
// BM_DeviceBlockCycle, BM_SyncUnchanged, BM_CpuBracket; docs/coherency.md): one row per
// benchmark and size with both page sizes' median and standard deviation, and their ratio.
nlohmann::json syncCost(const nlohmann::json& micro) {
  nlohmann::json rows = nlohmann::json::array();
  if (!micro.contains("bench_sg_bench") || !micro["bench_sg_bench"].is_array()) {
    return rows;
  }
  const nlohmann::json& list = micro["bench_sg_bench"];
  std::vector<std::pair<std::string, std::uint64_t>> cases;  // in the program's order
  for (const auto& b : list) {
    const std::string run = b.value("run_name", "");
    for (const char* name : {"BM_DeviceBlockCycle", "BM_SyncUnchanged", "BM_CpuBracket"}) {
      const std::string prefix = std::string(name) + "/pages4k/";
      if (run.starts_with(prefix) && b.value("aggregate_name", "") == "median") {
        cases.emplace_back(name, std::stoull(run.substr(prefix.size())));
      }
    }
  }
  for (const auto& [name, bytes] : cases) {
    const std::string small = fmt::format("{}/pages4k/{}", name, bytes);
    const std::string huge = fmt::format("{}/pages2m/{}", name, bytes);
    const auto m4 = aggregate(list, small, "median");
    const auto m2 = aggregate(list, huge, "median");
    if (!m4 || !m2) {
      continue;
    }
    rows.push_back(
        {{"benchmark", name},
         {"bytes", bytes},
         {"pages4k_us",
          {{"median", *m4}, {"stddev", aggregate(list, small, "stddev").value_or(0)}}},
         {"pages2m_us", {{"median", *m2}, {"stddev", aggregate(list, huge, "stddev").value_or(0)}}},
         {"ratio_4k_over_2m", *m2 > 0 ? *m4 / *m2 : 0.0}});
  }
  return rows;
}

std::string syncCostTable(const nlohmann::json& rows) {
  if (rows.empty()) {
    return "";
  }
  std::string md =
      "\n## Sync cost against buffer size: 4 KiB against 2 MiB pages (bench_sg_bench, us, "
      "median ± stddev)\n\n| benchmark | buffer | 4 KiB pages | 2 MiB pages | 4 KiB / 2 MiB "
      "|\n|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    md += fmt::format(
        "| {} | {} | {:.1f} ± {:.1f} | {:.1f} ± {:.1f} | {:.2f} |\n",
        r["benchmark"].get<std::string>(), formatBytes(r["bytes"].get<std::uint64_t>()),
        r["pages4k_us"]["median"].get<double>(), r["pages4k_us"]["stddev"].get<double>(),
        r["pages2m_us"]["median"].get<double>(), r["pages2m_us"]["stddev"].get<double>(),
        r["ratio_4k_over_2m"].get<double>());
  }
  return md;
}

int runBench(const BenchOptions& o) {
  if (o.microFilter.find('\'') != std::string::npos) {
    fmt::print(stderr, "zbuf bench: --micro-filter: a regular expression without quotes (')\n");
    return kExitUsage;
  }
  if (o.skipMicro && !o.microFilter.empty()) {
    fmt::print(stderr,
               "zbuf bench: --micro-filter selects micro-benchmarks; --skip-micro runs none\n");
    return kExitUsage;
  }
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) {
    fmt::print(stderr, "zbuf bench: cannot create {}: {}\n", o.out, ec.message());
    return kExitFailed;
  }
  // --output is made before the suite runs, so that an unwritable path fails at once.
  std::optional<OutputFile> output;  // with "-", the report goes to standard error
  if (auto r = openOutput(o.output, output); !r.ok()) {
    fmt::print(stderr, "zbuf bench: {}\n", r.error().message());
    return kExitFailed;
  }
  const unsigned reps = o.quick ? 3 : o.repetitions;
  const std::uint64_t bytes = o.quick ? std::min<std::uint64_t>(o.bytes, 64ULL << 20) : o.bytes;

  nlohmann::json doc;
  doc["repetitions"] = reps;
  doc["bytes_per_run"] = bytes;
  doc["cores"] = ::sysconf(_SC_NPROCESSORS_ONLN);
  const Stats memcpyStats = memcpyBandwidth(reps);
  doc["memcpy_mib_per_s"] = toJson(memcpyStats);

  std::vector<Case> cases;
  const std::vector<std::uint64_t> blocks =
      o.quick ? std::vector<std::uint64_t>{64 << 10, 1 << 20}
              : std::vector<std::uint64_t>{16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20};
  for (bool benchmark : {false, true}) {
    for (std::uint64_t b : blocks) {
      cases.push_back({StreamPath::IioToApp, benchmark, b, LinkSpeed::Unlimited});
      if (b >= (64U << 10)) {
        cases.push_back({StreamPath::IioToUsb, benchmark, b, LinkSpeed::Unlimited});
      }
    }
  }
  cases.push_back({StreamPath::IioToUsb, false, 1 << 20, LinkSpeed::Usb3});
  cases.push_back({StreamPath::UsbToDac, false, 1 << 20, LinkSpeed::Unlimited});

  doc["sweeps"] = nlohmann::json::array();
  bool failed = false;
  for (const Case& c : cases) {
    StreamConfig cfg;
    cfg.path = c.path;
    cfg.benchmark = c.benchmark;
    cfg.blockBytes = c.block;
    cfg.link = c.link;
    cfg.bytes = bytes;
    auto pipeline = Pipeline::create(cfg);
    if (!pipeline) {
      fmt::print(stderr, "zbuf bench: {}: {}\n", caseName(c), pipeline.error().describe());
      return kExitFailed;
    }
    // Modes alternate within each repetition so both see the same machine conditions.
    std::map<StreamMode, std::vector<double>> mib;
    std::map<StreamMode, std::vector<double>> cpu;
    for (unsigned r = 0; r < reps; ++r) {
      for (StreamMode m : {StreamMode::Fileio, StreamMode::Dmabuf}) {
        auto res = pipeline->run(m);
        if (!res || res->mismatches != 0 || res->errors != 0) {
          fmt::print(stderr, "zbuf bench: {} {} failed\n", caseName(c), toString(m));
          failed = true;
          continue;
        }
        mib[m].push_back(res->mibPerS);
        cpu[m].push_back(res->appCpuSPerGib);
      }
    }
    for (StreamMode m : {StreamMode::Fileio, StreamMode::Dmabuf}) {
      doc["sweeps"].push_back({{"path", toString(c.path)},
                               {"benchmark", c.benchmark},
                               {"block_bytes", c.block},
                               {"link", toString(c.link)},
                               {"mode", toString(m)},
                               {"mib_per_s", toJson(stats(mib[m]))},
                               {"app_cpu_s_per_gib", toJson(stats(cpu[m]))}});
    }
    const Stats f = stats(mib[StreamMode::Fileio]);
    const Stats d = stats(mib[StreamMode::Dmabuf]);
    fmt::print(stderr, "zbuf bench: {:<40} fileio {:>9.1f}  dmabuf {:>9.1f} MiB/s  ({:.2f}x)\n",
               caseName(c), f.median, d.median, f.median > 0 ? d.median / f.median : 0.0);
  }
  if (!o.skipMicro) {
    doc["micro"] = runMicroBenchmarks(reps, o.microFilter, failed);
    doc["sync_cost"] = syncCost(doc["micro"]);
  }

  const std::string json = doc.dump(2) + "\n";
  if (auto r = writeWholeFile((fs::path(o.out) / "bench.json").string(), json); !r.ok()) {
    fmt::print(stderr, "zbuf bench: {}\n", r.error().message());
    return kExitFailed;
  }

  // The Markdown report.
  std::string md = fmt::format(
      "# zbuf bench\n\n{} repetitions per case, {} per run, modes alternating within each "
      "repetition. Medians, with [min, max].\n\nmemcpy bandwidth (yardstick): {:.0f} MiB/s "
      "[{:.0f}, {:.0f}]\n\n| path | data | block | link | fileio MiB/s | dmabuf MiB/s | speed-up "
      "| fileio app CPU s/GiB | dmabuf app CPU s/GiB |\n|---|---|---|---|---|---|---|---|---|\n",
      reps, formatBytes(bytes), memcpyStats.median, memcpyStats.min, memcpyStats.max);
  const auto& sweeps = doc["sweeps"];
  for (std::size_t i = 0; i + 1 < sweeps.size(); i += 2) {
    const auto& f = sweeps[i];
    const auto& d = sweeps[i + 1];
    const double fm = f["mib_per_s"]["median"];
    const double dm = d["mib_per_s"]["median"];
    md += fmt::format(
        "| {} | {} | {} | {} | {:.1f} [{:.1f}, {:.1f}] | {:.1f} [{:.1f}, {:.1f}] | {:.2f}x | "
        "{:.4f} | {:.4f} |\n",
        f["path"].get<std::string>(), f["benchmark"].get<bool>() ? "benchmark" : "data",
        formatBytes(f["block_bytes"].get<std::uint64_t>()), f["link"].get<std::string>(), fm,
        f["mib_per_s"]["min"].get<double>(), f["mib_per_s"]["max"].get<double>(), dm,
        d["mib_per_s"]["min"].get<double>(), d["mib_per_s"]["max"].get<double>(),
        fm > 0 ? dm / fm : 0.0, f["app_cpu_s_per_gib"]["median"].get<double>(),
        d["app_cpu_s_per_gib"]["median"].get<double>());
  }
  if (doc.contains("micro")) {
    md +=
        "\n## Micro-benchmarks (median and standard deviation of repetitions, real time)\n\n| "
        "benchmark | median | stddev |\n|---|---|---|\n";
    for (const auto& [exe, list] : doc["micro"].items()) {
      if (!list.is_array()) {
        md += fmt::format("| {} | {} |\n", exe, list.dump());
        continue;
      }
      for (const auto& b : list) {
        if (b.value("aggregate_name", "") == "median") {
          const auto sd = aggregate(list, b["run_name"].get<std::string>(), "stddev");
          md += fmt::format("| {} | {:.1f} {} | {} |\n", b["run_name"].get<std::string>(),
                            b["real_time"].is_number() ? b["real_time"].get<double>() : NAN,
                            b["time_unit"].get<std::string>(),
                            sd ? fmt::format("{:.1f}", *sd) : std::string("-"));
        }
      }
    }
    md += syncCostTable(doc["sync_cost"]);
  }
  if (auto r = writeWholeFile((fs::path(o.out) / "bench.md").string(), md); !r.ok()) {
    fmt::print(stderr, "zbuf bench: {}\n", r.error().message());
    return kExitFailed;
  }
  writePlot(o.out, doc["sweeps"]);
  fmt::print("{}\nzbuf bench: wrote {}/bench.json and {}/bench.md\n", md, o.out, o.out);
  if (output) {
    // The document records what failed, so it is whole even when the suite failed.
    Result<void> r = output->write(json);
    if (r.ok()) {
      r = output->commit();
    }
    if (!r.ok()) {
      fmt::print(stderr, "zbuf bench: {}\n", r.error().message());
      return kExitFailed;
    }
    if (!output->isStdout()) {
      fmt::print("zbuf bench: wrote {}\n", output->path());
    }
  }
  return failed ? kExitFailed : kExitOk;
}

}  // namespace

void addBenchCommand(CLI::App& app, Runner& runner) {
  auto opts = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Run the benchmark suite: pipeline sweeps and micro-benchmarks, with a report");
  cmd->add_option("--out", opts->out, "output directory")->capture_default_str();
  cmd->add_option("--repetitions", opts->repetitions, "repetitions per case")
      ->check(CLI::Range(1U, 100U))
      ->capture_default_str();
  cmd->add_option_function<std::string>("--bytes", sizeSetter(opts->bytes, "--bytes"),
                                        "bytes per pipeline run [256M]");
  cmd->add_flag("--quick", opts->quick, "fewer cases and repetitions (a smoke run)");
  cmd->add_flag("--skip-micro", opts->skipMicro, "skip the micro-benchmark executables");
  cmd->add_option("--micro-filter", opts->microFilter,
                  "run only the micro-benchmarks matching REGEX (Google Benchmark's "
                  "benchmark filter)")
      ->type_name("REGEX");
  cmd->add_option("--output", opts->output,
                  "also write the JSON document (bench.json's) to FILE, whole or not at all, or "
                  "to standard output with - (the report then goes to standard error)")
      ->type_name("FILE|-");
  cmd->callback([opts, &runner] { runner = [opts] { return runBench(*opts); }; });
}

}  // namespace zbuf::cli
