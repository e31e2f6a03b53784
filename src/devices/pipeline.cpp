// Pipeline: builds the devices of one path for one run, drives them with the loops of
// pipeline_loops.cpp, and measures the run (wall time, application and hardware CPU through
// cpu::split(), and what the far end verified).
#include "zbuf/devices/pipeline.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include "devices/pipeline_stages.h"
#include "zbuf/base/hw_thread.h"
#include "zbuf/base/sys.h"
#include "zbuf/devices/usb/functionfs.h"
#include "zbuf/devices/usb/host.h"
#include "zbuf/heaps/system_heap.h"

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
    auto all = value(s);
    if (!all.ok()) {
      return std::move(all).error();
    }
    return StreamCoherency{*all, *all, *all};
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
    auto v = value(item.substr(eq + 1));
    if (!v.ok()) {
      return std::move(v).error();
    }
    if (name == "adc") {
      c.adc = *v;
    } else if (name == "dac") {
      c.dac = *v;
    } else if (name == "usb") {
      c.usb = *v;
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

Pipeline::Pipeline(StreamConfig config)
    : config_(config), stop_(std::make_shared<std::atomic<bool>>(false)) {}

Result<Pipeline> Pipeline::create(StreamConfig config) {
  constexpr const char* kOp = "Pipeline::create";
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
  if (config.bytes == 0 && config.duration <= std::chrono::nanoseconds::zero()) {
    return Error(EINVAL, kOp, "neither a byte count nor a positive duration to stop at");
  }
  if (config.failTransfer != 0 && (config.failErrno <= 0 || config.failErrno > 4095)) {
    return Error(EINVAL, kOp, fmt::format("fault errno {} out of 1..4095", config.failErrno));
  }
  return Pipeline(config);
}

namespace {

using pipeline::DmabufStage;
using pipeline::FileioSink;
using pipeline::IioPort;
using pipeline::RunControl;
using pipeline::StopWatch;

constexpr unsigned kUsbIn = 1;
constexpr unsigned kUsbOut = 2;

// The USB side of a run: link, host, function, one data endpoint.
struct UsbSide {
  std::shared_ptr<usb::UsbLink> link;
  std::unique_ptr<usb::UsbHost> host;
  std::shared_ptr<usb::FunctionFs> function;
  std::unique_ptr<usb::EndpointFile> ep;

  static Result<UsbSide> create(const StreamConfig& c, unsigned endpoint) {
    UsbSide s;
    s.link = usb::UsbLink::create(usb::LinkConfig{.speed = c.link,
                                                  .coherent = c.coherency.usb,
                                                  .failTransfer = c.failTransfer,
                                                  .failErrno = c.failErrno});
    s.link->controller()->forgetDeviceAccess(c.skipSync.test(SkippedSync::UsbBegin),
                                             c.skipSync.test(SkippedSync::UsbEnd));
    s.host = std::make_unique<usb::UsbHost>(
        s.link,
        usb::HostConfig{.format = c.format, .pattern = c.pattern, .benchmark = c.benchmark});
    s.function = usb::FunctionFs::create();
    ZBUF_TRY(s.function->bind(s.link));
    ZBUF_TRY(s.host->configure());
    auto ep = s.function->open(endpoint);
    if (!ep.ok()) {
      return std::move(ep).error();
    }
    s.ep = std::move(*ep);
    return s;
  }
  ~UsbSide() {
    ep.reset();  // detaches everything before the function and the link go
  }
  UsbSide() = default;
  UsbSide(UsbSide&&) = default;
  UsbSide& operator=(UsbSide&&) = default;
};

class UsbStage final : public DmabufStage, public FileioSink, public pipeline::FileioSource {
 public:
  explicit UsbStage(usb::EndpointFile& ep) : ep_(ep) {}
  Result<void> attach(const BufferPtr& b) override { return ep_.attach(b); }
  Result<void> detach(const BufferPtr& b) override { return ep_.detach(b); }
  Result<FencePtr> enqueue(const BufferPtr& b, std::uint64_t bytes) override {
    return ep_.transfer(b, bytes);
  }
  Result<std::size_t> write(std::span<const std::byte> in) override { return ep_.write(in); }
  Result<std::size_t> read(std::span<std::byte> out) override { return ep_.read(out); }

 private:
  usb::EndpointFile& ep_;
};

// The buffers of a zero-copy run, attached to every stage in `stages`; detached on scope exit.
class BufferSet {
 public:
  static Result<BufferSet> create(const StreamConfig& c, std::vector<DmabufStage*> stages) {
    BufferSet set;
    set.stages_ = std::move(stages);
    for (unsigned i = 0; i < c.blocks; ++i) {
      auto b = SystemHeap::instance()->allocate(c.blockBytes);
      if (!b.ok()) {
        return std::move(b).error();
      }
      (void)(*b)->setName(fmt::format("stream-{}", i));
      if (c.checkCpuAccess) {
        (*b)->setCpuAccessChecked(true);
      }
      for (DmabufStage* s : set.stages_) {
        auto r = s->attach(*b);
        if (!r.ok()) {
          set.detachAll();
          return std::move(r).error();
        }
        set.attached_.emplace_back(s, *b);
      }
      set.buffers_.push_back(std::move(*b));
    }
    return set;
  }
  BufferSet() = default;
  BufferSet(BufferSet&&) = default;
  BufferSet& operator=(BufferSet&&) = default;
  ~BufferSet() { detachAll(); }
  [[nodiscard]] const std::vector<BufferPtr>& buffers() const { return buffers_; }
  void detachAll() {
    for (auto it = attached_.rbegin(); it != attached_.rend(); ++it) {
      (void)it->first->detach(it->second);
    }
    attached_.clear();
  }

 private:
  std::vector<DmabufStage*> stages_;
  std::vector<std::pair<DmabufStage*, BufferPtr>> attached_;
  std::vector<BufferPtr> buffers_;
};

// What a path's run produced, before the common accounting.
struct PathOutcome {
  std::uint64_t bytes = 0;
  std::uint64_t verified = 0;
  std::uint64_t mismatches = 0;
};

Result<PathOutcome> runIioToUsb(const StreamConfig& c, StreamMode mode, RunControl& control) {
  auto usbSide = UsbSide::create(c, kUsbIn);
  if (!usbSide.ok()) {
    return std::move(usbSide).error();
  }
  auto adc = pipeline::makeAdc(c, 0, 0);
  if (!adc.ok()) {
    return std::move(adc).error();
  }
  UsbStage usbStage(*usbSide->ep);
  PathOutcome out;
  IioPort& port = **adc;
  if (mode == StreamMode::Fileio) {
    ZBUF_TRY(port.startFileio());
    control.begin();
    {
      const StopWatch watch(control, [&port] { port.stop(); });
      pipeline::runFileioCopy(*port.source(), usbStage, c.blockBytes, control);
    }
    control.end();
    port.stop();
  } else {
    auto set = BufferSet::create(c, {&port.dmabuf(), &usbStage});
    if (!set.ok()) {
      return std::move(set).error();
    }
    ZBUF_TRY(port.startDmabuf());
    control.begin();
    {
      const StopWatch watch(control, [&port] { port.stop(); });
      pipeline::runDmabufChain(port.dmabuf(), usbStage, set->buffers(), c.blockBytes, control);
    }
    control.end();
    port.stop();  // blocks still queued to the ADC signal -EINTR
  }  // the buffers are detached: transfers still queued to the USB endpoint end -ECONNRESET
  const usb::EndpointStats s = usbSide->host->stats(kUsbIn);
  out.bytes = s.bytes;
  out.verified = s.verifiedBytes;
  out.mismatches = s.mismatches;
  return out;
}

Result<PathOutcome> runUsbToDac(const StreamConfig& c, StreamMode mode, RunControl& control) {
  auto usbSide = UsbSide::create(c, kUsbOut);
  if (!usbSide.ok()) {
    return std::move(usbSide).error();
  }
  auto dac = pipeline::makeDac(c);
  if (!dac.ok()) {
    return std::move(dac).error();
  }
  UsbStage usbStage(*usbSide->ep);
  usbSide->host->startSending(kUsbOut);
  IioPort& port = **dac;
  std::uint64_t bytes = 0;
  if (mode == StreamMode::Fileio) {
    ZBUF_TRY(port.startFileio());
    control.begin();
    {
      const StopWatch watch(control, [&port] { port.stop(); });
      const std::uint64_t written =
          pipeline::runFileioCopy(usbStage, *port.sink(), c.blockBytes, control);
      // write() returns once the DAC's ring took the data: let the hardware play it out,
      // unless the run was stopped (then the DAC is stopped too).
      if (!control.aborted()) {
        port.drain(written, std::chrono::seconds(10));
      }
    }
    control.end();
    port.stop();
    bytes = port.hardwareBytes();  // what the DAC played, not what it was handed
  } else {
    auto set = BufferSet::create(c, {&usbStage, &port.dmabuf()});
    if (!set.ok()) {
      return std::move(set).error();
    }
    ZBUF_TRY(port.startDmabuf());
    control.begin();
    {
      const StopWatch watch(control, [&port] { port.stop(); });
      bytes =
          pipeline::runDmabufChain(usbStage, port.dmabuf(), set->buffers(), c.blockBytes, control);
    }
    control.end();
    port.stop();
  }
  usbSide->host->stopSending(kUsbOut);
  PathOutcome out;
  out.bytes = bytes;
  out.verified = (*dac)->verifiedBytes();
  out.mismatches = (*dac)->mismatches();
  return out;
}

Result<PathOutcome> runIioToApp(const StreamConfig& c, StreamMode mode, RunControl& control) {
  auto adc = pipeline::makeAdc(c, c.failTransfer, c.failErrno);
  if (!adc.ok()) {
    return std::move(adc).error();
  }
  const PatternChecker checker(c.format, c.pattern);
  PathOutcome out;
  std::uint64_t offset = 0;  // the application's position in the stream
  auto check = [&](std::span<const std::byte> data) {
    if (!c.benchmark) {
      out.mismatches += checker.countMismatches(data, offset);
      out.verified += data.size();
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
    IioPort& port = **adc;
    ZBUF_TRY(port.startFileio());
    control.begin();
    {
      const StopWatch watch(control, [&port] { port.stop(); });
      out.bytes = pipeline::runFileioCopy(*port.source(), sink, c.blockBytes, control);
    }
    control.end();
    port.stop();
    // A failed ADC transfer never reaches read(): count it from the hardware.
    for (std::uint64_t i = 0; i < (*adc)->transferErrors(); ++i) {
      control.error(Error(c.failTransfer != 0 ? c.failErrno : EIO, "adc",
                          "an ADC DMA transfer failed (read() does not report it)"));
    }
    return out;
  }
  auto set = BufferSet::create(c, {&(*adc)->dmabuf()});
  if (!set.ok()) {
    return std::move(set).error();
  }
  // Map every buffer once, up front: no per-block mapping.
  std::vector<sys::Mapping> maps;
  for (const BufferPtr& b : set->buffers()) {
    auto m = b->mmap(0, b->size(), PROT_READ, MAP_SHARED);  // zbuf's mmap: checkable
    if (!m.ok()) {
      return std::move(m).error();
    }
    maps.push_back(std::move(*m));
  }
  ZBUF_TRY((*adc)->startDmabuf());
  auto consume = [&](std::size_t slot) {
    if (c.benchmark) {
      offset += c.blockBytes;  // touch nothing, like iio_rwdev -B
      return;
    }
    Buffer& b = *set->buffers()[slot];
    if (c.skipSync.test(SkippedSync::AppStart)) {
      // fault injection: read without SYNC START
    } else if (auto r = b.beginCpuAccess(DmaDirection::FromDevice); !r.ok()) {
      control.error(r.error());
    }
    check(maps[slot].bytes().first(c.blockBytes));
    (void)b.endCpuAccess(DmaDirection::FromDevice);
  };
  IioPort& port = **adc;
  control.begin();
  {
    const StopWatch watch(control, [&port] { port.stop(); });
    out.bytes =
        pipeline::runDmabufToApp(port.dmabuf(), set->buffers(), c.blockBytes, consume, control);
  }
  control.end();
  port.stop();
  return out;
}

}  // namespace

Result<StreamResult> Pipeline::run(StreamMode mode,
                                   const std::function<void(const StreamProgress&)>& progress) {
  RunControl control(config_, *stop_, progress);
  Result<PathOutcome> outcome = PathOutcome{};
  switch (config_.path) {
    case StreamPath::IioToUsb:
      outcome = runIioToUsb(config_, mode, control);
      break;
    case StreamPath::IioToApp:
      outcome = runIioToApp(config_, mode, control);
      break;
    case StreamPath::UsbToDac:
      outcome = runUsbToDac(config_, mode, control);
      break;
  }
  if (!outcome.ok()) {
    return std::move(outcome).error();
  }
  // Only the timed part counts (RunControl::begin() to end()): not building the devices,
  // allocating and attaching the buffers, nor the teardown.
  const cpu::Split& cpu0 = control.cpuAtBegin();
  const cpu::Split& cpu1 = control.cpuAtEnd();
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
