// zbuf: DMA-BUF for Linux user space. `zbuf --help` lists the subcommands.
#include <cstdio>
#include <exception>

#include "command.h"

namespace {

int run(int argc, char** argv) {
  CLI::App app{
      "zbuf: DMA-BUF for Linux user space: zero-copy buffers, fences and emulated devices"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "zbuf 0.1.0");
  zbuf::cli::Runner runner;
  zbuf::cli::addStreamCommand(app, runner);
  zbuf::cli::addInfoCommand(app, runner);
  zbuf::cli::addBenchCommand(app, runner);
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
  return runner ? runner() : zbuf::cli::kExitUsage;
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
