// Board: builds the devices of one run and registers their nodes (board.h).
#include "zbuf/devices/board.h"

#include <fmt/format.h>

#include "zbuf/devices/iio/iio_files.h"
#include "zbuf/devices/usb/functionfs_files.h"

namespace zbuf {

struct Board::Private {};

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
