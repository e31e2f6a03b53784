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
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "lane/functionfs_scenario.h"
#include "lane/uapi_scenarios.h"
#include "lane/vgem.h"
#include "support/iio_rig.h"
#include "zbuf/core/device.h"
#include "zbuf/devices/pattern.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/backend.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/kernel_calls.h"
#include "zbuf/uapi/kernel_objects.h"

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

// --- zbuf's types over the kernel's objects (kernel_objects.h) ---------------------------------
// These need a real heap: on a host without one they skip, and the lane runs them.

class KernelObjects : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kernelHasThePieces()) {
      GTEST_SKIP() << "no real /dev/dma_heap/system and /dev/udmabuf on this kernel: the kernel "
                      "lane (scripts/qemu-lane.sh, part of the test command) runs these";
    }
  }
  // A buffer from the real system heap.
  UniqueFd realBuffer(std::uint64_t len) {
    auto heap = kernel.open("/dev/dma_heap/system", O_RDONLY);
    EXPECT_TRUE(heap.ok());
    uapi::DmaHeapAllocationData data{};
    data.len = len;
    data.fdFlags = O_RDWR | O_CLOEXEC;
    EXPECT_TRUE(kernel.ioctl(heap->get(), uapi::kDmaHeapIoctlAlloc, &data).ok());
    return UniqueFd::adopt(static_cast<int>(data.fd));
  }
  uapi::KernelCalls kernel;
};

TEST_F(KernelObjects, ARealDmaBufIsABufferOfTheEmulatedKernel) {
  constexpr std::uint64_t kLen = 64 * 1024ULL;
  UniqueFd fd = realBuffer(kLen);
  auto ctx = uapi::Context::create();
  EXPECT_EQ(ctx->lookup(fd.get()).value(), nullptr);  // a foreign fd to the context
  auto buffer = ctx->bufferFromFd(fd.get());
  ASSERT_TRUE(buffer.ok()) << buffer.error().describe();
  EXPECT_TRUE(uapi::isKernelDmaBuf(**buffer));
  EXPECT_EQ((*buffer)->size(), kLen);
  EXPECT_EQ((*buffer)->exporterName(), "system");           // the kernel's exp_name
  EXPECT_EQ(ctx->bufferFromFd(fd.get()).value(), *buffer);  // one Buffer per real file
  // CPU access through the real SYNC, memory seen through the real fd's own mapping.
  {
    auto access = CpuAccess::begin(*buffer, DmaDirection::ToDevice);
    ASSERT_TRUE(access.ok()) << access.error().describe();
    auto map = (*buffer)->mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED);
    ASSERT_TRUE(map.ok()) << map.error().describe();
    std::memset(map->data(), 0xa5, 4096);
    ASSERT_TRUE(access->end().ok());
  }
  auto real = kernel.mmap(fd.get(), kLen, PROT_READ, MAP_SHARED, 0);
  ASSERT_TRUE(real.ok());
  EXPECT_EQ(static_cast<unsigned char>(real->data()[4095]), 0xa5);
  // A device maps it: segments covering the whole buffer.
  auto device = Device::create({.name = "lane-dev"});
  auto attachment = (*buffer)->attach(device);
  ASSERT_TRUE(attachment.ok()) << attachment.error().describe();
  auto table = (*attachment)->mapUnlocked(DmaDirection::FromDevice);
  ASSERT_TRUE(table.ok()) << table.error().describe();
  EXPECT_EQ(table->totalLength(), kLen);
  (*attachment)->unmapUnlocked(*table, DmaDirection::FromDevice);
  // A pipe is no dma-buf, for the emulated kernel as for the real one.
  auto pipe = sys::pipe();
  ASSERT_TRUE(pipe.ok());
  EXPECT_EQ(ctx->bufferFromFd(pipe->first.get()).code(), EINVAL);
}

