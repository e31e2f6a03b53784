// ctest-labels: concurrency
// The fileio interface of the emulated IIO device: read() from the ADC, write() to the DAC,
// blocking and non-blocking behaviour, watermark, enable/disable, counters, and the errnos.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "support/thread_state.h"
#include "support/wait_until.h"
#include "zbuf/devices/iio/iio_buffer_file.h"
#include "zbuf/devices/iio/iio_device.h"

namespace zbuf::iio {
namespace {

using namespace std::chrono_literals;
using testing_support::waitUntil;

std::shared_ptr<IioDevice> makeDevice(IioDirection dir, std::uint64_t lengthFrames = 4096,
                                      std::uint64_t rate = 0,
                                      dma::DataMode mode = dma::DataMode::Data,
                                      PatternKind pattern = PatternKind::Ramp) {
  IioDeviceConfig config;
  config.name = dir == IioDirection::Input ? "adc" : "dac";
  config.direction = dir;
  config.length = lengthFrames;  // 4096 frames * 8 bytes = 32 KiB, 4 blocks of 8 KiB
  config.sampleRate = rate;
  config.mode = mode;
  config.pattern = pattern;
  return std::move(IioDevice::create(config).value());
}

// Reads exactly out.size() bytes.
void readAll(IioBufferFile& file, std::span<std::byte> out) {
  std::size_t got = 0;
  while (got < out.size()) {
    auto r = file.read(out.subspan(got));
    ASSERT_TRUE(r.ok()) << r.error().describe();
    ASSERT_GT(*r, 0U);
    got += *r;
  }
}

TEST(IioFileio, GetFdErrors) {
  auto dev = makeDevice(IioDirection::Input);
  EXPECT_EQ(dev->openBuffer(1).code(), ENODEV);
  auto file = dev->openBuffer(0);
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(dev->openBuffer(0).code(), EBUSY);
  file->reset();  // closing frees the buffer
  EXPECT_TRUE(dev->openBuffer(0).ok());
}

TEST(IioFileio, CreateRejectsBadConfigs) {
  IioDeviceConfig config;
  config.buffers = 0;
  EXPECT_EQ(IioDevice::create(config).code(), EINVAL);
  config.buffers = 1;
  config.format.channels = 0;
  EXPECT_EQ(IioDevice::create(config).code(), EINVAL);
}

TEST(IioFileio, AdcReadDeliversThePatternInOrder) {
  for (PatternKind kind : {PatternKind::Ramp, PatternKind::Prbs}) {
    auto dev = makeDevice(IioDirection::Input, 4096, 0, dma::DataMode::Data, kind);
    auto file = std::move(dev->openBuffer(0).value());
    IioBuffer& buf = file->buffer();
    ASSERT_TRUE(buf.enable().ok());
    PatternChecker checker(dev->format(), kind);
    std::vector<std::byte> out(10000 * 8 + 24);  // spans several blocks, whole frames
    std::uint64_t offset = 0;
    for (int round = 0; round < 8; ++round) {
      readAll(*file, out);
      EXPECT_EQ(checker.countMismatches(out, offset), 0U) << "round " << round;
      offset += out.size();
    }
    const IioBufferStats s = buf.stats();
    EXPECT_EQ(s.fileioBytes, offset);
    EXPECT_GE(s.hardwareBytes, offset);
    buf.disable();
  }
}

TEST(IioFileio, ReadErrors) {
  auto adc = makeDevice(IioDirection::Input);
  auto file = std::move(adc->openBuffer(0).value());
  std::vector<std::byte> small(7);  // less than one 8-byte frame
  ASSERT_TRUE(file->buffer().enable().ok());
  EXPECT_EQ(file->read(small).code(), EINVAL);
  std::vector<std::byte> in(64);
  EXPECT_EQ(file->write(in).code(), EPERM);  // write() on an input buffer
  auto dac = makeDevice(IioDirection::Output);
  auto out = std::move(dac->openBuffer(0).value());
  EXPECT_EQ(out->read(in).code(), EPERM);  // read() on an output buffer
  EXPECT_EQ(out->write(small).code(), EINVAL);
}

TEST(IioFileio, ReadWhileDisabledReturnsZero) {
  auto dev = makeDevice(IioDirection::Input);
  auto file = std::move(dev->openBuffer(0).value());
  std::vector<std::byte> out(64);
  auto r = file->read(out);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0U);
}

// iio_buffer_read: a non-blocking read that finds nothing is EAGAIN, never end of file, whether
// the buffer is enabled, never was, or was disabled (which drops what was not read).
TEST(IioFileio, NonBlockingReadOnADisabledBufferIsEagain) {
  auto dev = makeDevice(IioDirection::Input);
  auto file = std::move(dev->openBuffer(0).value());
  file->setNonBlocking(true);
  std::vector<std::byte> out(64);
  EXPECT_EQ(file->read(out).code(), EAGAIN);  // never enabled
  ASSERT_TRUE(file->buffer().enable().ok());
  file->setNonBlocking(false);
  readAll(*file, out);
  file->buffer().disable();
  file->setNonBlocking(true);
  EXPECT_EQ(file->read(out).code(), EAGAIN);  // disabled again
  file->setNonBlocking(false);
  EXPECT_EQ(file->read(out).value(), 0U);  // blocking: end of file (see docs/iio.md)
}

// A non-blocking read waits for nothing (the kernel's to_wait = 0): it takes what is ready
// even when that is less than the watermark a blocking read would wait for.
TEST(IioFileio, NonBlockingReadIgnoresTheWatermark) {
  // 1024 frames/s * 8 bytes: each 8 KiB block takes about a second.
  auto dev = makeDevice(IioDirection::Input, 4096, 1024);
  auto file = std::move(dev->openBuffer(0).value());
  IioBuffer& buf = file->buffer();
  ASSERT_TRUE(buf.setWatermark(4096).ok());  // a blocking read of 32 KiB waits for all of it
  ASSERT_TRUE(buf.enable().ok());
  std::vector<std::byte> frame(8);
  readAll(*file, frame);  // blocks until the first block is complete
  file->setNonBlocking(true);
  std::vector<std::byte> out(32 * 1024);
  auto r = file->read(out);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_GE(*r, 8 * 1024 - frame.size());  // the rest of the first block at least
  EXPECT_LT(*r, out.size());
  EXPECT_EQ(*r % 8, 0U);
  buf.disable();
}

TEST(IioFileio, NonBlockingReadIsEagainUntilDataArrives) {
  // 1000 frames/s * 8 bytes: a 8 KiB block takes ~1 s, so nothing is ready at first.
  auto dev = makeDevice(IioDirection::Input, 4096, 1000);
  auto file = std::move(dev->openBuffer(0).value());
  file->setNonBlocking(true);
  ASSERT_TRUE(file->buffer().enable().ok());
  std::vector<std::byte> out(64);
  EXPECT_EQ(file->read(out).code(), EAGAIN);
  file->buffer().setSampleRate(0);  // unlimited from the next chunk
  std::size_t got = 0;
  int error = 0;
  EXPECT_TRUE(waitUntil([&] {
    auto r = file->read(out);
    if (r.ok()) {
      got = *r;
    } else if (r.code() != EAGAIN) {
      error = r.code();
    }
    return got != 0 || error != 0;
  })) << "no data within the limit";
  EXPECT_EQ(error, 0);
  EXPECT_EQ(got, out.size());
}

TEST(IioFileio, BlockingReadWaitsForTheWatermark) {
  // 64 KiB/s: each 8 KiB block takes 125 ms.
  auto dev = makeDevice(IioDirection::Input, 4096, 8192);
  auto file = std::move(dev->openBuffer(0).value());
  IioBuffer& buf = file->buffer();
  EXPECT_EQ(buf.watermark(), 2048U);  // half the length
  EXPECT_EQ(buf.setWatermark(0).code(), EINVAL);
  EXPECT_EQ(buf.setWatermark(4097).code(), EINVAL);
  ASSERT_TRUE(buf.setWatermark(2048).ok());  // two blocks
  ASSERT_TRUE(buf.enable().ok());
  EXPECT_EQ(buf.setWatermark(1024).code(), EBUSY);
  EXPECT_EQ(buf.setLength(100).code(), EBUSY);
  std::vector<std::byte> out(32 * 1024);
  const auto start = std::chrono::steady_clock::now();
  auto r = file->read(out);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 16U * 1024);  // the two blocks that were ready
  EXPECT_GE(elapsed, 200ms);  // it waited for the second block
  buf.disable();
}

