// Pipeline: sets up a board in a fresh context for one run (or uses zbufd's), drives it as an
// application does (paths and fd-level calls only, with the loops of loops.cpp), and measures
// the run (wall time, application and hardware CPU through cpu::split(), and what the far end
// verified, read from the test bench's files).
#include "zbuf/stream/pipeline.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <thread>

#include "stream/stages.h"
#include "stream/test_bench.h"
#include "zbuf/base/hw_thread.h"
#include "zbuf/base/sys.h"
#include "zbuf/devices/board.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"

namespace zbuf {

const char* toString(StreamPath p) noexcept {
  switch (p) {
    case StreamPath::IioToUsb:
      return "iio-to-usb";
    case StreamPath::IioToApp:
      return "iio-to-app";
    case StreamPath::UsbToDac:
      return "usb-to-dac";
  }
  return "?";
}

const char* toString(StreamMode m) noexcept {
  return m == StreamMode::Fileio ? "fileio" : "dmabuf";
}

Result<StreamPath> parseStreamPath(std::string_view s) {
  for (StreamPath p : {StreamPath::IioToUsb, StreamPath::IioToApp, StreamPath::UsbToDac}) {
    if (s == toString(p)) {
      return p;
    }
  }
  return Error(EINVAL, "parseStreamPath",
               fmt::format("unknown path '{}' (iio-to-usb, iio-to-app or usb-to-dac)", s));
}

Result<StreamMode> parseStreamMode(std::string_view s) {
  for (StreamMode m : {StreamMode::Fileio, StreamMode::Dmabuf}) {
    if (s == toString(m)) {
      return m;
    }
  }
  return Error(EINVAL, "parseStreamMode", fmt::format("unknown mode '{}' (fileio or dmabuf)", s));
}

Result<StreamCoherency> parseStreamCoherency(std::string_view s) {
  constexpr const char* kOp = "parseStreamCoherency";
  auto value = [&](std::string_view v) -> Result<bool> {
    if (v == "coherent") {
      return true;
    }
    if (v == "non-coherent") {
      return false;
    }
    return Error(EINVAL, kOp, fmt::format("unknown coherency '{}' (coherent or non-coherent)", v));
  };
  if (s.find('=') == std::string_view::npos) {
    ZBUF_ASSIGN_OR_RETURN(auto all, value(s));
    return StreamCoherency{all, all, all};
  }
  StreamCoherency c;
  while (!s.empty()) {
    const std::size_t comma = s.find(',');
    const std::string_view item = s.substr(0, comma);
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return Error(EINVAL, kOp, fmt::format("'{}' is not device=coherency", item));
    }
    const std::string_view name = item.substr(0, eq);
    ZBUF_ASSIGN_OR_RETURN(auto v, value(item.substr(eq + 1)));
    if (name == "adc") {
      c.adc = v;
    } else if (name == "dac") {
      c.dac = v;
    } else if (name == "usb") {
      c.usb = v;
    } else {
      return Error(EINVAL, kOp, fmt::format("unknown device '{}' (adc, dac or usb)", name));
    }
  }
  return c;
}

std::string toString(const StreamCoherency& c) {
  if (c.adc && c.dac && c.usb) {
    return "coherent";
  }
  if (!c.adc && !c.dac && !c.usb) {
    return "non-coherent";
  }
  std::string out;
  for (const auto& [name, coherent] : {std::pair{"adc", c.adc}, {"dac", c.dac}, {"usb", c.usb}}) {
    if (!coherent) {
      out += fmt::format("{}{}=non-coherent", out.empty() ? "" : ",", name);
    }
  }
  return out;
}

Pipeline::Pipeline(StreamConfig config, std::shared_ptr<uapi::FdCalls> kernel)
    : config_(std::move(config)),
      kernel_(std::move(kernel)),
      stop_(std::make_shared<std::atomic<bool>>(false)) {}

