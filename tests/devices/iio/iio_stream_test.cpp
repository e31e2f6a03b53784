// ctest-labels: concurrency
// End to end: the ADC streams to the application through fileio and through DMABUF, and the
// application verifies every byte against the pattern (256 MiB per interface in regular
// builds; 32 MiB under the sanitizers, whose instrumentation makes the pattern code ~10-20x
// slower: see kStreamBytes). The application uses the context's files only, as against the
// kernel: the buffer fd's read(), or heap buffers attached and enqueued by ioctl, waited for
// with poll and read inside DMA_BUF_IOCTL_SYNC.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>

#include <chrono>
#include <vector>

#include "support/iio_rig.h"
#include "zbuf/devices/pattern.h"

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
using testing::IioRig;

#ifdef ZBUF_IIO_SANITIZED
constexpr std::uint64_t kStreamBytes = 32ULL << 20;
#else
constexpr std::uint64_t kStreamBytes = 256ULL << 20;
#endif
constexpr std::uint64_t kBlock = 1ULL << 20;

IioDeviceConfig adc(PatternKind pattern) {
  IioDeviceConfig config;
  config.name = "cf-ad9361-lpc";
  config.pattern = pattern;
  config.length = 4 * kBlock / 8;  // 4 fileio blocks of 1 MiB
  return config;
}

TEST(IioStream, FileioDeliversEveryByteOfThePattern) {
  IioRig s(adc(PatternKind::Prbs));
  ASSERT_EQ(s.enable(), 0);
  PatternChecker checker(s.device->format(), PatternKind::Prbs);
  std::vector<std::byte> out(kBlock);
  std::uint64_t offset = 0;
  std::uint64_t mismatches = 0;
  while (offset < kStreamBytes) {
    const long r = s.read(out);
    ASSERT_GT(r, 0) << r;
    const auto got = static_cast<std::size_t>(r);
    mismatches += checker.countMismatches(std::span(out).first(got), offset);
    offset += got;
  }
  EXPECT_EQ(mismatches, 0U);
  EXPECT_GE(s.stats().fileioBytes, kStreamBytes);
  ASSERT_EQ(s.disable(), 0);
}

TEST(IioStream, DmabufDeliversEveryByteOfThePattern) {
  IioRig s(adc(PatternKind::Ramp));
  constexpr int kBuffers = 4;
  std::vector<UniqueFd> fds;
  std::vector<sys::Mapping> maps;
  for (int i = 0; i < kBuffers; ++i) {
    fds.push_back(s.allocate(kBlock));
    maps.push_back(s.map(fds.back().get(), kBlock, PROT_READ));
    ASSERT_EQ(s.attach(fds.back().get()), 0);
  }
  ASSERT_EQ(s.enable(), 0);
  for (auto& fd : fds) {
    ASSERT_EQ(s.enqueue(fd.get(), kBlock), 0);
  }
  PatternChecker checker(s.device->format(), PatternKind::Ramp);
  std::uint64_t offset = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t lastSeqno = 0;
  for (std::uint64_t n = 0; offset < kStreamBytes; ++n) {
    const int i = static_cast<int>(n % kBuffers);
    // poll(POLLIN), then SYNC START/END (READ) around the CPU access, as on the kernel.
    const int fd = fds[i].get();
    ASSERT_TRUE((s.poll(fd, POLLIN, 10'000) & POLLIN) != 0) << "block " << n << " never completed";
    ASSERT_EQ(s.sync(fd, uapi::kDmaBufSyncStart | uapi::kDmaBufSyncRead), 0);
    mismatches += checker.countMismatches(maps[i].bytes(), offset);
    ASSERT_EQ(s.sync(fd, uapi::kDmaBufSyncEnd | uapi::kDmaBufSyncRead), 0);
    offset += kBlock;
    const FencePtr f = s.enqueueFence(fd, kBlock);
    ASSERT_TRUE(f);
    if (i == 0) {
      EXPECT_GT(f->seqno(), lastSeqno);
      lastSeqno = f->seqno();
    }
  }
  EXPECT_EQ(mismatches, 0U);
  const IioBufferStats st = s.stats();
  EXPECT_EQ(st.dmabufFailed, 0U);
  EXPECT_GE(st.dmabufCompleted, kStreamBytes / kBlock);
  ASSERT_EQ(s.disable(), 0);
}

}  // namespace
}  // namespace zbuf::iio
