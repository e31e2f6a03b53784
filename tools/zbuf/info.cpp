// zbuf info: the buffer listing (the kernel's bufinfo) of this process's zbuf context, or with
// --daemon of zbufd's (its /sys/kernel/debug/dma_buf/bufinfo) with the daemon's client processes.
//
// zbuf runs embedded (devices and buffers live in the process that uses them), so a fresh
// `zbuf info` process has no buffers of its own; `--example` builds a small scene first (two
// system-heap buffers, one named, attached to two emulated devices, with a pending write fence
// and a signalled read fence) to show what the listing reports.
#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "command.h"
#include "zbuf/core/buffer.h"
#include "zbuf/core/bufinfo.h"
#include "zbuf/core/device.h"
#include "zbuf/core/fence.h"
#include "zbuf/daemon/server.h"
#include "zbuf/heaps/system_heap.h"
#include "zbuf/ipc/remote_context.h"
#include "zbuf/uapi/backend.h"
#include "zbuf/uapi/context.h"

namespace zbuf::cli {
namespace {

struct InfoOptions {
  bool json = false;
  bool example = false;
  std::string backend = "emulated";  // --backend
  std::string daemon;                // --daemon [SOCKET]
  const CLI::Option* daemonOpt = nullptr;
};

nlohmann::json toJson(const BufInfo& info) {
  nlohmann::json doc;
  doc["buffers"] = nlohmann::json::array();
  for (const auto& b : info.buffers) {
    nlohmann::json fences = nlohmann::json::array();
    for (const auto& f : b.fences) {
      fences.push_back({{"usage", f.usage},
                        {"driver", f.driver},
                        {"timeline", f.timeline},
                        {"seqno", f.seqno},
                        {"signalled", f.signalled}});
    }
    doc["buffers"].push_back({{"size", b.size},
                              {"flags", b.flags},
                              {"mode", b.mode},
                              {"count", b.count},
                              {"exp_name", b.exporterName},
                              {"ino", b.inode},
                              {"name", b.name ? nlohmann::json(*b.name) : nlohmann::json(nullptr)},
                              {"fences", fences},
                              {"attached_devices", b.devices}});
  }
  doc["total_objects"] = info.buffers.size();
  doc["total_bytes"] = info.totalBytes;
  return doc;
}

// A whole debugfs file of a kernel reached through fd-level calls.
Result<std::string> readWhole(uapi::FdCalls& kernel, const char* path) {
  ZBUF_ASSIGN_OR_RETURN(auto fd, kernel.open(path, O_RDONLY | O_CLOEXEC));
  std::string text;
  std::array<char, 16384> chunk{};
  for (;;) {
    auto n = kernel.read(fd.get(), std::as_writable_bytes(std::span(chunk)));
    if (!n.ok() || *n == 0) {
      (void)kernel.close(std::move(fd));
      if (!n.ok()) {
        return std::move(n).error();
      }
      return text;
    }
    text.append(chunk.data(), *n);
  }
}

// zbufd's clients file (daemon/server.h): a header line, then "pid comm files buffers bytes
// inodes" tab-separated.
nlohmann::json clientsJson(const std::string& text) {
  nlohmann::json out = nlohmann::json::array();
  std::istringstream lines(text);
  std::string line;
  std::getline(lines, line);  // the header
  while (std::getline(lines, line)) {
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string field; std::getline(fields, field, '\t');) {
      f.push_back(field);
    }
    if (f.size() < 5) {
      continue;
    }
    nlohmann::json inodes = nlohmann::json::array();
    std::istringstream list(f.size() > 5 ? f[5] : "");
    for (std::uint64_t ino = 0; list >> ino;) {
      inodes.push_back(ino);
    }
    out.push_back({{"pid", std::stoll(f[0])},
                   {"comm", f[1]},
                   {"files", std::stoull(f[2])},
                   {"buffers", std::stoull(f[3])},
                   {"bytes", std::stoull(f[4])},
                   {"buffer_inodes", inodes}});
  }
  return out;
}

int runDaemonInfo(const InfoOptions& o) {
  auto kernel = ipc::RemoteContext::connect(o.daemon);
  if (!kernel.ok()) {
    fmt::print(stderr, "zbuf info: --daemon: {}\n", kernel.error().describe());
    return kExitFailed;
  }
  auto bufinfo = readWhole(**kernel, uapi::kBufInfoPath);
  auto clients = readWhole(**kernel, daemon::kClientsPath);
  for (const auto* r : {&bufinfo, &clients}) {
    if (!r->ok()) {
      fmt::print(stderr, "zbuf info: --daemon: {}\n", r->error().describe());
      return kExitFailed;
    }
  }
  if (o.json) {
    auto info = parseBufInfo(*bufinfo);
    if (!info.ok()) {
      fmt::print(stderr, "zbuf info: the daemon's bufinfo: {}\n", info.error().describe());
      return kExitFailed;
    }
    nlohmann::json doc = toJson(*info);
    doc["daemon"] = (*kernel)->socketPath();
    doc["clients"] = clientsJson(*clients);
    fmt::print("{}\n", doc.dump(2));
    return kExitOk;
  }
  fmt::print("{}", *bufinfo);
  fmt::print(
      "\nClients of zbufd at {} (a file is charged to the process that asked for it, for "
      "as long as it lives):\n{}",
      (*kernel)->socketPath(), *clients);
  return kExitOk;
}

// Where each of the kernel's paths comes from under `backend`: "kernel", "emulated", or
// "missing: <what makes it>" (the kernel backend has no fallback).
std::string providerOf(uapi::Backend backend, uapi::Context& emulated, const std::string& path) {
  const bool real = uapi::requireKernelPath(path).ok();
  const auto nodes = emulated.nodes();
  const bool ours = std::find(nodes.begin(), nodes.end(), path) != nodes.end();
  switch (backend) {
    case uapi::Backend::Kernel:
      return real ? "kernel" : "missing: " + uapi::requireKernelPath(path).error().message();
    case uapi::Backend::Auto:
      return real && uapi::isKernelPath(path) ? "kernel" : ours ? "emulated" : "missing";
    case uapi::Backend::Emulated:
      return ours ? "emulated" : "missing";
  }
  return "missing";
}

// The backend section: what the running kernel has, and where each provider's path comes from.
struct BackendReport {
  uapi::Backend backend;
  uapi::KernelPieces kernel;
  std::vector<std::pair<std::string, std::string>> providers;  // path -> provider
};

BackendReport backendReport(uapi::Backend backend) {
  BackendReport r{backend, uapi::probeKernel(), {}};
  auto ctx = uapi::Context::create();
  std::vector<std::string> paths{"/dev/dma_heap/system", "/dev/dma_heap/hugepage", "/dev/udmabuf",
                                 "/sys/kernel/debug/sync/sw_sync"};
  for (const auto& heap : r.kernel.heaps) {
    const std::string p = "/dev/dma_heap/" + heap;
    if (std::find(paths.begin(), paths.end(), p) == paths.end()) {
      paths.push_back(p);
    }
  }
  for (const auto& p : paths) {
    r.providers.emplace_back(p, providerOf(backend, *ctx, p));
  }
  return r;
}

std::string joinOrNone(const std::vector<std::string>& v) {
  if (v.empty()) {
    return "none";
  }
  std::string out;
  for (const auto& s : v) {
    out += (out.empty() ? "" : ", ") + s;
  }
  return out;
}

void printBackend(const BackendReport& r) {
  fmt::print("\nBackend: {} (--backend emulated|kernel|auto; docs/kernel-lane.md)\n",
             uapi::backendName(r.backend));
  fmt::print("The running kernel has: heaps {}; udmabuf {}; sw_sync {}; IIO devices {}\n",
             joinOrNone(r.kernel.heaps), r.kernel.udmabuf ? "yes" : "no",
             r.kernel.swSync ? "yes" : "no", joinOrNone(r.kernel.iio));
  for (const auto& [path, provider] : r.providers) {
    fmt::print("  {:<34} {}\n", path, provider);
  }
  fmt::print("  {:<34} {}\n", "IIO and FunctionFS devices",
             r.backend == uapi::Backend::Kernel ? "the kernel's (none are emulated)"
                                                : "emulated (zbuf stream's board)");
}

nlohmann::json backendJson(const BackendReport& r) {
  nlohmann::json providers = nlohmann::json::object();
  for (const auto& [path, provider] : r.providers) {
    providers[path] = provider;
  }
  return {{"name", uapi::backendName(r.backend)},
          {"kernel",
           {{"heaps", r.kernel.heaps},
            {"udmabuf", r.kernel.udmabuf},
            {"sw_sync", r.kernel.swSync},
            {"iio", r.kernel.iio}}},
          {"providers", providers}};
}

// The example scene; everything it holds is released when it goes out of scope.
struct Example {
  std::vector<BufferPtr> buffers;
  std::vector<AttachmentPtr> attachments;
  std::vector<FencePtr> fences;

