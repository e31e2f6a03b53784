// The kernel lane: every uAPI scenario (uapi_scenarios.h) on zbuf's emulation and on the real
// kernel, transcripts compared line by line.
//
// Where the running kernel has the system heap and udmabuf (the lane's VM: Debian's 6.12 under
// QEMU, scripts/qemu-lane.sh), each scenario runs three times: on an emulated Context, on
// KernelCalls (the real kernel) and on AutoCalls (which must pick the real kernel there), and
// all three transcripts must be equal. Everywhere, the emulation's transcript must equal the
// real kernel's as recorded by the lane (docs/results/kernel-lane-6.12.txt), and in the VM the
// live kernel must equal that recording too, so the recording cannot go stale.
//
// ZBUF_LANE_RECORDED: the recording's path (default: the source tree's).
// ZBUF_LANE_DUMP=1: print each kernel transcript between "=== <scenario> ===" and "=== end ==="
// (the lane script collects them into build/lane/kernel-transcripts.txt, the recording's
// source).
// ctest-labels: lane
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "lane/uapi_scenarios.h"
#include "zbuf/uapi/backend.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/kernel_calls.h"

namespace zbuf::lane {
namespace {

bool kernelHasThePieces() {
  const auto pieces = uapi::probeKernel();
  const bool system =
      std::find(pieces.heaps.begin(), pieces.heaps.end(), "system") != pieces.heaps.end();
  return system && pieces.udmabuf;
}

std::string recordingPath() {
  if (const char* p = std::getenv("ZBUF_LANE_RECORDED"); p != nullptr) {
    return p;
  }
  return std::string(ZBUF_SOURCE_DIR) + "/docs/results/kernel-lane-6.12.txt";
}

// The recording: "=== name ===" then the scenario's lines, for each scenario.
std::map<std::string, std::string> readRecording() {
  std::map<std::string, std::string> out;
  std::ifstream in(recordingPath());
  std::string line;
  std::string current;
  while (std::getline(in, line)) {
    if (line == "=== end ===") {
      current.clear();
    } else if (line.starts_with("=== ") && line.ends_with(" ===")) {
      current = line.substr(4, line.size() - 8);
      out[current];
    } else if (!current.empty()) {
      out[current] += line + "\n";
    }
  }
  return out;
}

std::string run(const Scenario& s, uapi::FdCalls& calls) {
  Transcript t;
  s.run(calls, t);
  return t.text();
}

class KernelLane : public ::testing::TestWithParam<Scenario> {};

TEST_P(KernelLane, TheEmulationAnswersAsTheKernel) {
  const Scenario& s = GetParam();
  auto ctx = uapi::Context::create();
  const std::string emulated = run(s, *ctx);
  ASSERT_FALSE(emulated.empty());
  const auto recording = readRecording();
  const auto recorded = recording.find(s.name);
  if (kernelHasThePieces()) {
    uapi::KernelCalls kernel;
    const std::string live = run(s, kernel);
    if (std::getenv("ZBUF_LANE_DUMP") != nullptr) {
      std::cout << "=== " << s.name << " ===\n" << live << "=== end ===\n" << std::flush;
    }
    EXPECT_EQ(emulated, live) << "emulation (left) and the running kernel (right) differ";
    uapi::AutoCalls autoCalls(uapi::Context::create());
    EXPECT_EQ(run(s, autoCalls), live) << "auto (left) and the running kernel (right) differ";
    ASSERT_NE(recorded, recording.end()) << s.name << " is not in " << recordingPath();
    EXPECT_EQ(recorded->second, live) << "the recording (left) is stale: the kernel (right)";
    return;
  }
  ASSERT_NE(recorded, recording.end()) << s.name << " is not in " << recordingPath();
  EXPECT_EQ(emulated, recorded->second)
      << "emulation (left) and the kernel as recorded by the lane (right) differ";
}

INSTANTIATE_TEST_SUITE_P(Uapi, KernelLane, ::testing::ValuesIn(uapiScenarios()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace zbuf::lane
