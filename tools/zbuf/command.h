// The zbuf command line: one binary, git-style subcommands, one file per subcommand.
//
// Each subcommand registers itself on the CLI11 application and stores the function to run once
// parsing succeeded. Exit statuses: 0 success, 1 the job failed (mismatches, failed
// transfers, I/O errors, a run that moved no block), 2 bad usage (unknown flags, invalid
// values, flags that do not apply, more memory than available), 128 + the signal when
// stopped by SIGINT (130), SIGTERM (143) or SIGHUP (129) after printing the results so far.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zbuf/base/result.h"

namespace zbuf::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInterrupted = 130;

using Runner = std::function<int()>;

void addStreamCommand(CLI::App& app, Runner& runner);
void addInfoCommand(CLI::App& app, Runner& runner);
void addBenchCommand(CLI::App& app, Runner& runner);
void addVirtioVideoCommand(CLI::App& app, Runner& runner);

// -v/-q/--log-level on `app` (subcommands fall through to them) and the ZBUF_LOG text of
// --help. applyLogOptions() checks ZBUF_LOG and the flags (EINVAL with a message) and sets
// ZBUF_LOG for the library; call it after parsing, before any work.
void addLogOptions(CLI::App& app);
[[nodiscard]] Result<void> applyLogOptions();
[[nodiscard]] std::string logHelp();

// zbuf's version, from the CMake project version (one place: CMakeLists.txt's project()).
inline constexpr const char* kVersion = ZBUF_VERSION;

// "4096", "64K", "1.5M", "2G" (binary multiples; an optional trailing "iB" or "B" is
// accepted; a fraction must give a whole number of bytes). EINVAL with a message for anything
// else, for 0 when `allowZero` is false, or on overflow.
[[nodiscard]] Result<std::uint64_t> parseSize(std::string_view text, bool allowZero = false);
// A decimal count in [min, max]: EINVAL "not a number" for anything but digits (no sign, no
// hex), ERANGE "out of range (min..max)" otherwise, overflow of 64 bits included.
[[nodiscard]] Result<std::uint64_t> parseCount(std::string_view text, std::uint64_t min,
                                               std::uint64_t max);
// A decimal number of seconds ("5", "0.25", "1e-3") in [1e-9, max]: EINVAL "not a number" for
// hex, NaN, infinity, signs or trailing text; ERANGE "out of range" otherwise.
[[nodiscard]] Result<double> parseSeconds(std::string_view text, double max);
// MemAvailable of /proc/meminfo in bytes (nullopt if it cannot be read).
[[nodiscard]] std::optional<std::uint64_t> availableMemory();
// ENOMEM with a message naming `what`, the need and what is available, when `needBytes` is
// more than the machine has available (no error when MemAvailable cannot be read).
[[nodiscard]] Result<void> checkMemory(std::uint64_t needBytes, std::string_view what);

// CPU lists in taskset(1)'s -c form: "0", "0-3", "0,2-3" (sorted, without duplicates).
// EINVAL with a message for anything else.
[[nodiscard]] Result<std::vector<unsigned>> parseCpuList(std::string_view text);
[[nodiscard]] std::string formatCpuList(const std::vector<unsigned>& cpus);  // "0-1,3"
// --affinity APP[:HW]: the application thread's CPUs and the emulated hardware threads'. One
// list pins both; an empty side ("0:" or ":1") leaves that side unpinned (an empty vector).
struct Affinity {
  std::vector<unsigned> app;
  std::vector<unsigned> hw;
};
[[nodiscard]] Result<Affinity> parseAffinity(std::string_view text);
// EINVAL with a message naming the first CPU of `a` this process may not use
// (sched_getaffinity) and the ones it may.
[[nodiscard]] Result<void> checkAffinity(const Affinity& a);

// Repetitions' median and range (zbuf bench, zbuf virtio-video --repeat).
struct Stats {
  double median = 0;
  double min = 0;
  double max = 0;
};
[[nodiscard]] Stats stats(std::vector<double> v);

// "1.5 GiB", "512 KiB", "123 B".
[[nodiscard]] std::string formatBytes(std::uint64_t bytes);

// A CLI11 option callback adaptor: parses a size into `out` or throws CLI::ValidationError.
[[nodiscard]] std::function<void(const std::string&)> sizeSetter(std::uint64_t& out,
                                                                 const char* what);
[[nodiscard]] std::function<void(const std::string&)> countSetter(std::uint64_t& out,
                                                                  const char* what,
                                                                  std::uint64_t min,
                                                                  std::uint64_t max);
[[nodiscard]] std::function<void(const std::string&)> secondsSetter(double& out, const char* what,
                                                                    double max);

}  // namespace zbuf::cli
