// Board: builds the devices of one run and registers their nodes (board.h).
#include "zbuf/devices/board.h"

#include <fmt/format.h>

#include <string>
#include <string_view>

#include "zbuf/devices/iio/iio_files.h"
#include "zbuf/devices/usb/functionfs_files.h"
#include "zbuf/uapi/sysfs_attr.h"

namespace zbuf {

struct Board::Private {};

namespace {

// "key value" lines, the bench files' format.
void put(std::string& out, std::string_view key, std::uint64_t value) {
  out += fmt::format("{} {}\n", key, value);
}

std::string showConfig(const BoardConfig& c) {
  std::string out;
  put(out, "channels", c.format.channels);
  put(out, "bytes_per_sample", c.format.bytesPerSample);
  put(out, "signed", c.format.isSigned ? 1 : 0);
  out += fmt::format("pattern {}\n", toString(c.pattern));
  put(out, "sample_rate", c.sampleRate);
  put(out, "benchmark", c.benchmark ? 1 : 0);
  out += fmt::format("link {}\n", toString(c.link));
  put(out, "fileio_blocks", c.iioFileioBlocks);
  return out;
}

std::string showHost(const usb::EndpointStats& s) {
  std::string out;
  put(out, "bytes", s.bytes);
  put(out, "blocks", s.blocks);
  put(out, "verified", s.verifiedBytes);
  put(out, "mismatches", s.mismatches);
  put(out, "gaps", s.gaps);
  put(out, "lost", s.lostBytes);
  put(out, "offset", s.offset);
  return out;
}

std::string showIio(const iio::IioBufferStats& s) {
  std::string out;
  put(out, "hardware_bytes", s.hardwareBytes);
  put(out, "transfers", s.transfers);
  put(out, "transfer_errors", s.transferErrors);
  put(out, "checked", s.checkedBytes);
  put(out, "mismatches", s.mismatches);
  put(out, "stream_offset", s.streamOffset);
  return out;
}

// A host endpoint's commands: "reset OFFSET" (counters to zero, the stream position to OFFSET),
// and for an OUT endpoint "send" and "stop".
Result<void> hostCommand(usb::UsbHost& host, unsigned endpoint, bool out, std::string_view text) {
  while (!text.empty() && text.back() == '\n') {
    text.remove_suffix(1);
  }
  constexpr std::string_view kReset = "reset ";
  if (text.starts_with(kReset)) {
    ZBUF_ASSIGN_OR_RETURN(auto offset, uapi::parseSysfsU64(text.substr(kReset.size())));
    host.reset(endpoint, offset);
    return {};
  }
  if (out && text == "send") {
    host.startSending(endpoint);
    return {};
  }
  if (out && text == "stop") {
    host.stopSending(endpoint);
    return {};
  }
  return Error(EINVAL, "bench", fmt::format("unknown command '{}'", text));
}

// The test bench as files (board.h): the context keeps them, so they hold the board weakly
// and answer ENODEV once it is gone.
Result<void> addBenchFiles(uapi::Context& context, const std::shared_ptr<Board>& board) {
  const std::weak_ptr<Board> weak = board;
  const auto gone = [] { return Error(ENODEV, "bench", "the board is gone"); };
  ZBUF_TRY(uapi::addSysfsAttr(context, std::string(Board::kBenchDir) + "/board",
                              {[weak, gone]() -> Result<std::string> {
                                 auto b = weak.lock();
                                 if (!b) {
                                   return gone();
                                 }
                                 return showConfig(b->config());
                               },
                               {}}));
  for (const unsigned ep : {Board::kUsbIn, Board::kUsbOut}) {
    const bool out = ep == Board::kUsbOut;
    ZBUF_TRY(uapi::addSysfsAttr(context, fmt::format("{}/host/ep{}", Board::kBenchDir, ep),
                                {[weak, gone, ep]() -> Result<std::string> {
                                   auto b = weak.lock();
                                   if (!b) {
                                     return gone();
                                   }
                                   return showHost(b->host().stats(ep));
                                 },
                                 [weak, gone, ep, out](std::string_view text) -> Result<void> {
                                   auto b = weak.lock();
                                   if (!b) {
                                     return gone();
                                   }
                                   return hostCommand(b->host(), ep, out, text);
                                 }}));
  }
  for (const unsigned index : {0U, 1U}) {
    ZBUF_TRY(uapi::addSysfsAttr(context, fmt::format("{}/iio:device{}", Board::kBenchDir, index),
                                {[weak, gone, index]() -> Result<std::string> {
                                   auto b = weak.lock();
                                   if (!b) {
                                     return gone();
                                   }
                                   iio::IioDevice& d = index == 0 ? b->adc() : b->dac();
                                   return showIio((*d.buffer(0))->stats());
                                 },
                                 {}}));
  }
  return {};
}

}  // namespace

Board::Board(Private /*key*/, uapi::Context& context, BoardConfig config)
    : context_(context), config_(config) {}

Board::~Board() {
  // The host goes first (it stops sending and receiving); the devices' files may outlive the
  // board in the context, and hold the device objects themselves.
  if (host_) {
    host_->disconnect();
  }
  if (function_) {
    function_->unbind();
  }
  host_.reset();
}

Result<std::shared_ptr<Board>> Board::create(uapi::Context& context, BoardConfig config) {
  ZBUF_TRY(config.format.validate());
  auto board = std::make_shared<Board>(Private{}, context, config);
  ZBUF_TRY(board->build());
  ZBUF_TRY(addBenchFiles(context, board));
  return board;
}

Result<void> Board::build() {
  const BoardConfig& c = config_;
  link_ = usb::UsbLink::create(
      usb::LinkConfig{.speed = c.link,
                      .coherent = c.coherentUsb,
                      .failTransfer = c.faultSite == FaultSite::UsbLink ? c.faultTransfer : 0,
                      .failErrno = c.faultErrno});
  link_->controller()->forgetDeviceAccess(c.skipUsbBegin, c.skipUsbEnd);
  host_ = std::make_unique<usb::UsbHost>(
      link_, usb::HostConfig{.format = c.format, .pattern = c.pattern, .benchmark = c.benchmark});
  function_ = usb::FunctionFs::create(usb::FunctionConfig{
      .name = "zbuf", .endpoints = {usb::EndpointDir::In, usb::EndpointDir::Out}});
  ZBUF_TRY(function_->bind(link_));
  ZBUF_TRY(host_->configure());

  const auto makeIio = [&](const char* name, iio::IioDirection dir) {
    iio::IioDeviceConfig dc;
    dc.name = name;
    dc.direction = dir;
    dc.format = c.format;
    dc.pattern = c.pattern;
    dc.sampleRate = c.sampleRate;
    dc.mode = c.benchmark ? dma::DataMode::Benchmark : dma::DataMode::Data;
    dc.buffers = 1;
    dc.length = c.iioLength;
    dc.fileioBlocks = c.iioFileioBlocks;
    dc.dmaIdleSpin = c.dmaIdleSpin;
    const bool input = dir == iio::IioDirection::Input;
    dc.dma.coherent = input ? c.coherentAdc : c.coherentDac;
    auto device = iio::IioDevice::create(dc);
    if (device.ok()) {
      (*device)->dmaDevice()->forgetDeviceAccess(!input && c.skipDacBegin, input && c.skipAdcEnd);
    }
    return device;
  };
  // The names of the AD9361's two IIO devices, as libiio lists them on a real board.
  ZBUF_ASSIGN_OR_RETURN(auto adc, makeIio("cf-ad9361-lpc", iio::IioDirection::Input));
  ZBUF_ASSIGN_OR_RETURN(auto dac, makeIio("cf-ad9361-dds-core-lpc", iio::IioDirection::Output));
  adc_ = std::move(adc);
  dac_ = std::move(dac);
  if (c.faultSite == FaultSite::Adc && c.faultTransfer != 0) {
    (*adc_->buffer(0))->engine().injectError(c.faultTransfer, c.faultErrno);
  }
  ZBUF_TRY(iio::addToContext(context_, adc_, 0));
  ZBUF_TRY(iio::addToContext(context_, dac_, 1));
  ZBUF_TRY(usb::mountFunctionFs(context_, function_, kFunctionFsMount));
  virtioHost_ = virtio::VirtioHost::create(
      virtio::VirtioHostConfig{.registrationLatency = c.virtioRegistrationLatency});
  decoder_ = virtio::VideoDecoder::create(virtioHost_);
  display_ = virtio::VideoDisplay::create(virtioHost_);
  ZBUF_TRY(virtio::addToContext(context_, virtioHost_, decoder_, display_));
  return {};
}

int Board::lastFenceStatus(uapi::Context& context, int bufferFd, std::string_view driver) {
  auto buffer = context.bufferFromFd(bufferFd);
  if (!buffer.ok()) {
    return 1;
  }
  FencePtr newest;
  for (const Resv::Entry& e : (*buffer)->resv().entries(ResvUsage::Bookkeep)) {
    if (e.fence->driverName() == driver && (!newest || e.fence->context() != newest->context() ||
                                            e.fence->seqno() > newest->seqno())) {
      newest = e.fence;
    }
  }
  return newest ? newest->status() : 1;
}

}  // namespace zbuf
