// ctest-labels: concurrency
// End to end: the ADC streams to the application through fileio and through DMABUF, and the
// application verifies every byte against the pattern (256 MiB per interface in regular
// builds; 32 MiB under the sanitizers, whose instrumentation makes the pattern code ~10-20x
// slower: see kStreamBytes).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>

#include <chrono>
#include <vector>

#include "zbuf/core/buffer.h"
#include "zbuf/core/resv.h"
#include "zbuf/devices/iio/iio_buffer_file.h"
#include "zbuf/devices/iio/iio_device.h"
#include "zbuf/heaps/system_heap.h"
#include "zbuf/uapi/abi.h"
#include "zbuf/uapi/context.h"
#include "zbuf/uapi/dma_buf.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ZBUF_IIO_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ZBUF_IIO_SANITIZED 1
#endif
#endif

namespace zbuf::iio {
namespace {

using namespace std::chrono_literals;

#ifdef ZBUF_IIO_SANITIZED
constexpr std::uint64_t kStreamBytes = 32ULL << 20;
#else
constexpr std::uint64_t kStreamBytes = 256ULL << 20;
#endif
constexpr std::uint64_t kBlock = 1ULL << 20;

std::shared_ptr<IioDevice> makeAdc(PatternKind pattern) {
  IioDeviceConfig config;
  config.name = "cf-ad9361-lpc";
  config.pattern = pattern;
  config.length = 4 * kBlock / 8;  // 4 fileio blocks of 1 MiB
  return std::move(IioDevice::create(config).value());
}

TEST(IioStream, FileioDeliversEveryByteOfThePattern) {
  auto adc = makeAdc(PatternKind::Prbs);
  auto file = std::move(adc->openBuffer(0).value());
  ASSERT_TRUE(file->buffer().enable().ok());
  PatternChecker checker(adc->format(), PatternKind::Prbs);
  std::vector<std::byte> out(kBlock);
  std::uint64_t offset = 0;
  std::uint64_t mismatches = 0;
  while (offset < kStreamBytes) {
    auto r = file->read(out);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    ASSERT_GT(*r, 0U);
    mismatches += checker.countMismatches(std::span(out).first(*r), offset);
    offset += *r;
  }
  EXPECT_EQ(mismatches, 0U);
  EXPECT_GE(file->buffer().stats().fileioBytes, kStreamBytes);
  file->buffer().disable();
}

TEST(IioStream, DmabufDeliversEveryByteOfThePattern) {
  auto adc = makeAdc(PatternKind::Ramp);
  auto file = std::move(adc->openBuffer(0).value());
  constexpr int kBuffers = 4;
  std::vector<BufferPtr> bufs;
  std::vector<UniqueFd> fds;  // the buffers as dma-buf files of the current context
  std::vector<sys::Mapping> maps;
  for (int i = 0; i < kBuffers; ++i) {
    bufs.push_back(std::move(SystemHeap::instance()->allocate(kBlock).value()));
    fds.push_back(std::move(uapi::Context::current().installBuffer(bufs.back()).value()));
    maps.push_back(
        std::move(bufs.back()->mmap(0, kBlock, PROT_READ | PROT_WRITE, MAP_SHARED).value()));
    ASSERT_TRUE(file->attach(bufs.back()).ok());
  }
  ASSERT_TRUE(file->buffer().enable().ok());
  for (auto& b : bufs) {
    ASSERT_TRUE(file->enqueue(*b, kBlock).ok());
  }
  PatternChecker checker(adc->format(), PatternKind::Ramp);
  std::uint64_t offset = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t lastSeqno = 0;
  for (std::uint64_t n = 0; offset < kStreamBytes; ++n) {
    const int i = static_cast<int>(n % kBuffers);
    // poll(POLLIN), then SYNC START/END (READ) around the CPU access, as on the kernel.
    const int fd = fds[i].get();
    auto ready = uapi::pollBuffer(fd, POLLIN, std::chrono::milliseconds(10000));
    ASSERT_TRUE(ready.ok());
    ASSERT_TRUE((*ready & POLLIN) != 0) << "block " << n << " never completed";
    {
      auto access = uapi::syncScope(fd, uapi::kDmaBufSyncRead);
      ASSERT_TRUE(access.ok());
      mismatches += checker.countMismatches(maps[i].bytes(), offset);
    }
    offset += kBlock;
    auto f = file->enqueue(*bufs[i], kBlock);
    ASSERT_TRUE(f.ok()) << f.error().describe();
    if (i == 0) {
      EXPECT_GT((*f)->seqno(), lastSeqno);
      lastSeqno = (*f)->seqno();
    }
  }
  EXPECT_EQ(mismatches, 0U);
  const IioBufferStats s = file->buffer().stats();
  EXPECT_EQ(s.dmabufFailed, 0U);
  EXPECT_GE(s.dmabufCompleted, kStreamBytes / kBlock);
  file->buffer().disable();
}

}  // namespace
}  // namespace zbuf::iio