namespace {

// A kernel whose board is not this run's (zbufd's): the hardware's settings are the board's,
// read from its bench file; what only a board built for the run can do is refused.
Result<void> adoptBoard(uapi::FdCalls& kernel, StreamConfig& c) {
  constexpr const char* kOp = "Pipeline::create";
  const StreamConfig defaults;
  if (c.failTransfer != 0 || c.coherency != defaults.coherency || c.skipSync.any() ||
      c.checkCpuAccess) {
    return Error(EINVAL, kOp,
                 "fault injection, coherency and checked CPU access configure the board, which "
                 "is the daemon's: run them embedded");
  }
  pipeline::TestBench bench(kernel);
  auto board = bench.board();
  if (!board.ok()) {
    return Error(board.error().code(), kOp,
                 fmt::format("the kernel has no board to stream on ({})", board.error().message()));
  }
  c.format.channels = static_cast<unsigned>(board->count("channels"));
  c.format.bytesPerSample = static_cast<unsigned>(board->count("bytes_per_sample"));
  c.format.isSigned = board->count("signed") != 0;
  ZBUF_ASSIGN_OR_RETURN(c.pattern, parsePatternKind(board->text("pattern")));
  c.sampleRate = board->count("sample_rate");
  c.benchmark = board->count("benchmark") != 0;
  ZBUF_ASSIGN_OR_RETURN(c.link, parseLinkSpeed(board->text("link")));
  return {};
}

}  // namespace

Result<Pipeline> Pipeline::create(StreamConfig config, std::shared_ptr<uapi::FdCalls> kernel) {
  constexpr const char* kOp = "Pipeline::create";
  if (kernel && config.backend != uapi::Backend::Emulated) {
    return Error(EINVAL, kOp,
                 fmt::format("the {} backend is for the embedded kernel, not a daemon's",
                             uapi::backendName(config.backend)));
  }
  if (config.backend == uapi::Backend::Kernel) {
    // The real kernel has the heaps, but no IIO or FunctionFS device with DMABUF to stream
    // between: name the first one missing.
    for (const char* path : {Board::kAdcPath, Board::kDacPath, "/dev/usb-ffs/zbuf/ep0"}) {
      ZBUF_TRY(uapi::requireKernelPath(path));
    }
  }
  if (kernel) {
    ZBUF_TRY(adoptBoard(*kernel, config));
  }
  ZBUF_TRY(config.format.validate());
  const std::uint64_t frame = config.format.frameBytes();
  if (config.blockBytes == 0 || config.blockBytes % frame != 0) {
    return Error(EINVAL, kOp,
                 fmt::format("block size {} must be a non-zero multiple of the frame size {}",
                             config.blockBytes, frame));
  }
  if (config.blockBytes > (1ULL << 30)) {
    return Error(EINVAL, kOp, fmt::format("block size {} is over 1 GiB", config.blockBytes));
  }
  if (config.blocks == 0 || config.blocks > 64) {
    return Error(EINVAL, kOp, fmt::format("{} buffers in flight (1..64)", config.blocks));
  }
  if (config.batch > config.blocks) {
    return Error(EINVAL, kOp,
                 fmt::format("a batch of {} blocks is more than the {} in flight", config.batch,
                             config.blocks));
  }
  if (config.bytes == 0 && config.duration <= std::chrono::nanoseconds::zero()) {
    return Error(EINVAL, kOp, "neither a byte count nor a positive duration to stop at");
  }
  if (config.failTransfer != 0 && (config.failErrno <= 0 || config.failErrno > 4095)) {
    return Error(EINVAL, kOp, fmt::format("fault errno {} out of 1..4095", config.failErrno));
  }
  return Pipeline(config, std::move(kernel));
}

unsigned effectiveBatch(const StreamConfig& config) noexcept {
  return config.batch != 0 ? config.batch : std::max(1U, config.blocks / 2);
}

