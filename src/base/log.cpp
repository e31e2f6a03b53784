#include "zbuf/base/log.h"

#include <strings.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "zbuf/base/mutex.h"

namespace zbuf {
namespace {

LogLevel parseLevel(std::string_view s) {
  if (s == "debug") {
    return LogLevel::Debug;
  }
  if (s == "info") {
    return LogLevel::Info;
  }
  if (s == "warn") {
    return LogLevel::Warn;
  }
  if (s == "error") {
    return LogLevel::Error;
  }
  if (s == "off") {
    return LogLevel::Off;
  }
  return LogLevel::Warn;
}

// ZBUF_LOG="fence:debug,*:warn": the first entry naming the category (case-insensitively)
// wins, then "*", then Warn.
LogLevel levelFromEnvironment(const char* category) {
  const char* env = std::getenv("ZBUF_LOG");  // NOLINT(concurrency-mt-unsafe): read-only use
  if (env == nullptr) {
    return LogLevel::Warn;
  }
  std::string_view spec(env);
  std::optional<LogLevel> wildcard;
  while (!spec.empty()) {
    const auto comma = spec.find(',');
    const std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view{} : spec.substr(comma + 1);
    const auto colon = item.find(':');
    if (colon == std::string_view::npos) {
      continue;
    }
    const std::string name(item.substr(0, colon));
    const LogLevel level = parseLevel(item.substr(colon + 1));
    if (name == "*") {
      wildcard = level;
    } else if (strcasecmp(name.c_str(), category) == 0) {
      return level;
    }
  }
  return wildcard.value_or(LogLevel::Warn);
}

// The sink and its lock, made on first use (a log call may come from a static initialiser).
struct SinkState {
  Mutex mutex;
  LogSink sink ZBUF_GUARDED_BY(mutex);
};
SinkState& sinkState() {
  static SinkState s;
  return s;
}

const char* levelName(LogLevel level) {
  switch (level) {
    case LogLevel::Debug:
      return "debug";
    case LogLevel::Info:
      return "info";
    case LogLevel::Warn:
      return "warn";
    case LogLevel::Error:
      return "error";
    case LogLevel::Off:
      return "off";
  }
  return "?";
}

}  // namespace

bool LogCategory::enabled(LogLevel level) const noexcept {
  int current = level_.load(std::memory_order_relaxed);
  if (current < 0) {
    current = static_cast<int>(levelFromEnvironment(name_));
    level_.store(current, std::memory_order_relaxed);
  }
  return static_cast<int>(level) >= current && level != LogLevel::Off;
}

void setLogSink(LogSink s) {
  SinkState& state = sinkState();
  const MutexLocker lock(state.mutex);
  state.sink = std::move(s);
}

void logMessage(const LogCategory& category, LogLevel level, std::string_view message) {
  SinkState& state = sinkState();
  const MutexLocker lock(state.mutex);
  if (state.sink) {
    state.sink(category, level, message);
    return;
  }
  std::fprintf(stderr, "zbuf %s %s: %.*s\n", category.name(), levelName(level),
               static_cast<int>(message.size()), message.data());
}

}  // namespace zbuf
