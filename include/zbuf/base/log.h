// Logging with categories.
//
//   ZBUF_LOG_CATEGORY(Fence);                 // in one .cpp: defines LogFence
//   zbuf::log(LogFence, LogLevel::Warn, "fence {} signalled twice", seqno);
//
// Levels per category come from the environment: ZBUF_LOG="fence:debug,*:warn" (default:
// warnings and errors). Output goes to stderr, one line per message, or to a sink installed
// with setLogSink() (tests use this to capture messages).
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <functional>
#include <string_view>

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

enum class LogLevel : int { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 };

class LogCategory {
 public:
  explicit LogCategory(const char* name) noexcept : name_(name) {}
  [[nodiscard]] const char* name() const noexcept { return name_; }
  [[nodiscard]] bool enabled(LogLevel level) const noexcept;
  void setLevel(LogLevel level) noexcept { level_.store(static_cast<int>(level)); }

 private:
  const char* name_;
  mutable std::atomic<int> level_{-1};  // -1: not yet read from the environment
};

using LogSink = std::function<void(const LogCategory&, LogLevel, std::string_view)>;
// Installs a sink (an empty function restores stderr). Not for use while logging concurrently.
void setLogSink(LogSink sink);

void logMessage(const LogCategory& category, LogLevel level, std::string_view message);

template <typename... Args>
void log(const LogCategory& category, LogLevel level, fmt::format_string<Args...> format,
         Args&&... args) {
  if (category.enabled(level)) {
    logMessage(category, level, fmt::format(format, std::forward<Args>(args)...));
  }
}

#define ZBUF_LOG_CATEGORY(name) ::zbuf::LogCategory Log##name(#name)
#define ZBUF_DECLARE_LOG_CATEGORY(name) extern ::zbuf::LogCategory Log##name

}  // namespace zbuf
#pragma GCC visibility pop