TEST_F(KernelObjects, TheEmulatedAdcFillsABufferFromTheRealHeap) {
  iio::testing::IioRig rig;
  constexpr std::uint64_t kBlock = 16 * 1024ULL;
  UniqueFd fd = realBuffer(kBlock);
  ASSERT_EQ(rig.attach(fd.get()), 0);
  ASSERT_EQ(rig.enable(), 0);
  ASSERT_EQ(rig.enqueue(fd.get(), kBlock), 0);
  // The ADC's write fence is zbuf's (the real kernel never sees it): wait on the buffer's
  // reservation through zbuf's API, as a driver would.
  auto buffer = rig.ctx->bufferFromFd(fd.get()).value();
  ASSERT_TRUE(buffer->resv().waitTimeout(ResvUsage::Write, std::chrono::seconds(10)).ok());
  EXPECT_EQ(rig.stats().dmabufCompleted, 1U);
  // Every byte, read through the real kernel's mapping after the real SYNC.
  auto map = kernel.mmap(fd.get(), kBlock, PROT_READ, MAP_SHARED, 0);
  ASSERT_TRUE(map.ok());
  uapi::DmaBufSync sync{uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRead};
  ASSERT_TRUE(kernel.ioctl(fd.get(), uapi::kDmaBufIoctlSync, &sync).ok());
  PatternChecker checker(rig.device->format(), PatternKind::Ramp);
  EXPECT_EQ(checker.countMismatches(map->bytes(), 0), 0U);
  sync.flags = uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRead;
  ASSERT_TRUE(kernel.ioctl(fd.get(), uapi::kDmaBufIoctlSync, &sync).ok());
  ASSERT_EQ(rig.detach(fd.get()), 0);
}

TEST_F(KernelObjects, ARealSyncFileIsAFenceOfTheEmulatedKernel) {
  UniqueFd fd = realBuffer(4096);
  uapi::DmaBufExportSyncFile arg{static_cast<std::uint32_t>(uapi::kDmaBufSyncRw), -1};
  ASSERT_TRUE(kernel.ioctl(fd.get(), uapi::kDmaBufIoctlExportSyncFile, &arg).ok());
  UniqueFd syncFile = UniqueFd::adopt(arg.fd);
  auto ctx = uapi::Context::create();
  auto fence = ctx->syncFileFence(syncFile.get());
  ASSERT_TRUE(fence.ok()) << fence.error().describe();
  EXPECT_TRUE((*fence)->isSignaled());  // nothing was pending on the real buffer
  EXPECT_EQ((*fence)->status(), 1);
  EXPECT_EQ((*fence)->driverName(), "stub");  // the kernel's stub fence, by its own names
  EXPECT_EQ(ctx->syncFileFence(syncFile.get()).value(), *fence);
  // IMPORT_SYNC_FILE of the real sync file into an emulated buffer.
  auto heap = ctx->open("/dev/dma_heap/system", O_RDONLY);
  ASSERT_TRUE(heap.ok());
  uapi::DmaHeapAllocationData data{};
  data.len = 4096;
  data.fdFlags = O_RDWR | O_CLOEXEC;
  ASSERT_TRUE(ctx->ioctl(heap->get(), uapi::kDmaHeapIoctlAlloc, &data).ok());
  EXPECT_NE(ctx->lookup(static_cast<int>(data.fd)).value(), nullptr);  // emulated
  uapi::DmaBufImportSyncFile import{static_cast<std::uint32_t>(uapi::kDmaBufSyncWrite),
                                    syncFile.get()};
  EXPECT_TRUE(
      ctx->ioctl(static_cast<int>(data.fd), uapi::kDmaBufIoctlImportSyncFile, &import).ok());
  // A real dma-buf is no sync file.
  EXPECT_EQ(ctx->syncFileFence(fd.get()).code(), EINVAL);
  (void)ctx->close(static_cast<int>(data.fd));
}

}  // namespace
}  // namespace zbuf::lane