TEST(IioFileio, DisableWakesABlockedReader) {
  auto dev = makeDevice(IioDirection::Input, 4096, 1);  // one frame per second
  auto file = std::move(dev->openBuffer(0).value());
  ASSERT_TRUE(file->buffer().enable().ok());
  testing_support::ThreadMark reading;
  std::thread disabler([&] {
    (void)reading.waitUntilAsleep();  // the disable wakes a reader that sleeps
    file->buffer().disable();
  });
  std::vector<std::byte> out(64);
  reading.mark();
  auto r = file->read(out);
  disabler.join();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0U);
}

TEST(IioFileio, OverrunsAreCountedWhenTheApplicationIsSlow) {
  auto dev = makeDevice(IioDirection::Input);
  auto file = std::move(dev->openBuffer(0).value());
  ASSERT_TRUE(file->buffer().enable().ok());
  // Unlimited rate: the ring fills at once and the hardware then finds no free block.
  EXPECT_TRUE(waitUntil([&] { return file->buffer().stats().overruns != 0; }));
  EXPECT_EQ(file->buffer().fileioAvailable(), 32U * 1024);
  EXPECT_GE(file->buffer().stats().overruns, 1U);
  file->buffer().disable();
  EXPECT_FALSE(file->buffer().enabled());
}