namespace {

using pipeline::DmabufStage;
using pipeline::FileioSink;
using pipeline::IioStream;
using pipeline::RunControl;
using pipeline::StopWatch;
using pipeline::TestBench;
using pipeline::UsbEndpoint;

// The device's fileio ring holds as many stream blocks as the zero-copy run has buffers in
// flight (`--blocks`), so both modes move the same blocks through the same depth (libiio sizes
// its buffer to the application's block, and the kernel's buffer-dma splits it into blocks).

BoardConfig boardConfig(const StreamConfig& c) {
  BoardConfig b;
  b.format = c.format;
  b.pattern = c.pattern;
  b.sampleRate = c.sampleRate;
  b.benchmark = c.benchmark;
  b.link = c.link;
  b.coherentAdc = c.coherency.adc;
  b.coherentDac = c.coherency.dac;
  b.coherentUsb = c.coherency.usb;
  b.skipAdcEnd = c.skipSync.test(SkippedSync::AdcEnd);
  b.skipDacBegin = c.skipSync.test(SkippedSync::DacBegin);
  b.skipUsbBegin = c.skipSync.test(SkippedSync::UsbBegin);
  b.skipUsbEnd = c.skipSync.test(SkippedSync::UsbEnd);
  b.iioFileioBlocks = c.blocks;
  b.dmaIdleSpin = c.dmaIdleSpin;
  b.iioLength = c.blockBytes * c.blocks / c.format.frameBytes();
  if (c.failTransfer != 0) {
    b.faultSite = c.path == StreamPath::IioToApp ? FaultSite::Adc : FaultSite::UsbLink;
    b.faultTransfer = c.failTransfer;
    b.faultErrno = c.failErrno;
  }
  return b;
}

std::uint64_t lengthFrames(const StreamConfig& c) {
  return c.blockBytes * c.blocks / c.format.frameBytes();
}

Result<std::unique_ptr<IioStream>> openAdc(uapi::FdCalls& ctx, const StreamConfig& c) {
  return IioStream::open(ctx, Board::kAdcPath, Board::kAdcSysfs, lengthFrames(c), true);
}

Result<std::unique_ptr<IioStream>> openDac(uapi::FdCalls& ctx, const StreamConfig& c) {
  return IioStream::open(ctx, Board::kDacPath, Board::kDacSysfs, lengthFrames(c), false);
}

Result<std::unique_ptr<UsbEndpoint>> openEndpoint(uapi::FdCalls& ctx, unsigned index) {
  return UsbEndpoint::open(ctx, fmt::format("{}/ep{}", Board::kFunctionFsMount, index),
                           index == Board::kUsbIn);
}

// The buffers of a zero-copy run: allocated from /dev/dma_heap/system, named, attached to every
// stage; detached and closed on scope exit.
class BufferSet {
 public:
  static Result<BufferSet> create(uapi::FdCalls& ctx, const StreamConfig& c,
                                  std::vector<DmabufStage*> stages) {
    BufferSet set(ctx);
    set.stages_ = std::move(stages);
    ZBUF_ASSIGN_OR_RETURN(auto heap, ctx.open("/dev/dma_heap/system", O_RDONLY));
    for (unsigned i = 0; i < c.blocks; ++i) {
      uapi::DmaHeapAllocationData data{};
      data.len = c.blockBytes;
      data.fdFlags = O_RDWR | O_CLOEXEC;
      ZBUF_TRY(ctx.ioctl(heap.get(), uapi::kDmaHeapIoctlAlloc, &data));
      const int fd = static_cast<int>(data.fd);
      set.fds_.push_back(UniqueFd::adopt(fd));
      set.raw_.push_back(fd);
      if (c.checkCpuAccess) {
        // The debug switch ZBUF_CHECK_CPU_ACCESS=1 sets for every buffer, for this run's only.
        // An embedded context's driver-side call (a daemon's board refuses the switch: create()).
        auto* embedded = dynamic_cast<uapi::Context*>(&ctx);
        auto b = embedded != nullptr ? embedded->bufferFromFd(fd)
                                     : Result<BufferPtr>(Error(ENOTSUP, "check"));
        if (b.ok()) {
          (*b)->setCpuAccessChecked(true);
        }
      }
      const std::string name = fmt::format("stream-{}", i);
      // ioctl(2) takes a void* for every request; this one only reads it.
      // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): see above
      (void)ctx.ioctl(fd, uapi::kDmaBufSetName, const_cast<char*>(name.c_str()));
      for (DmabufStage* s : set.stages_) {
        ZBUF_TRY(s->attach(fd));
        set.attached_.emplace_back(s, fd);
      }
    }
    (void)ctx.close(std::move(heap));
    return set;
  }
  explicit BufferSet(uapi::FdCalls& ctx) : ctx_(&ctx) {}
  BufferSet(BufferSet&&) = default;
  BufferSet& operator=(BufferSet&&) = default;
  BufferSet(const BufferSet&) = delete;
  BufferSet& operator=(const BufferSet&) = delete;
  ~BufferSet() {
    // Last attached first. std::views::reverse would do, but the clang of clang-tidy and of the
    // fuzz build cannot compile libstdc++ 12's ranges.
    // NOLINTNEXTLINE(modernize-loop-convert): see above
    for (auto it = attached_.rbegin(); it != attached_.rend(); ++it) {
      (void)it->first->detach(it->second);
    }
    for (UniqueFd& fd : fds_) {
      (void)ctx_->close(std::move(fd));
    }
  }
  [[nodiscard]] const std::vector<int>& fds() const { return raw_; }