namespace zbuf::lane {
namespace {

// Fences the real kernel has pending: vgem's (the lane loads the module).
class KernelFences : public KernelObjects {
 protected:
  void SetUp() override {
    KernelObjects::SetUp();
    if (IsSkipped()) {
      return;
    }
    auto v = Vgem::open();
    if (!v.ok()) {
      GTEST_SKIP() << "no vgem (/dev/dri/card0: " << v.error().describe()
                   << "): the kernel lane loads it";
    }
    vgem.emplace(std::move(*v));
  }
  std::optional<Vgem> vgem;
};

TEST_F(KernelFences, APendingKernelFenceWakesAWaiterOfTheEmulatedKernel) {
  std::uint32_t handle = 0;
  auto buf = vgem->createDmaBuf(4096, handle);
  ASSERT_TRUE(buf.ok()) << buf.error().describe();
  auto id = vgem->attachFence(handle, kVgemFenceWrite);
  ASSERT_TRUE(id.ok()) << id.error().describe();
  uapi::DmaBufExportSyncFile arg{static_cast<std::uint32_t>(uapi::kDmaBufSyncRead), -1};
  ASSERT_TRUE(kernel.ioctl(buf->get(), uapi::kDmaBufIoctlExportSyncFile, &arg).ok());
  UniqueFd syncFile = UniqueFd::adopt(arg.fd);
  auto ctx = uapi::Context::create();
  auto fence = ctx->syncFileFence(syncFile.get());
  ASSERT_TRUE(fence.ok()) << fence.error().describe();
  EXPECT_FALSE((*fence)->isSignaled());
  EXPECT_EQ((*fence)->status(), 0);
  EXPECT_EQ((*fence)->driverName(), "vgem");
  // A waiter of the emulated kernel sleeps until the real kernel signals.
  Result<Fence::Duration> waited = Fence::Duration::zero();
  std::thread waiter([&] { waited = (*fence)->waitTimeout(std::chrono::seconds(30)); });
  ASSERT_TRUE(vgem->signal(*id).ok());
  waiter.join();
  ASSERT_TRUE(waited.ok()) << waited.error().describe();
  EXPECT_GT(*waited, Fence::Duration::zero());  // woken by the signal, not by the timeout
  EXPECT_TRUE((*fence)->isSignaled());
  EXPECT_EQ((*fence)->status(), 1);
}

TEST_F(KernelFences, TheEmulatedAdcWaitsForTheKernelsWriter) {
  constexpr std::uint32_t kBlock = 16 * 1024;
  iio::testing::IioRig rig;
  std::uint32_t handle = 0;
  auto buf = vgem->createDmaBuf(kBlock, handle);
  ASSERT_TRUE(buf.ok()) << buf.error().describe();
  ASSERT_EQ(rig.attach(buf->get()), 0);
  ASSERT_EQ(rig.enable(), 0);
  auto id = vgem->attachFence(handle, kVgemFenceWrite);
  ASSERT_TRUE(id.ok());
  // The kernel's writer is pending: the ADC may not write (O_NONBLOCK: EBUSY at once).
  rig.setNonBlocking(true);
  EXPECT_EQ(rig.enqueue(buf->get(), kBlock), -EBUSY);
  EXPECT_EQ(rig.stats().dmabufEnqueued, 0U);
  ASSERT_TRUE(vgem->signal(*id).ok());
  ASSERT_EQ(rig.enqueue(buf->get(), kBlock), 0);
  auto buffer = rig.ctx->bufferFromFd(buf->get()).value();
  ASSERT_TRUE(buffer->resv().waitTimeout(ResvUsage::Write, std::chrono::seconds(10)).ok());
  auto map = kernel.mmap(buf->get(), kBlock, PROT_READ, MAP_SHARED, 0);
  ASSERT_TRUE(map.ok()) << map.error().describe();
  PatternChecker checker(rig.device->format(), PatternKind::Ramp);
  EXPECT_EQ(checker.countMismatches(map->bytes(), 0), 0U);
  ASSERT_EQ(rig.detach(buf->get()), 0);
}

}  // namespace
}  // namespace zbuf::lane

