// What zbuf stream prints: the header (before the run), the live progress line fitted to the
// terminal, iperf3-style interval lines, and the results as a table, one JSON document that
// describes the run, or CSV. stream.cpp runs the pipeline and calls these.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "zbuf/stream/pipeline.h"

namespace zbuf::cli {

// One interval of a run (iperf3's "interval"): [start, end) seconds into the run.
struct Interval {
  double start = 0;
  double end = 0;
  std::uint64_t bytes = 0;
};

// A finished run of one mode, one repetition, with its intervals.
struct StreamRun {
  StreamResult result;
  unsigned repetition = 1;  // 1-based
  std::vector<Interval> intervals;
};

// Everything the report says about the settings.
struct StreamSettings {
  StreamConfig config;
  std::vector<StreamMode> modes;
  bool durationRun = true;  // false: a byte budget
  double seconds = 0;
  unsigned repeat = 1;
  double interval = 0;      // seconds; 0: none
  std::string output;       // --output: a path, "-", or "" for none
  std::string affinityApp;  // --affinity as CPU lists ("0-1"); "" for not pinned
  std::string affinityHw;
  std::string daemon;  // --daemon: zbufd's socket; "" for the embedded kernel
};

// Cuts the progress reports of one run into intervals of `every` seconds and, when `print`,
// prints one line per interval ("  fileio   1.00-2.00 s   2.41 GiB   2468.1 MiB/s").
class IntervalLog {
 public:
  IntervalLog(double every, bool print) : every_(every), print_(print) {}
  void start(const char* mode);
  [[nodiscard]] bool due(const StreamProgress& p) const {
    return every_ > 0 && p.seconds - lastSeconds_ >= every_;
  }
  void update(const StreamProgress& p);
  // Closes the last (partial) interval at the run's end; returns the run's intervals.
  [[nodiscard]] std::vector<Interval> finish(double seconds, std::uint64_t bytes);

 private:
  void close(double end, std::uint64_t bytes);
  double every_;
  bool print_;
  const char* mode_ = "";
  double lastSeconds_ = 0;
  std::uint64_t lastBytes_ = 0;
  std::vector<Interval> intervals_;
};

// The terminal's width: TIOCGWINSZ on stdout, else $COLUMNS, else 80.
[[nodiscard]] unsigned terminalColumns();

// A live progress line on a terminal, at most 4 updates a second, cut to the terminal's width
// so that it never wraps (a wrapped line leaves a stale line at every update).
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}
  void update(const char* mode, const StreamProgress& p);
  void clear();

 private:
  bool enabled_;
  std::uint64_t lastNs_ = 0;
};

void printHeader(const StreamSettings& s);
void printTable(const StreamSettings& s, const std::vector<StreamRun>& runs);
[[nodiscard]] nlohmann::json toJson(const StreamSettings& s, const std::vector<StreamRun>& runs,
                                    bool interrupted);
void printCsv(const std::vector<StreamRun>& runs);
// The median throughput of dmabuf over fileio, when both ran.
[[nodiscard]] std::optional<double> speedup(const std::vector<StreamRun>& runs);

}  // namespace zbuf::cli
