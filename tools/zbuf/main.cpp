// zbuf: DMA-BUF for Linux user space. `zbuf help` lists the subcommands.
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <string_view>

#include "command.h"

namespace {

// `zbuf help [COMMAND]`: the help of zbuf or of one subcommand, on stdout, status 0.
void addHelpCommand(CLI::App& app, zbuf::cli::Runner& runner) {
  auto topic = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("help", "Show the help of zbuf or of one command");
  cmd->add_option("command", *topic, "a command (stream, info, bench, virtio-video)");
  cmd->callback([&app, topic, &runner] {
    runner = [&app, topic] {
      if (topic->empty()) {
        // app.help() would show the selected subcommand's (help's own) help.
        fmt::print("{}", app.get_formatter()->make_help(&app, "zbuf", CLI::AppFormatMode::Normal));
        return zbuf::cli::kExitOk;
      }
      for (const CLI::App* sub : app.get_subcommands({})) {
        if (sub->get_name() == *topic) {
          fmt::print("{}", sub->get_formatter()->make_help(sub, "zbuf " + sub->get_name(),
                                                           CLI::AppFormatMode::Normal));
          return zbuf::cli::kExitOk;
        }
      }
      fmt::print(stderr,
                 "zbuf help: '{}' is not a zbuf command (stream, info, bench, virtio-video)\n",
                 *topic);
      return zbuf::cli::kExitUsage;
    };
  });
}

int run(int argc, char** argv) {
  CLI::App app{
      "zbuf: DMA-BUF for Linux user space: zero-copy buffers, fences and emulated devices"};
  app.name("zbuf");
  app.require_subcommand(0, 1);
  app.fallthrough();
  app.set_version_flag("-V,--version", fmt::format("zbuf {}", zbuf::cli::kVersion),
                       "print zbuf's version and exit");
  app.footer(fmt::format(
      "Commands: zbuf help COMMAND shows one command's flags.\n\nExit status: 0 success, 1 the "
      "job failed (mismatches, failed transfers, no block moved), 2 bad usage, 130 "
      "interrupted.\n\n{}",
      zbuf::cli::logHelp()));
  zbuf::cli::Runner runner;
  zbuf::cli::addStreamCommand(app, runner);
  zbuf::cli::addInfoCommand(app, runner);
  zbuf::cli::addBenchCommand(app, runner);
  zbuf::cli::addVirtioVideoCommand(app, runner);
  addHelpCommand(app, runner);
  zbuf::cli::addLogOptions(app);
  // `zbuf foo`: CLI11 would call it an unexpected argument of a missing subcommand.
  if (argc > 1 && argv[1][0] != '-') {
    const std::string_view name(argv[1]);
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) {
      known = known || sub->get_name() == name;
    }
    if (!known) {
      fmt::print(stderr,
                 "zbuf: '{}' is not a zbuf command (stream, info, bench, virtio-video, help); see "
                 "'zbuf help'\n",
                 name);
      return zbuf::cli::kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);  // prints the message
    return zbuf::cli::kExitUsage;
  }
  if (!runner) {
    fmt::print(
        stderr,
        "zbuf: a command is required (stream, info, bench, virtio-video, help); see 'zbuf help'\n");
    return zbuf::cli::kExitUsage;
  }
  if (auto r = zbuf::cli::applyLogOptions(); !r.ok()) {
    fmt::print(stderr, "zbuf: {}\n", r.error().message());
    return zbuf::cli::kExitUsage;
  }
  return runner();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zbuf: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "zbuf: unknown error\n");
  }
  return zbuf::cli::kExitFailed;
}
