// zbuf's logging flags: -v (info), -vv (debug), -q (errors only), --log-level LEVEL, on top of
// the ZBUF_LOG environment variable ("fence:debug,*:warn", zbuf/base/log.h). The flags set the
// level of every category not named in ZBUF_LOG; an invalid level or category, in a flag or in
// ZBUF_LOG, is a usage error (the library alone would fall back to warn silently).
#include <fmt/format.h>
#include <strings.h>

#include <array>
#include <cstdlib>

#include "command.h"

namespace zbuf::cli {

namespace {

constexpr std::array<const char*, 5> kLevels{"debug", "info", "warn", "error", "off"};
// The categories the library defines (ZBUF_LOG_CATEGORY in src/); README and --help list them.
constexpr std::array<const char*, 11> kCategories{"Attachment", "Buffer",    "Dma",    "Fence",
                                                  "IioDmabuf",  "IioFileio", "Resv",   "Signalling",
                                                  "SyncFile",   "Usb",       "WwMutex"};

bool knownLevel(std::string_view s) {
  return std::any_of(kLevels.begin(), kLevels.end(), [&](const char* l) { return s == l; });
}

bool knownCategory(const std::string& s) {
  return s == "*" || std::any_of(kCategories.begin(), kCategories.end(),
                                 [&](const char* c) { return strcasecmp(c, s.c_str()) == 0; });
}

struct LogOptions {
  int verbose = 0;
  bool quiet = false;
  std::string level;
};

LogOptions& options() {
  static LogOptions o;
  return o;
}

}  // namespace

std::string logHelp() {
  std::string cats;
  for (const char* c : kCategories) {
    cats += cats.empty() ? c : fmt::format(", {}", c);
  }
  return fmt::format(
      "Logging: ZBUF_LOG=\"category:level,...\" (\"*\" for every category; levels debug, info, "
      "warn, error, off; default warn), e.g. ZBUF_LOG=\"dma:debug,*:error\". Categories: {}. "
      "-v, -vv, -q and --log-level set every category ZBUF_LOG does not name.",
      cats);
}

void addLogOptions(CLI::App& app) {
  LogOptions& o = options();
  app.add_flag("-v,--verbose", o.verbose, "log more: -v info, -vv debug")->group("Logging");
  app.add_flag("-q,--quiet", o.quiet, "log errors only")->group("Logging");
  app.add_option("--log-level", o.level, "debug | info | warn | error | off")
      ->group("Logging")
      ->type_name("LEVEL");
}

Result<void> applyLogOptions() {
  const LogOptions& o = options();
  // NOLINTNEXTLINE(concurrency-mt-unsafe): main thread, before any other thread starts
  const char* env = std::getenv("ZBUF_LOG");
  std::string spec = env != nullptr ? env : "";
  std::string_view rest(spec);
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string item(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto colon = item.find(':');
    if (colon == std::string::npos || !knownCategory(item.substr(0, colon)) ||
        !knownLevel(std::string_view(item).substr(colon + 1))) {
      return Error(EINVAL, "ZBUF_LOG",
                   fmt::format("ZBUF_LOG: '{}' is not category:level (levels: debug, info, "
                               "warn, error, off; see zbuf --help for the categories)",
                               item));
    }
  }
  if (!o.level.empty() && !knownLevel(o.level)) {
    return Error(
        EINVAL, "--log-level",
        fmt::format("--log-level: '{}' is not a level (debug, info, warn, error, off)", o.level));
  }
  const int flags = (o.level.empty() ? 0 : 1) + (o.verbose > 0 ? 1 : 0) + (o.quiet ? 1 : 0);
  if (flags > 1) {
    return Error(EINVAL, "logging", "-v, -q and --log-level exclude each other");
  }
  std::string level = o.level;
  if (o.verbose > 0) {
    level = o.verbose > 1 ? "debug" : "info";
  } else if (o.quiet) {
    level = "error";
  }
  if (!level.empty()) {
    // The library reads ZBUF_LOG lazily, on a category's first message: later "*" entries
    // override earlier ones, named categories keep their own level.
    spec += fmt::format("{}*:{}", spec.empty() ? "" : ",", level);
    ::setenv("ZBUF_LOG", spec.c_str(), 1);  // NOLINT(concurrency-mt-unsafe): see above
  }
  return {};
}

}  // namespace zbuf::cli