TEST(IioFileio, LengthChangesTheBlocksAtTheNextEnable) {
  auto dev = makeDevice(IioDirection::Input);
  auto file = std::move(dev->openBuffer(0).value());
  IioBuffer& buf = file->buffer();
  EXPECT_EQ(buf.fileioBlockBytes(), 8U * 1024);
  ASSERT_TRUE(buf.setLength(1).ok());
  EXPECT_EQ(buf.length(), 2U);  // buffer-dma's minimum
  ASSERT_TRUE(buf.setLength(8192).ok());
  EXPECT_EQ(buf.watermark(), 4096U);
  ASSERT_TRUE(buf.enable().ok());
  EXPECT_EQ(buf.fileioBlockBytes(), 16U * 1024);
  std::vector<std::byte> out(64 * 1024);
  readAll(*file, out);
  PatternChecker checker(dev->format(), PatternKind::Ramp);
  EXPECT_EQ(checker.countMismatches(out, 0), 0U);
}

TEST(IioFileio, DacConsumesAndChecksWrittenBlocks) {
  auto dev = makeDevice(IioDirection::Output);
  auto file = std::move(dev->openBuffer(0).value());
  IioBuffer& buf = file->buffer();
  PatternGenerator gen(dev->format(), PatternKind::Ramp);
  std::vector<std::byte> block(8 * 1024);
  // Prefill two blocks while disabled (they wait for enable).
  std::uint64_t offset = 0;
  for (int i = 0; i < 2; ++i) {
    gen.fill(block, offset);
    auto r = file->write(block);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(*r, block.size());
    offset += block.size();
  }
  EXPECT_EQ(buf.stats().checkedBytes, 0U);
  ASSERT_TRUE(buf.enable().ok());
  for (int i = 0; i < 30; ++i) {
    gen.fill(block, offset);
    std::size_t put = 0;
    while (put < block.size()) {
      auto r = file->write(std::span<const std::byte>(block).subspan(put));
      ASSERT_TRUE(r.ok());
      put += *r;
    }
    offset += block.size();
  }
  ASSERT_TRUE(buf.engine().waitIdle(5s));
  IioBufferStats s = buf.stats();
  EXPECT_EQ(s.checkedBytes, offset);
  EXPECT_EQ(s.mismatches, 0U);
  EXPECT_GE(s.underruns, 1U);  // the DAC ran dry after the last block
  // A corrupted block is caught.
  gen.fill(block, offset);
  block[100] ^= std::byte{0xff};
  ASSERT_TRUE(file->write(block).ok());
  ASSERT_TRUE(buf.engine().waitIdle(5s));
  EXPECT_EQ(buf.stats().mismatches, 1U);
}