namespace zbuf::lane {
namespace {

// The zbuf binary on the real kernel (the lane puts it in the VM and names it in ZBUF_LANE_CLI):
// its standard output, or nothing if it failed (the exit status in `status`).
std::string runCli(const std::vector<std::string>& args, int& status) {
  const char* cli = std::getenv("ZBUF_LANE_CLI");
  std::vector<const char*> argv{cli};
  for (const auto& a : args) {
    argv.push_back(a.c_str());
  }
  argv.push_back(nullptr);
  // fork and exec, not popen: the VM has no shell.
  auto pipe = sys::pipe();
  if (!pipe.ok()) {
    status = -1;
    return {};
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe->second.get(), STDOUT_FILENO);
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): execv's argv is char* const[]
    ::execv(cli, const_cast<char* const*>(argv.data()));
    std::_Exit(127);
  }
  pipe->second.reset();
  std::string out;
  std::array<std::byte, 4096> chunk{};
  for (;;) {
    auto n = sys::read(pipe->first.get(), chunk);
    if (!n.ok() || *n == 0) {
      break;
    }
    out.append(reinterpret_cast<const char*>(chunk.data()), *n);
  }
  ::waitpid(pid, &status, 0);
  return out;
}

class KernelCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("ZBUF_LANE_CLI") == nullptr) {
      GTEST_SKIP() << "ZBUF_LANE_CLI is not set: the kernel lane runs this with its zbuf binary";
    }
  }
};

TEST_F(KernelCli, InfoListsTheKernelsProviders) {
  int status = 0;
  const std::string out = runCli({"info", "--backend", "kernel", "--json"}, status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << out;
  const auto doc = nlohmann::json::parse(out);
  EXPECT_EQ(doc["backend"]["name"], "kernel");
  EXPECT_EQ(doc["backend"]["providers"]["/dev/dma_heap/system"], "kernel");
  EXPECT_EQ(doc["backend"]["providers"]["/dev/udmabuf"], "kernel");
  // Debian's kernel has no sw_sync: named missing, with what makes it.
  const std::string swSync = doc["backend"]["providers"]["/sys/kernel/debug/sync/sw_sync"];
  EXPECT_NE(swSync.find("CONFIG_SW_SYNC"), std::string::npos) << swSync;
}

// The main job with the real kernel's heap behind its zero-copy buffers: every byte checked by
// the far end, on each path.
TEST_F(KernelCli, StreamRunsZeroCopyOnTheKernelsHeapBuffers) {
  for (const char* path : {"iio-to-usb", "iio-to-app", "usb-to-dac"}) {
    int status = 0;
    const std::string out = runCli({"stream", "--backend", "auto", "--path", path, "--mode",
                                    "dmabuf", "--seconds", "0.5", "--block-size", "64K", "--json"},
                                   status);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << path << ": " << status << out;
    const auto doc = nlohmann::json::parse(out);
    ASSERT_EQ(doc["runs"].size(), 1U) << out;
    const auto& run = doc["runs"][0];
    EXPECT_EQ(doc["settings"]["backend"], "auto") << path;
    EXPECT_EQ(run["errors"], 0) << path;
    EXPECT_EQ(run["mismatches"], 0) << path;
    EXPECT_GT(run["verified_bytes"].get<std::uint64_t>(), 0U) << path;
    // Every byte moved was checked (usb-to-dac's DAC also checks the blocks in flight at the
    // end, so it may check more than the timed part moved).
    EXPECT_GE(run["verified_bytes"].get<std::uint64_t>(), run["bytes"].get<std::uint64_t>())
        << path;
  }
  // The kernel backend refuses, naming the device the kernel lacks.
  int status = 0;
  (void)runCli({"stream", "--backend", "kernel", "--seconds", "0.1"}, status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
}

}  // namespace
}  // namespace zbuf::lane

