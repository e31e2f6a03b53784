// The zbuf command line: one binary, git-style subcommands, one file per subcommand.
//
// Each subcommand registers itself on the CLI11 application and stores the function to run once
// parsing succeeded. Exit statuses: 0 success, 1 the job failed (mismatches, failed
// transfers, I/O errors), 2 bad usage (unknown flags, invalid values), 130 interrupted.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

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

// "4096", "64K", "1M", "2G" (binary multiples; an optional trailing "iB" or "B" is accepted).
// EINVAL with a message for anything else, for 0 when `allowZero` is false, or on overflow.
[[nodiscard]] Result<std::uint64_t> parseSize(std::string_view text, bool allowZero = false);
// "1.5 GiB", "512 KiB", "123 B".
[[nodiscard]] std::string formatBytes(std::uint64_t bytes);

// A CLI11 option callback adaptor: parses a size into `out` or throws CLI::ValidationError.
[[nodiscard]] std::function<void(const std::string&)> sizeSetter(std::uint64_t& out,
                                                                 const char* what);

}  // namespace zbuf::cli
