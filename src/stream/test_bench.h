// TestBench: the board's test bench as the application reads it, through its debugfs files
// (devices/board.h lists them): the same calls whether the board is in this process or in
// zbufd. Each file is "key value" lines; a counter the file does not show reads as 0.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "zbuf/base/result.h"
#include "zbuf/uapi/fd_calls.h"

namespace zbuf::pipeline {

// One bench file's values, by key.
class BenchValues {
 public:
  BenchValues() = default;
  explicit BenchValues(std::map<std::string, std::string, std::less<>> values)
      : values_(std::move(values)) {}
  [[nodiscard]] std::uint64_t count(std::string_view key) const;
  [[nodiscard]] std::string text(std::string_view key) const;
  [[nodiscard]] bool has(std::string_view key) const { return values_.contains(key); }

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

class TestBench {
 public:
  explicit TestBench(uapi::FdCalls& kernel) : kernel_(kernel) {}

  [[nodiscard]] Result<BenchValues> board() const;                  // the configuration
  [[nodiscard]] Result<BenchValues> host(unsigned endpoint) const;  // host/epN
  [[nodiscard]] Result<BenchValues> iio(unsigned device) const;     // iio:deviceN
  // The host endpoint's counters to zero and its stream position to `offset`.
  [[nodiscard]] Result<void> resetHost(unsigned endpoint, std::uint64_t offset);
  [[nodiscard]] Result<void> hostSending(unsigned endpoint, bool on);

 private:
  [[nodiscard]] Result<BenchValues> read(const std::string& name) const;
  [[nodiscard]] Result<void> write(const std::string& name, std::string_view text);

  uapi::FdCalls& kernel_;
};

}  // namespace zbuf::pipeline
