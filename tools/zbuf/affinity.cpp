// --affinity APP[:HW]: the CPUs of zbuf stream's application thread and of the emulated
// hardware threads, as CPU lists in taskset(1)'s -c form ("0", "0-3", "0,2-3"). The sets are
// checked against what the process may use (sched_getaffinity) before anything runs.
#include <fmt/format.h>

#include <algorithm>

#include "command.h"
#include "zbuf/base/sys.h"

namespace zbuf::cli {

namespace {

constexpr std::uint64_t kMaxCpu = 1023;  // CPU_SETSIZE - 1

Result<unsigned> parseCpu(std::string_view text, std::string_view list) {
  auto n = parseCount(text, 0, kMaxCpu);
  if (!n.ok()) {
    return Error(
        n.error().code(), "affinity",
        fmt::format("'{}' is not a CPU list (e.g. 0, 0-3, 0,2-3): {}", list, n.error().message()));
  }
  return static_cast<unsigned>(*n);
}

}  // namespace

Result<std::vector<unsigned>> parseCpuList(std::string_view text) {
  std::vector<unsigned> cpus;
  if (text.empty()) {
    return Error(EINVAL, "affinity", "an empty CPU list");
  }
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string_view item = text.substr(pos, comma - pos);
    const std::size_t dash = item.find('-');
    ZBUF_ASSIGN_OR_RETURN(auto first, parseCpu(item.substr(0, dash), text));
    unsigned last = first;
    if (dash != std::string_view::npos) {
      ZBUF_ASSIGN_OR_RETURN(auto l, parseCpu(item.substr(dash + 1), text));
      last = l;
      if (last < first) {
        return Error(
            EINVAL, "affinity",
            fmt::format("'{}' is not a CPU list: the range {} runs backwards", text, item));
      }
    }
    for (unsigned cpu = first; cpu <= last; ++cpu) {
      cpus.push_back(cpu);
    }
    pos = comma + 1;
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

std::string formatCpuList(const std::vector<unsigned>& cpus) {
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) {
      ++j;
    }
    out += fmt::format("{}{}", out.empty() ? "" : ",", cpus[i]);
    if (j > i) {
      out += fmt::format("-{}", cpus[j]);
    }
    i = j + 1;
  }
  return out;
}

Result<Affinity> parseAffinity(std::string_view text) {
  Affinity a;
  const std::size_t colon = text.find(':');
  const std::string_view app = text.substr(0, colon);
  const std::string_view hw = colon == std::string_view::npos ? app : text.substr(colon + 1);
  if (app.empty() && hw.empty()) {
    return Error(EINVAL, "affinity", "--affinity needs a CPU list (APP[:HW], e.g. 0:1)");
  }
  for (auto [list, out] : {std::pair{app, &a.app}, std::pair{hw, &a.hw}}) {
    if (list.empty()) {
      continue;
    }
    ZBUF_ASSIGN_OR_RETURN(auto cpus, parseCpuList(list));
    *out = std::move(cpus);
  }
  return a;
}

Result<void> checkAffinity(const Affinity& a) {
  auto available = sys::threadAffinity();
  if (!available.ok()) {
    return Error(available.error().code(), "affinity",
                 fmt::format("cannot read this process's CPUs: {}", available.error().describe()));
  }
  for (const std::vector<unsigned>* set : {&a.app, &a.hw}) {
    for (unsigned cpu : *set) {
      if (!std::binary_search(available->begin(), available->end(), cpu)) {
        return Error(EINVAL, "affinity",
                     fmt::format("--affinity: CPU {} is not available to this process (it may "
                                 "use {}; sched_getaffinity)",
                                 cpu, formatCpuList(*available)));
      }
    }
  }
  return {};
}

}  // namespace zbuf::cli
