#include "zbuf/base/log.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace zbuf {
namespace {

TEST(Log, CategoriesGoToTheSink) {
  LogCategory cat("testcat");
  std::string seen;
  setLogSink([&](const LogCategory& c, LogLevel, std::string_view m) {
    seen = std::string(c.name()) + ":" + std::string(m);
  });
  log(cat, LogLevel::Error, "value {}", 42);
  log(cat, LogLevel::Debug, "hidden");
  setLogSink({});
  EXPECT_EQ(seen, "testcat:value 42");
}

// Sets ZBUF_LOG (or unsets it, for nullptr) while alive, and restores what it was.
class ScopedLogEnv {
 public:
  explicit ScopedLogEnv(const char* value) {
    // NOLINTBEGIN(concurrency-mt-unsafe): the test runs on one thread
    if (const char* old = std::getenv("ZBUF_LOG")) {
      old_ = old;
      hadOld_ = true;
    }
    if (value != nullptr) {
      ::setenv("ZBUF_LOG", value, 1);
    } else {
      ::unsetenv("ZBUF_LOG");
    }
    // NOLINTEND(concurrency-mt-unsafe)
  }
  ~ScopedLogEnv() {
    // NOLINTBEGIN(concurrency-mt-unsafe): the test runs on one thread
    if (hadOld_) {
      ::setenv("ZBUF_LOG", old_.c_str(), 1);
    } else {
      ::unsetenv("ZBUF_LOG");
    }
    // NOLINTEND(concurrency-mt-unsafe)
  }
  ScopedLogEnv(const ScopedLogEnv&) = delete;
  ScopedLogEnv& operator=(const ScopedLogEnv&) = delete;

 private:
  std::string old_;
  bool hadOld_ = false;
};

struct Line {
  std::string category;
  LogLevel level;
  std::string message;
};

// Collects every message of every category while alive.
class Sink {
 public:
  Sink() {
    setLogSink([this](const LogCategory& c, LogLevel level, std::string_view m) {
      lines.push_back(Line{c.name(), level, std::string(m)});
    });
  }
  ~Sink() { setLogSink({}); }
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;
  std::vector<Line> lines;
};

TEST(Log, DefaultIsWarningsAndErrors) {
  const ScopedLogEnv env(nullptr);
  const LogCategory cat("defaultcat");
  EXPECT_FALSE(cat.enabled(LogLevel::Debug));
  EXPECT_FALSE(cat.enabled(LogLevel::Info));
  EXPECT_TRUE(cat.enabled(LogLevel::Warn));
  EXPECT_TRUE(cat.enabled(LogLevel::Error));
}

TEST(Log, EnvironmentSetsTheLevelOfANamedCategoryAndOfTheRest) {
  const ScopedLogEnv env("fence:debug,*:error");
  const LogCategory fence("Fence");  // names match case-insensitively
  const LogCategory other("resv");
  EXPECT_TRUE(fence.enabled(LogLevel::Debug));
  EXPECT_TRUE(fence.enabled(LogLevel::Info));
  EXPECT_FALSE(other.enabled(LogLevel::Warn));
  EXPECT_TRUE(other.enabled(LogLevel::Error));
}

TEST(Log, EnvironmentOffSilencesEvenErrors) {
  const ScopedLogEnv env("quiet:off");
  const LogCategory quiet("quiet");
  const LogCategory loud("loud");  // not named, no "*": the default
  Sink sink;
  log(quiet, LogLevel::Error, "dropped");
  log(loud, LogLevel::Warn, "kept");
  ASSERT_EQ(sink.lines.size(), 1U);
  EXPECT_EQ(sink.lines[0].category, "loud");
  EXPECT_EQ(sink.lines[0].message, "kept");
}

TEST(Log, SetLevelOverridesTheEnvironment) {
  const ScopedLogEnv env("*:off");
  LogCategory cat("overridden");
  EXPECT_FALSE(cat.enabled(LogLevel::Error));
  cat.setLevel(LogLevel::Info);
  EXPECT_FALSE(cat.enabled(LogLevel::Debug));
  EXPECT_TRUE(cat.enabled(LogLevel::Info));
  cat.setLevel(LogLevel::Off);
  EXPECT_FALSE(cat.enabled(LogLevel::Error));
}

TEST(Log, SinkSeesTheLevelAndTheFormattedMessage) {
  LogCategory cat("formatted");
  cat.setLevel(LogLevel::Debug);
  Sink sink;
  log(cat, LogLevel::Info, "{} of {:#x}", "two", 255);
  log(cat, LogLevel::Debug, "plain");
  ASSERT_EQ(sink.lines.size(), 2U);
  EXPECT_EQ(sink.lines[0].category, "formatted");
  EXPECT_EQ(sink.lines[0].level, LogLevel::Info);
  EXPECT_EQ(sink.lines[0].message, "two of 0xff");
  EXPECT_EQ(sink.lines[1].level, LogLevel::Debug);
  EXPECT_EQ(sink.lines[1].message, "plain");
}

TEST(Log, AnEmptySinkRestoresStderr) {
  LogCategory cat("tostderr");
  cat.setLevel(LogLevel::Warn);
  int calls = 0;
  setLogSink([&](const LogCategory&, LogLevel, std::string_view) { ++calls; });
  setLogSink({});
  testing::internal::CaptureStderr();
  log(cat, LogLevel::Warn, "to stderr {}", 7);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(calls, 0);
  EXPECT_NE(err.find("tostderr"), std::string::npos) << err;
  EXPECT_NE(err.find("to stderr 7"), std::string::npos) << err;
  ASSERT_FALSE(err.empty());
  EXPECT_EQ(err.back(), '\n');
  EXPECT_EQ(err.find('\n'), err.size() - 1) << "one line per message";
}

ZBUF_LOG_CATEGORY(MacroMade);

TEST(Log, CategoryMacroDefinesLogNameNamedName) {
  EXPECT_STREQ(LogMacroMade.name(), "MacroMade");
  LogMacroMade.setLevel(LogLevel::Error);
  Sink sink;
  log(LogMacroMade, LogLevel::Warn, "below the level");
  log(LogMacroMade, LogLevel::Error, "at the level");
  ASSERT_EQ(sink.lines.size(), 1U);
  EXPECT_EQ(sink.lines[0].category, "MacroMade");
  EXPECT_EQ(sink.lines[0].message, "at the level");
}

}  // namespace
}  // namespace zbuf
