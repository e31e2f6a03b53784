// The IIO side of a Pipeline: an emulated ADC or DAC (devices/iio) behind the IioPort
// interface. The device's fileio ring is sized so that one of its blocks is one stream block
// (4 blocks of blockBytes), as libiio sizes its buffer to the application's block.
#include <fmt/format.h>

#include <thread>

#include "devices/pipeline_stages.h"
#include "zbuf/devices/iio/iio_buffer_file.h"
#include "zbuf/devices/iio/iio_device.h"

namespace zbuf::pipeline {

namespace {

constexpr unsigned kFileioBlocks = 4;

class IioAdapter final : public IioPort,
                         public DmabufStage,
                         public FileioSource,
                         public FileioSink {
 public:
  IioAdapter(std::shared_ptr<iio::IioDevice> device, std::unique_ptr<iio::IioBufferFile> file)
      : device_(std::move(device)), file_(std::move(file)), buffer_(file_->buffer()) {}
  ~IioAdapter() override {
    stop();
    file_.reset();  // closing the buffer file detaches whatever is left
  }
  IioAdapter(const IioAdapter&) = delete;
  IioAdapter& operator=(const IioAdapter&) = delete;

  Result<void> startFileio() override { return buffer_.enable(); }
  Result<void> startDmabuf() override { return buffer_.enable(); }
  FileioSource* source() override { return buffer_.isInput() ? this : nullptr; }
  FileioSink* sink() override { return buffer_.isInput() ? nullptr : this; }
  DmabufStage& dmabuf() override { return *this; }
  std::uint64_t verifiedBytes() const override { return buffer_.stats().checkedBytes; }
  std::uint64_t mismatches() const override { return buffer_.stats().mismatches; }
  std::uint64_t transferErrors() const override { return buffer_.stats().transferErrors; }
  std::uint64_t hardwareBytes() const override { return buffer_.stats().hardwareBytes; }
  void drain(std::uint64_t bytes, std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    // A stopped DAC plays nothing more: do not wait for it.
    while (buffer_.stats().hardwareBytes < bytes && buffer_.enabled() &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  void stop() override { buffer_.disable(); }

  Result<void> attach(const BufferPtr& b) override { return file_->attach(b); }
  Result<void> detach(const BufferPtr& b) override { return file_->detach(*b); }
  Result<FencePtr> enqueue(const BufferPtr& b, std::uint64_t bytes) override {
    return file_->enqueue(*b, bytes);
  }
  Result<std::size_t> read(std::span<std::byte> out) override { return file_->read(out); }
  Result<std::size_t> write(std::span<const std::byte> in) override { return file_->write(in); }

 private:
  std::shared_ptr<iio::IioDevice> device_;
  std::unique_ptr<iio::IioBufferFile> file_;
  iio::IioBuffer& buffer_;
};

Result<std::unique_ptr<IioPort>> makeIio(const StreamConfig& c, iio::IioDirection dir,
                                         std::uint64_t failBlock, int failErrno) {
  iio::IioDeviceConfig dc;
  dc.name = dir == iio::IioDirection::Input ? "adc" : "dac";
  dc.direction = dir;
  dc.format = c.format;
  dc.pattern = c.pattern;
  dc.sampleRate = c.sampleRate;
  dc.mode = c.benchmark ? dma::DataMode::Benchmark : dma::DataMode::Data;
  dc.buffers = 1;
  dc.length = c.blockBytes * kFileioBlocks / c.format.frameBytes();
  dc.fileioBlocks = kFileioBlocks;
  const bool input = dir == iio::IioDirection::Input;
  dc.dma.coherent = input ? c.coherency.adc : c.coherency.dac;
  auto device = iio::IioDevice::create(dc);
  if (!device.ok()) {
    return std::move(device).error();
  }
  (*device)->dmaDevice()->forgetDeviceAccess(!input && c.skipSync.test(SkippedSync::DacBegin),
                                             input && c.skipSync.test(SkippedSync::AdcEnd));
  auto file = (*device)->openBuffer(0);
  if (!file.ok()) {
    return std::move(file).error();
  }
  if (failBlock != 0) {
    (*file)->buffer().engine().injectError(failBlock, failErrno);
  }
  return std::unique_ptr<IioPort>(new IioAdapter(std::move(*device), std::move(*file)));
}

}  // namespace

Result<std::unique_ptr<IioPort>> makeAdc(const StreamConfig& config, std::uint64_t failBlock,
                                         int failErrno) {
  return makeIio(config, iio::IioDirection::Input, failBlock, failErrno);
}

Result<std::unique_ptr<IioPort>> makeDac(const StreamConfig& config) {
  return makeIio(config, iio::IioDirection::Output, 0, 0);
}

}  // namespace zbuf::pipeline
