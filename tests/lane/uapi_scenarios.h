// The uAPI scenarios of the kernel lane: sequences of fd-level calls on the system heap, dma-buf
// files, sync files and udmabuf (reference/linux-dmabuf-semantics.md, section 12), written only
// against FdCalls, so one scenario runs unchanged on the emulation and on the real kernel and
// their transcripts compare line by line (tests/lane/kernel_lane_test.cpp).
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "lane/transcript.h"
#include "zbuf/uapi/fd_calls.h"

namespace zbuf::lane {

struct Scenario {
  std::string name;
  std::function<void(uapi::FdCalls&, Transcript&)> run;
};

// gtest prints a scenario by its name.
inline void PrintTo(const Scenario& s, std::ostream* os) {
  *os << s.name;
}

[[nodiscard]] const std::vector<Scenario>& uapiScenarios();

}  // namespace zbuf::lane