namespace zbuf::lane {
namespace {

// --- FunctionFS on a controller without scatter-gather (dummy_hcd) ----------------------------

Result<void> writeText(const std::string& path, const std::string& text) {
  ZBUF_ASSIGN_OR_RETURN(auto fd, sys::open(path.c_str(), O_WRONLY));
  ZBUF_TRY(sys::write(fd.get(), std::as_bytes(std::span(text))));
  return {};
}

Result<void> makeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return Error(errno, "mkdir", path);
  }
  return {};
}

constexpr const char* kGadget = "/sys/kernel/config/usb_gadget/zbuf";
constexpr const char* kKernelMount = "/dev/usb-ffs/lane";

// A gadget through configfs with one FunctionFS instance ("lane"), mounted at kKernelMount, as
// a user sets one up on a board (libcomposite, usb_f_fs).
Result<void> makeKernelGadget() {
  const std::string g = kGadget;
  ZBUF_TRY(makeDir(g));
  ZBUF_TRY(writeText(g + "/idVendor", "0x1d6b"));
  ZBUF_TRY(writeText(g + "/idProduct", "0x0104"));
  ZBUF_TRY(makeDir(g + "/configs/c.1"));
  ZBUF_TRY(makeDir(g + "/functions/ffs.lane"));
  if (::symlink((g + "/functions/ffs.lane").c_str(), (g + "/configs/c.1/ffs.lane").c_str()) != 0 &&
      errno != EEXIST) {
    return Error(errno, "symlink", "configs/c.1/ffs.lane");
  }
  ZBUF_TRY(makeDir("/dev/usb-ffs"));
  ZBUF_TRY(makeDir(kKernelMount));
  if (::mount("lane", kKernelMount, "functionfs", 0, nullptr) != 0 && errno != EBUSY) {
    return Error(errno, "mount functionfs", kKernelMount);
  }
  return {};
}

// Binds the gadget to the first UDC (dummy_udc.0).
Result<void> bindKernelGadget() {
  std::error_code ec;
  for (const auto& udc : std::filesystem::directory_iterator("/sys/class/udc", ec)) {
    return writeText(std::string(kGadget) + "/UDC", udc.path().filename().string());
  }
  return Error(ENODEV, "bind", "no UDC in /sys/class/udc");
}

TEST(KernelFunctionFs, TheEmulationAnswersAsTheKernelOnAControllerWithoutScatterGather) {
  constexpr const char* kName = "functionfs_without_scatter_gather";
  usb::testing::Rig rig(usb::testing::RigOptions{.link = {.scatterGather = false},
                                                 .descriptorsFromEp0 = true,
                                                 .enumerate = true,
                                                 .name = "lane"});
  Transcript emulated;
  functionFsScenario(*rig.ctx, emulated, rig.mount, [] { return Result<void>{}; });
  const auto recording = readRecording();
  const auto recorded = recording.find(kName);
  const bool gadgetFs = std::filesystem::exists("/sys/kernel/config/usb_gadget");
  if (!kernelHasThePieces() || !gadgetFs) {
    ASSERT_NE(recorded, recording.end()) << kName << " is not in " << recordingPath();
    EXPECT_EQ(emulated.text(), recorded->second)
        << "emulation (left) and the kernel as recorded by the lane (right) differ";
    return;
  }
  ASSERT_TRUE(makeKernelGadget().ok());
  uapi::KernelCalls kernel;
  Transcript live;
  functionFsScenario(kernel, live, kKernelMount, bindKernelGadget);
  if (std::getenv("ZBUF_LANE_DUMP") != nullptr) {
    std::cout << "=== " << kName << " ===\n" << live.text() << "=== end ===\n" << std::flush;
  }
  EXPECT_EQ(emulated.text(), live.text())
      << "emulation (left) and the running kernel (right) differ";
  ASSERT_NE(recorded, recording.end()) << kName << " is not in " << recordingPath();
  EXPECT_EQ(recorded->second, live.text()) << "the recording (left) is stale: the kernel (right)";
}

}  // namespace
}  // namespace zbuf::lane