 private:
  uapi::FdCalls* ctx_;
  std::vector<DmabufStage*> stages_;
  std::vector<std::pair<DmabufStage*, int>> attached_;
  std::vector<UniqueFd> fds_;
  std::vector<int> raw_;
};

// What a path's run produced, before the common accounting.
struct PathOutcome {
  std::uint64_t bytes = 0;
  std::uint64_t verified = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t gaps = 0;  // the host's: transfers lost on the wire (IN) or resent (OUT)
};

Result<PathOutcome> runIioToUsb(uapi::FdCalls& ctx, TestBench& bench, const StreamConfig& c,
                                StreamMode mode, RunControl& control) {
  ZBUF_ASSIGN_OR_RETURN(auto ep, openEndpoint(ctx, Board::kUsbIn));
  ZBUF_ASSIGN_OR_RETURN(auto adc, openAdc(ctx, c));
  // The host checks the stream from where the ADC stands (0 on a board built for this run).
  ZBUF_ASSIGN_OR_RETURN(auto adcAtStart, bench.iio(0));
  ZBUF_TRY(bench.resetHost(Board::kUsbIn, adcAtStart.count("stream_offset")));
  IioStream& port = *adc;
  if (mode == StreamMode::Fileio) {
    ZBUF_TRY(port.enable(true));
    control.begin();
    {
      const StopWatch watch(control, [&port] { (void)port.enable(false); });
      pipeline::runFileioCopy(port, *ep, c.blockBytes, control);
    }
    control.end();
    (void)port.enable(false);
  } else {
    ZBUF_ASSIGN_OR_RETURN(auto set, BufferSet::create(ctx, c, {adc.get(), ep.get()}));
    ZBUF_TRY(port.enable(true));
    control.begin();
    {
      const StopWatch watch(control, [&port] { (void)port.enable(false); });
      pipeline::runDmabufChain(ctx, port, *ep, set.fds(), c.blockBytes, control);
    }
    control.end();
    (void)port.enable(false);  // blocks still queued to the ADC signal -EINTR
  }
  adc.reset();
  ep.reset();
  ZBUF_ASSIGN_OR_RETURN(auto host, bench.host(Board::kUsbIn));
  PathOutcome out;
  out.bytes = host.count("bytes");
  out.verified = host.count("verified");
  out.mismatches = host.count("mismatches");
  out.gaps = host.count("gaps");
  return out;
}

Result<PathOutcome> runUsbToDac(uapi::FdCalls& ctx, TestBench& bench, const StreamConfig& c,
                                StreamMode mode, RunControl& control) {
  ZBUF_ASSIGN_OR_RETURN(auto ep, openEndpoint(ctx, Board::kUsbOut));
  ZBUF_ASSIGN_OR_RETURN(auto dac, openDac(ctx, c));
  // The host sends the stream from where the DAC's checker stands; the DAC's counters are
  // read as differences (a daemon's board has streamed before).
  ZBUF_ASSIGN_OR_RETURN(auto dacAtStart, bench.iio(1));
  ZBUF_TRY(bench.resetHost(Board::kUsbOut, dacAtStart.count("stream_offset")));
  ZBUF_TRY(bench.hostSending(Board::kUsbOut, true));
  const auto played = [&]() -> std::uint64_t {
    auto now = bench.iio(1);
    return now.ok() ? now->count("hardware_bytes") - dacAtStart.count("hardware_bytes") : 0;
  };
  std::uint64_t bytes = 0;
  IioStream& port = *dac;
  if (mode == StreamMode::Fileio) {
    ZBUF_TRY(port.enable(true));
    control.begin();
    {
      const StopWatch watch(control, [&port] { (void)port.enable(false); });
      const std::uint64_t written = pipeline::runFileioCopy(*ep, port, c.blockBytes, control);
      // write() returns once the DAC's ring took the data: let the hardware play it out (the
      // board is the test bench here, as a logic analyser on the DAC's output would be),
      // unless the run was stopped.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!control.aborted() && played() < written &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    control.end();
    (void)port.enable(false);
    bytes = played();  // what the DAC played, not what it was handed
  } else {
    ZBUF_ASSIGN_OR_RETURN(auto set, BufferSet::create(ctx, c, {ep.get(), dac.get()}));
    ZBUF_TRY(port.enable(true));
    control.begin();
    {
      const StopWatch watch(control, [&port] { (void)port.enable(false); });
      bytes = pipeline::runDmabufChain(ctx, *ep, port, set.fds(), c.blockBytes, control);
    }
    control.end();
    (void)port.enable(false);
  }
  (void)bench.hostSending(Board::kUsbOut, false);
  dac.reset();
  ep.reset();
  ZBUF_ASSIGN_OR_RETURN(auto dacAtEnd, bench.iio(1));
  ZBUF_ASSIGN_OR_RETURN(auto host, bench.host(Board::kUsbOut));
  PathOutcome out;
  out.bytes = bytes;
  out.verified = dacAtEnd.count("checked") - dacAtStart.count("checked");
  out.mismatches = dacAtEnd.count("mismatches") - dacAtStart.count("mismatches");
  out.gaps = host.count("gaps");
  return out;
}

Result<PathOutcome> runIioToApp(uapi::FdCalls& ctx, TestBench& bench, const StreamConfig& c,
                                StreamMode mode, RunControl& control) {
  ZBUF_ASSIGN_OR_RETURN(auto adc, openAdc(ctx, c));
  const PatternChecker checker(c.format, c.pattern);
  PathOutcome out;
  // The application's position in the stream: where the ADC stands (0 on a board built for
  // this run).
  ZBUF_ASSIGN_OR_RETURN(auto adcAtStart, bench.iio(0));
  std::uint64_t offset = adcAtStart.count("stream_offset");
  auto check = [&](std::span<const std::byte> data) {
    if (!c.benchmark) {
      out.mismatches += checker.countMismatches(data, offset);
      out.verified += data.size();
      if (c.received) {
        c.received(data);
      }
    }
    offset += data.size();
  };
  if (mode == StreamMode::Fileio) {
    // The application is the sink: it checks (or ignores) each block it read.
    class AppSink final : public FileioSink {
     public:
      explicit AppSink(decltype(check)& fn) : fn_(fn) {}
      Result<std::size_t> write(std::span<const std::byte> in) override {
        fn_(in);
        return in.size();
      }

     private:
      decltype(check)& fn_;
    } sink(check);
    IioStream& port = *adc;
    ZBUF_TRY(port.enable(true));
    control.begin();
    {
      const StopWatch watch(control, [&port] { (void)port.enable(false); });
      out.bytes = pipeline::runFileioCopy(port, sink, c.blockBytes, control);
    }
    control.end();
    (void)port.enable(false);
    return out;
  }
  ZBUF_ASSIGN_OR_RETURN(auto set, BufferSet::create(ctx, c, {adc.get()}));
  // Map every buffer once, up front: no per-block mapping.
  std::vector<sys::Mapping> maps;
  for (int fd : set.fds()) {
    ZBUF_ASSIGN_OR_RETURN(auto m, ctx.mmap(fd, c.blockBytes, PROT_READ, MAP_SHARED, 0));
    maps.push_back(std::move(m));
  }
  ZBUF_TRY(adc->enable(true));
  uapi::DmaBufSync start{uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRead};
  uapi::DmaBufSync end{uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRead};
  auto consume = [&](std::size_t slot) {
    if (c.benchmark) {
      offset += c.blockBytes;  // touch nothing, like iio_rwdev -B
      return;
    }
    const int fd = set.fds()[slot];
    if (c.skipSync.test(SkippedSync::AppStart)) {
      // fault injection: read without SYNC START
    } else if (auto r = ctx.ioctl(fd, uapi::kDmaBufIoctlSync, &start); !r.ok()) {
      control.error(r.error());
    }
    check(maps[slot].bytes().first(c.blockBytes));
    (void)ctx.ioctl(fd, uapi::kDmaBufIoctlSync, &end);
  };
  IioStream& port = *adc;
  control.begin();
  {
    const StopWatch watch(control, [&port] { (void)port.enable(false); });
    out.bytes = pipeline::runDmabufToApp(ctx, port, set.fds(), c.blockBytes, consume, control);
  }
  control.end();
  (void)port.enable(false);
  return out;
}

}  // namespace

Result<StreamResult> Pipeline::run(StreamMode mode,
                                   const std::function<void(const StreamProgress&)>& progress) {
  // The machine: the given kernel (zbufd's), or a fresh context with this run's board (set up
  // before the clock starts).
  std::shared_ptr<uapi::Context> own;
  std::shared_ptr<Board> board;
  uapi::FdCalls* kernel = kernel_.get();
  std::shared_ptr<uapi::FdCalls> backend;
  if (kernel == nullptr) {
    own = uapi::Context::create();
    ZBUF_ASSIGN_OR_RETURN(board, Board::create(*own, boardConfig(config_)));
    ZBUF_ASSIGN_OR_RETURN(backend, uapi::openBackend(config_.backend, own));
    kernel = backend.get();
  }
  TestBench bench(*kernel);
  ZBUF_ASSIGN_OR_RETURN(auto adcAtStart, bench.iio(0));
  ZBUF_ASSIGN_OR_RETURN(auto dacAtStart, bench.iio(1));
  RunControl control(config_, *stop_, progress);
  if (own) {
    // The block status needs the buffers' fences, which only an embedded kernel shows; with
    // zbufd a failed block is counted from the board's counters below.
    control.statusOf = [&](int bufferFd, const pipeline::DmabufStage& stage) {
      return Board::lastFenceStatus(*own, bufferFd, stage.fenceDriver());
    };
  }
  Result<PathOutcome> outcome = PathOutcome{};
  switch (config_.path) {
    case StreamPath::IioToUsb:
      outcome = runIioToUsb(*kernel, bench, config_, mode, control);
      break;
    case StreamPath::IioToApp:
      outcome = runIioToApp(*kernel, bench, config_, mode, control);
      break;
    case StreamPath::UsbToDac:
      outcome = runUsbToDac(*kernel, bench, config_, mode, control);
      break;
  }
  if (!outcome.ok()) {
    return std::move(outcome).error();
  }
  control.statusOf = nullptr;
  // Only the timed part counts (RunControl::begin() to end()): not setting up the board,
  // allocating and attaching the buffers, nor the teardown.
  const cpu::Split& cpu0 = control.cpuAtBegin();
  const cpu::Split& cpu1 = control.cpuAtEnd();
  // What the hardware failed: the application cannot see a failed block's fence status through
  // the buffer fds (on the kernel neither, short of exporting a sync file per block), so the
  // board counts it, as the far end's checker counts mismatches.
  ZBUF_ASSIGN_OR_RETURN(auto adcAtEnd, bench.iio(0));
  ZBUF_ASSIGN_OR_RETURN(auto dacAtEnd, bench.iio(1));
  const std::uint64_t failed =
      adcAtEnd.count("transfer_errors") - adcAtStart.count("transfer_errors") +
      dacAtEnd.count("transfer_errors") - dacAtStart.count("transfer_errors") + outcome->gaps;
  for (std::uint64_t i = control.errors; i < failed; ++i) {
    control.error(Error(config_.failErrno, "hardware", "a transfer failed on the board"));
  }
  StreamResult r;
  r.path = config_.path;
  r.mode = mode;
  r.blockBytes = config_.blockBytes;
  r.blocks = config_.blocks;
  r.bytes = outcome->bytes;
  r.seconds = control.elapsedSeconds();
  const double mib = static_cast<double>(r.bytes) / (1024.0 * 1024.0);
  const double gib = mib / 1024.0;
  r.mibPerS = r.seconds > 0 ? mib / r.seconds : 0;
  const auto secs = [](std::chrono::nanoseconds d) {
    return std::chrono::duration<double>(d).count();
  };
  if (gib > 0) {
    r.appCpuSPerGib = secs(cpu1.application - cpu0.application) / gib;
    r.hwCpuSPerGib = secs(cpu1.hardware - cpu0.hardware) / gib;
  }
  r.verifiedBytes = outcome->verified;
  r.mismatches = outcome->mismatches;
  r.errors = control.errors;
  r.errorMessages = std::move(control.messages);
  r.stopped = control.stopRequested();
  return r;
}

}  // namespace zbuf
