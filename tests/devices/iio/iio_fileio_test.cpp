// ctest-labels: concurrency
// The fileio interface of the emulated IIO device, through the files of a context as an
// application uses it against the kernel: read() from the ADC's buffer fd, write() to the DAC's,
// blocking and non-blocking (FIONBIO), the sysfs attributes buffer0/{enable,length,watermark}
// and sampling_frequency, and the errnos. What the hardware counted is read from the test bench
// (iio_rig.h).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "support/iio_rig.h"
#include "support/thread_state.h"
#include "support/wait_until.h"
#include "zbuf/devices/pattern.h"

namespace zbuf::iio {
namespace {

using namespace std::chrono_literals;
using testing::IioRig;
using testing_support::waitUntil;

// 4096 frames * 8 bytes = 32 KiB by default, 4 fileio blocks of 8 KiB.
IioDeviceConfig device(IioDirection dir, std::uint64_t lengthFrames = 4096, std::uint64_t rate = 0,
                       dma::DataMode mode = dma::DataMode::Data,
                       PatternKind pattern = PatternKind::Ramp) {
  IioDeviceConfig c = IioRig::config(dir);
  c.length = lengthFrames;
  c.sampleRate = rate;
  c.mode = mode;
  c.pattern = pattern;
  return c;
}

TEST(IioFileio, GetFdErrors) {
  IioRig s;  // buffer 0 is open
  EXPECT_EQ(s.getBufferFd(1), -ENODEV);
  EXPECT_EQ(s.getBufferFd(0), -EBUSY);
  ASSERT_TRUE(s.ctx->close(std::move(s.buf)).ok());  // closing frees the buffer
  const long fd = s.getBufferFd(0);
  ASSERT_GE(fd, 0);
  s.buf = UniqueFd::adopt(static_cast<int>(fd));
}

TEST(IioFileio, AdcReadDeliversThePatternInOrder) {
  for (PatternKind kind : {PatternKind::Ramp, PatternKind::Prbs}) {
    IioRig s(device(IioDirection::Input, 4096, 0, dma::DataMode::Data, kind));
    ASSERT_EQ(s.enable(), 0);
    PatternChecker checker(s.device->format(), kind);
    std::vector<std::byte> out(10000 * 8 + 24);  // spans several blocks, whole frames
    std::uint64_t offset = 0;
    for (int round = 0; round < 8; ++round) {
      s.readAll(out);
      EXPECT_EQ(checker.countMismatches(out, offset), 0U) << "round " << round;
      offset += out.size();
    }
    const IioBufferStats st = s.stats();
    EXPECT_EQ(st.fileioBytes, offset);
    EXPECT_GE(st.hardwareBytes, offset);
    ASSERT_EQ(s.disable(), 0);
  }
}

TEST(IioFileio, ReadErrors) {
  IioRig adc;
  std::vector<std::byte> small(7);  // less than one 8-byte frame
  ASSERT_EQ(adc.enable(), 0);
  EXPECT_EQ(adc.read(small), -EINVAL);
  std::vector<std::byte> in(64);
  EXPECT_EQ(adc.write(in), -EPERM);  // write() on an input buffer
  IioRig dac(IioRig::config(IioDirection::Output));
  EXPECT_EQ(dac.read(in), -EPERM);  // read() on an output buffer
  EXPECT_EQ(dac.write(small), -EINVAL);
}

TEST(IioFileio, ReadWhileDisabledReturnsZero) {
  IioRig s;
  std::vector<std::byte> out(64);
  EXPECT_EQ(s.read(out), 0);
}

// iio_buffer_read: a non-blocking read that finds nothing is EAGAIN, never end of file, whether
// the buffer is enabled, never was, or was disabled (which drops what was not read).
TEST(IioFileio, NonBlockingReadOnADisabledBufferIsEagain) {
  IioRig s;
  s.setNonBlocking(true);
  std::vector<std::byte> out(64);
  EXPECT_EQ(s.read(out), -EAGAIN);  // never enabled
  ASSERT_EQ(s.enable(), 0);
  s.setNonBlocking(false);
  s.readAll(out);
  ASSERT_EQ(s.disable(), 0);
  s.setNonBlocking(true);
  EXPECT_EQ(s.read(out), -EAGAIN);  // disabled again
  s.setNonBlocking(false);
  EXPECT_EQ(s.read(out), 0);  // blocking: end of file (see docs/iio.md)
}

// A non-blocking read waits for nothing (the kernel's to_wait = 0): it takes what is ready
// even when that is less than the watermark a blocking read would wait for.
TEST(IioFileio, NonBlockingReadIgnoresTheWatermark) {
  // 1024 frames/s * 8 bytes: each 8 KiB block takes about a second.
  IioRig s(device(IioDirection::Input, 4096, 1024));
  ASSERT_EQ(s.writeAttr("buffer0/watermark", "4096"), 0);  // a blocking 32 KiB read waits for all
  ASSERT_EQ(s.enable(), 0);
  std::vector<std::byte> frame(8);
  s.readAll(frame);  // blocks until the first block is complete
  s.setNonBlocking(true);
  std::vector<std::byte> out(32 * 1024);
  const long r = s.read(out);
  ASSERT_GT(r, 0) << r;
  const auto got = static_cast<std::size_t>(r);
  EXPECT_GE(got, 8 * 1024 - frame.size());  // the rest of the first block at least
  EXPECT_LT(got, out.size());
  EXPECT_EQ(got % 8, 0U);
  ASSERT_EQ(s.disable(), 0);
}

TEST(IioFileio, NonBlockingReadIsEagainUntilDataArrives) {
  // 1000 frames/s * 8 bytes: a 8 KiB block takes ~1 s, so nothing is ready at first.
  IioRig s(device(IioDirection::Input, 4096, 1000));
  s.setNonBlocking(true);
  ASSERT_EQ(s.enable(), 0);
  std::vector<std::byte> out(64);
  EXPECT_EQ(s.read(out), -EAGAIN);
  ASSERT_EQ(s.writeAttr("sampling_frequency", "0"), 0);  // unlimited from the next chunk
  long r = -EAGAIN;
  EXPECT_TRUE(waitUntil([&] {
    r = s.read(out);
    return r != -EAGAIN;
  })) << "no data within the limit";
  EXPECT_EQ(r, static_cast<long>(out.size()));
}

TEST(IioFileio, BlockingReadWaitsForTheWatermark) {
  // 64 KiB/s: each 8 KiB block takes 125 ms.
  IioRig s(device(IioDirection::Input, 4096, 8192));
  EXPECT_EQ(s.readAttr("buffer0/watermark"), "2048\n");  // half the length
  EXPECT_EQ(s.writeAttr("buffer0/watermark", "0"), EINVAL);
  EXPECT_EQ(s.writeAttr("buffer0/watermark", "4097"), EINVAL);
  ASSERT_EQ(s.writeAttr("buffer0/watermark", "2048"), 0);  // two blocks
  ASSERT_EQ(s.enable(), 0);
  EXPECT_EQ(s.writeAttr("buffer0/watermark", "1024"), EBUSY);
  EXPECT_EQ(s.writeAttr("buffer0/length", "100"), EBUSY);
  std::vector<std::byte> out(32 * 1024);
  const auto start = std::chrono::steady_clock::now();
  const long r = s.read(out);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r, 16L * 1024);   // the two blocks that were ready
  EXPECT_GE(elapsed, 200ms);  // it waited for the second block
  ASSERT_EQ(s.disable(), 0);
}

TEST(IioFileio, DisableWakesABlockedReader) {
  IioRig s(device(IioDirection::Input, 4096, 1));  // one frame per second
  ASSERT_EQ(s.enable(), 0);
  testing_support::ThreadMark reading;
  std::thread disabler([&] {
    (void)reading.waitUntilAsleep();  // the disable wakes a reader that sleeps
    EXPECT_EQ(s.disable(), 0);
  });
  std::vector<std::byte> out(64);
  reading.mark();
  const long r = s.read(out);
  disabler.join();
  EXPECT_EQ(r, 0);
}

TEST(IioFileio, OverrunsAreCountedWhenTheApplicationIsSlow) {
  IioRig s;
  ASSERT_EQ(s.enable(), 0);
  // Unlimited rate: the ring fills at once and the hardware then finds no free block.
  EXPECT_TRUE(waitUntil([&] { return s.stats().overruns != 0; }));
  EXPECT_EQ(s.bench().fileioAvailable(), 32U * 1024);
  EXPECT_EQ(s.poll(s.buf.get(), POLLIN, 0), POLLIN);
  EXPECT_GE(s.stats().overruns, 1U);
  ASSERT_EQ(s.disable(), 0);
  EXPECT_FALSE(s.enabled());
}

TEST(IioFileio, LengthChangesTheBlocksAtTheNextEnable) {
  IioRig s;
  EXPECT_EQ(s.bench().fileioBlockBytes(), 8U * 1024);
  ASSERT_EQ(s.writeAttr("buffer0/length", "1"), 0);
  EXPECT_EQ(s.readAttr("buffer0/length"), "2\n");  // buffer-dma's minimum
  ASSERT_EQ(s.writeAttr("buffer0/length", "8192"), 0);
  EXPECT_EQ(s.readAttr("buffer0/watermark"), "4096\n");
  ASSERT_EQ(s.enable(), 0);
  EXPECT_EQ(s.bench().fileioBlockBytes(), 16U * 1024);
  std::vector<std::byte> out(64 * 1024);
  s.readAll(out);
  PatternChecker checker(s.device->format(), PatternKind::Ramp);
  EXPECT_EQ(checker.countMismatches(out, 0), 0U);
}

TEST(IioFileio, DacConsumesAndChecksWrittenBlocks) {
  IioRig s(IioRig::config(IioDirection::Output));
  PatternGenerator gen(s.device->format(), PatternKind::Ramp);
  std::vector<std::byte> block(8 * 1024);
  // Prefill two blocks while disabled (they wait for enable).
  std::uint64_t offset = 0;
  for (int i = 0; i < 2; ++i) {
    gen.fill(block, offset);
    ASSERT_EQ(s.write(block), static_cast<long>(block.size()));
    offset += block.size();
  }
  EXPECT_EQ(s.stats().checkedBytes, 0U);
  ASSERT_EQ(s.enable(), 0);
  for (int i = 0; i < 30; ++i) {
    gen.fill(block, offset);
    s.writeAll(block);
    offset += block.size();
  }
  ASSERT_TRUE(s.bench().engine().waitIdle(5s));
  IioBufferStats st = s.stats();
  EXPECT_EQ(st.checkedBytes, offset);
  EXPECT_EQ(st.mismatches, 0U);
  EXPECT_GE(st.underruns, 1U);  // the DAC ran dry after the last block
  // A corrupted block is caught.
  gen.fill(block, offset);
  block[100] ^= std::byte{0xff};
  ASSERT_GT(s.write(block), 0);
  ASSERT_TRUE(s.bench().engine().waitIdle(5s));
  EXPECT_EQ(s.stats().mismatches, 1U);
}

TEST(IioFileio, NonBlockingWriteIsEagainWhenTheRingIsFull) {
  IioRig s(IioRig::config(IioDirection::Output));
  s.setNonBlocking(true);
  std::vector<std::byte> ring(32 * 1024);
  EXPECT_EQ(s.poll(s.buf.get(), POLLOUT, 0), POLLOUT);
  EXPECT_EQ(s.write(ring), static_cast<long>(ring.size()));  // fills every block while disabled
  EXPECT_EQ(s.write(ring), -EAGAIN);
  EXPECT_EQ(s.poll(s.buf.get(), POLLOUT, 0), 0);
  ASSERT_EQ(s.enable(), 0);  // the DAC drains them
  ASSERT_TRUE(s.bench().engine().waitIdle(5s));
  EXPECT_GT(s.write(ring), 0);
}

// The DMA engine's fault injection is the hardware's, a C++ seam of the test bench: there is no
// uAPI for it.
TEST(IioFileio, FailedTransferIsCountedAndStreamingContinues) {
  IioRig s;
  s.bench().engine().injectError(3, EIO);
  ASSERT_EQ(s.enable(), 0);
  std::vector<std::byte> out(256 * 1024);
  s.readAll(out);
  PatternChecker checker(s.device->format(), PatternKind::Ramp);
  EXPECT_EQ(checker.countMismatches(out, 0), 0U);  // the failed block produced no stream bytes
  EXPECT_EQ(s.stats().transferErrors, 1U);
}

TEST(IioFileio, BenchmarkModeLeavesBlocksUntouched) {
  IioRig s(device(IioDirection::Input, 4096, 0, dma::DataMode::Benchmark));
  ASSERT_EQ(s.enable(), 0);
  std::vector<std::byte> out(64 * 1024, std::byte{0x77});
  s.readAll(out);
  for (std::byte b : out) {
    ASSERT_EQ(b, std::byte{0});  // the blocks were zeroed at allocation and never written
  }
}

TEST(IioFileio, ConcurrentReaderAndDisableEnableCycles) {
  IioRig s;
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    std::vector<std::byte> out(3000 * 8);
    while (!stop.load()) {
      const long r = s.read(out);
      ASSERT_GE(r, 0);
      if (r == 0) {
        // Back-off while disabled (load: a read of a disabled buffer returns 0 at once).
        std::this_thread::sleep_for(100us);
      }
    }
  });
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(s.enable(), 0);
    // A short enabled window, as load: the disable lands anywhere in the reader's reads.
    std::this_thread::sleep_for(200us);
    ASSERT_EQ(s.disable(), 0);
  }
  // Streaming still works after the cycles: the reader gets data after one more enable.
  const std::uint64_t before = s.stats().fileioBytes;
  EXPECT_EQ(s.enable(), 0);
  EXPECT_TRUE(waitUntil([&] { return s.stats().fileioBytes > before; })) << "no data";
  EXPECT_EQ(s.disable(), 0);
  stop.store(true);
  reader.join();
}

}  // namespace
}  // namespace zbuf::iio
