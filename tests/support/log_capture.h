// LogCapture: collects the error lines of one log category while alive, for tests that assert
// a misuse is reported. Installs a log sink, so use it only while no other thread logs.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "zbuf/base/log.h"

namespace zbuf::testing_support {

class LogCapture {
 public:
  explicit LogCapture(const char* category) : category_(category) {
    setLogSink([this](const LogCategory& c, LogLevel level, std::string_view m) {
      if (std::string_view(c.name()) == category_ && level >= LogLevel::Error) {
        lines_.emplace_back(m);
      }
    });
  }
  ~LogCapture() { setLogSink({}); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  [[nodiscard]] const std::vector<std::string>& lines() const { return lines_; }
  // True if some captured line contains `needle`.
  [[nodiscard]] bool contains(std::string_view needle) const {
    for (const auto& l : lines_) {
      if (l.find(needle) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

 private:
  std::string_view category_;
  std::vector<std::string> lines_;
};

}  // namespace zbuf::testing_support
