// TestBench: reads and writes the board's bench files (test_bench.h).
#include "stream/test_bench.h"

#include <fcntl.h>
#include <fmt/format.h>

#include <array>
#include <charconv>

#include "zbuf/devices/board.h"

namespace zbuf::pipeline {

std::uint64_t BenchValues::count(std::string_view key) const {
  auto it = values_.find(key);
  std::uint64_t v = 0;
  if (it != values_.end()) {
    const std::string& s = it->second;
    (void)std::from_chars(s.data(), s.data() + s.size(), v);
  }
  return v;
}

std::string BenchValues::text(std::string_view key) const {
  auto it = values_.find(key);
  return it == values_.end() ? std::string() : it->second;
}

Result<BenchValues> TestBench::board() const {
  return read("board");
}

Result<BenchValues> TestBench::host(unsigned endpoint) const {
  return read(fmt::format("host/ep{}", endpoint));
}

Result<BenchValues> TestBench::iio(unsigned device) const {
  return read(fmt::format("iio:device{}", device));
}

Result<void> TestBench::resetHost(unsigned endpoint, std::uint64_t offset) {
  return write(fmt::format("host/ep{}", endpoint), fmt::format("reset {}", offset));
}

Result<void> TestBench::hostSending(unsigned endpoint, bool on) {
  return write(fmt::format("host/ep{}", endpoint), on ? "send" : "stop");
}

Result<BenchValues> TestBench::read(const std::string& name) const {
  ZBUF_ASSIGN_OR_RETURN(
      auto fd, kernel_.open(fmt::format("{}/{}", Board::kBenchDir, name), O_RDONLY | O_CLOEXEC));
  std::string text;
  std::array<char, 4096> chunk{};
  for (;;) {
    auto n = kernel_.read(fd.get(), std::as_writable_bytes(std::span(chunk)));
    if (!n.ok()) {
      (void)kernel_.close(std::move(fd));
      return std::move(n).error();
    }
    if (*n == 0) {
      break;
    }
    text.append(chunk.data(), *n);
  }
  (void)kernel_.close(std::move(fd));
  std::map<std::string, std::string, std::less<>> values;
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t eol = rest.find('\n');
    const std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    const std::size_t space = line.find(' ');
    if (space != std::string_view::npos) {
      values.emplace(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
    }
  }
  return BenchValues(std::move(values));
}

Result<void> TestBench::write(const std::string& name, std::string_view text) {
  ZBUF_ASSIGN_OR_RETURN(
      auto fd, kernel_.open(fmt::format("{}/{}", Board::kBenchDir, name), O_WRONLY | O_CLOEXEC));
  auto n = kernel_.write(fd.get(), std::as_bytes(std::span(text)));
  (void)kernel_.close(std::move(fd));
  ZBUF_TRY(std::move(n));
  return {};
}

}  // namespace zbuf::pipeline