  static Result<Example> build() {
    Example ex;
    auto heap = SystemHeap::instance();
    for (std::uint64_t size : {std::uint64_t{1} << 20, std::uint64_t{64} << 10}) {
      auto b = heap->allocate(size);
      ZBUF_TRY(b);
      ex.buffers.push_back(std::move(*b));
    }
    ZBUF_TRY(ex.buffers[0]->setName("adc-block-0"));
    auto adc = Device::create(DeviceConfig{.name = "iio:device0"});
    auto usb = Device::create(DeviceConfig{.name = "ffs.usb0"});
    for (const auto& dev : {adc, usb}) {
      auto a = ex.buffers[0]->attach(dev);
      ZBUF_TRY(a);
      ex.attachments.push_back(std::move(*a));
    }
    auto timeline = Timeline::create("iio", "iio");
    auto writer = timeline->createFence();
    auto reader = Timeline::create("functionfs", "")->createFence();
    reader->signal();
    Resv& resv = ex.buffers[0]->resv();
    ZBUF_TRY(resv.lock());
    auto reserved = resv.reserveFencesLocked(2);
    if (reserved) {
      resv.addFenceLocked(writer, ResvUsage::Write);
      resv.addFenceLocked(reader, ResvUsage::Read);
    }
    resv.unlock();
    ZBUF_TRY(reserved);
    ex.fences = {writer, reader};
    return ex;
  }