TEST(IioFileio, NonBlockingWriteIsEagainWhenTheRingIsFull) {
  auto dev = makeDevice(IioDirection::Output);
  auto file = std::move(dev->openBuffer(0).value());
  file->setNonBlocking(true);
  std::vector<std::byte> ring(32 * 1024);
  auto r = file->write(ring);  // fills every block while disabled
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, ring.size());
  EXPECT_EQ(file->write(ring).code(), EAGAIN);
  ASSERT_TRUE(file->buffer().enable().ok());  // the DAC drains them
  ASSERT_TRUE(file->buffer().engine().waitIdle(5s));
  EXPECT_TRUE(file->write(ring).ok());
}

TEST(IioFileio, FailedTransferIsCountedAndStreamingContinues) {
  auto dev = makeDevice(IioDirection::Input);
  auto file = std::move(dev->openBuffer(0).value());
  IioBuffer& buf = file->buffer();
  buf.engine().injectError(3, EIO);
  ASSERT_TRUE(buf.enable().ok());
  std::vector<std::byte> out(256 * 1024);
  readAll(*file, out);
  PatternChecker checker(dev->format(), PatternKind::Ramp);
  EXPECT_EQ(checker.countMismatches(out, 0), 0U);  // the failed block produced no stream bytes
  EXPECT_EQ(buf.stats().transferErrors, 1U);
}

TEST(IioFileio, BenchmarkModeLeavesBlocksUntouched) {
  auto dev = makeDevice(IioDirection::Input, 4096, 0, dma::DataMode::Benchmark);
  auto file = std::move(dev->openBuffer(0).value());
  ASSERT_TRUE(file->buffer().enable().ok());
  std::vector<std::byte> out(64 * 1024, std::byte{0x77});
  readAll(*file, out);
  for (std::byte b : out) {
    ASSERT_EQ(b, std::byte{0});  // the blocks were zeroed at allocation and never written
  }
}

TEST(IioFileio, ConcurrentReaderAndDisableEnableCycles) {
  auto dev = makeDevice(IioDirection::Input);
  auto file = std::move(dev->openBuffer(0).value());
  IioBuffer& buf = file->buffer();
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    std::vector<std::byte> out(3000 * 8);
    while (!stop.load()) {
      auto r = file->read(out);
      ASSERT_TRUE(r.ok());
      if (*r == 0) {
        // Back-off while disabled (load: a read of a disabled buffer returns 0 at once).
        std::this_thread::sleep_for(100us);
      }
    }
  });
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(buf.enable().ok());
    // A short enabled window, as load: the disable lands anywhere in the reader's reads.
    std::this_thread::sleep_for(200us);
    buf.disable();
  }
  // Streaming still works after the cycles: the reader gets data after one more enable.
  const std::uint64_t before = buf.stats().fileioBytes;
  EXPECT_TRUE(buf.enable().ok());
  EXPECT_TRUE(waitUntil([&] { return buf.stats().fileioBytes > before; })) << "no data";
  buf.disable();
  stop.store(true);
  reader.join();
}

}  // namespace
}  // namespace zbuf::iio