  Example() = default;
  Example(Example&&) = default;
  Example& operator=(Example&&) = default;
  Example(const Example&) = delete;
  Example& operator=(const Example&) = delete;
  ~Example() {
    for (auto& f : fences) {
      f->signal();
    }
  }
};

int runInfo(const InfoOptions& o) {
  auto backend = uapi::parseBackend(o.backend);
  if (!backend.ok()) {
    fmt::print(stderr, "zbuf info: --backend: {}\n", backend.error().message());
    return kExitUsage;
  }
  if (o.daemonOpt->count() != 0) {
    if (o.example) {
      fmt::print(stderr, "zbuf info: --example builds its scene in this process, not in zbufd\n");
      return kExitUsage;
    }
    return runDaemonInfo(o);
  }
  std::optional<Example> example;
  if (o.example) {
    auto ex = Example::build();
    if (!ex) {
      fmt::print(stderr, "zbuf info: building the example failed: {}\n", ex.error().describe());
      return kExitFailed;
    }
    example.emplace(std::move(*ex));
  }
  const BufInfo info = collectBufInfo();
  const BackendReport report = backendReport(*backend);
  if (o.json) {
    nlohmann::json doc = toJson(info);
    doc["backend"] = backendJson(report);
    fmt::print("{}\n", doc.dump(2));
  } else {
    fmt::print("{}", formatBufInfo(info));
    if (!o.example && info.buffers.empty()) {
      fmt::print(
          "\n(zbuf runs embedded: this process owns no buffers. `zbuf info --example` shows a "
          "listing of a small scene.)\n");
    }
    printBackend(report);
  }
  return kExitOk;
}

}  // namespace

void addInfoCommand(CLI::App& app, Runner& runner) {
  auto opts = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "info", "List live buffers with the kernel's bufinfo columns, fences and attached devices");
  cmd->add_flag("--json", opts->json, "print JSON instead of the kernel's text format");
  cmd->add_flag("--example", opts->example,
                "build a small example scene (buffers, devices, fences) and list it");
  cmd->add_option("--backend", opts->backend,
                  "which kernel's providers to list: emulated (default), kernel or auto")
      ->type_name("NAME");
  opts->daemonOpt = cmd->add_option("--daemon", opts->daemon,
                                    "list zbufd's buffers and its client processes instead "
                                    "(SOCKET: $ZBUF_SOCKET, else the default path)")
                        ->expected(0, 1)
                        ->type_name("[SOCKET]");
  cmd->callback([opts, &runner] { runner = [opts] { return runInfo(*opts); }; });
}

}  // namespace zbuf::cli
