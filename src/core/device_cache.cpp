// DeviceCache: the line walks. Both compare 4 KiB blocks first (memcmp runs at memory speed)
// and go line by line only through blocks that differ, so a sync of an unchanged buffer costs
// one compare pass and a sync of a rewritten one about three copies.
#include "zbuf/core/device_cache.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>

namespace zbuf {

namespace {

constexpr std::size_t kBlockBytes = 4096;

bool same(const std::byte* a, const std::byte* b, std::size_t n) noexcept {
  return std::memcmp(a, b, n) == 0;
}

}  // namespace

struct DeviceCache::Private {};

Result<std::shared_ptr<DeviceCache>> DeviceCache::create(std::uint64_t bytes) {
  const std::uint64_t page = sys::pageSize();
  const std::uint64_t stride = (std::max<std::uint64_t>(bytes, 1) + page - 1) / page * page;
  auto memory = sys::mmap(2 * stride, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (!memory.ok()) {
    return Error(ENOMEM, "dma_map_sgtable",
                 fmt::format("no memory for a non-coherent device's cache of {} bytes", bytes));
  }
  return std::make_shared<DeviceCache>(Private{}, std::move(*memory), bytes);
}

DeviceCache::DeviceCache(Private /*key*/, sys::Mapping memory, std::uint64_t size)
    : memory_(std::move(memory)), size_(size), stride_(memory_.size() / 2) {}

std::span<std::byte> DeviceCache::lines(std::uint64_t offset, std::uint64_t length) const {
  return {memory_.data() + offset, static_cast<std::size_t>(length)};
}

std::span<std::byte> DeviceCache::cleanImage(std::uint64_t offset, std::uint64_t length) const {
  return {memory_.data() + stride_ + offset, static_cast<std::size_t>(length)};
}

std::uint64_t DeviceCache::fill(std::span<std::byte> lines, std::span<std::byte> clean,
                                std::span<const std::byte> memory) noexcept {
  std::uint64_t copied = 0;
  const std::size_t n = std::min({lines.size(), clean.size(), memory.size()});
  for (std::size_t block = 0; block < n; block += kBlockBytes) {
    const std::size_t end = std::min(n, block + kBlockBytes);
    if (same(memory.data() + block, clean.data() + block, end - block)) {
      continue;  // the memory did not change since these lines were filled
    }
    for (std::size_t at = block; at < end; at += kLineBytes) {
      const std::size_t len = std::min(kLineBytes, end - at);
      if (same(memory.data() + at, clean.data() + at, len) ||
          !same(lines.data() + at, clean.data() + at, len)) {
        continue;  // unchanged, or dirty (a write-back cache keeps it until cleaned)
      }
      std::memcpy(lines.data() + at, memory.data() + at, len);
      std::memcpy(clean.data() + at, memory.data() + at, len);
      ++copied;
    }
  }
  return copied;
}

std::uint64_t DeviceCache::writeBack(std::span<const std::byte> lines, std::span<std::byte> clean,
                                     std::span<std::byte> memory) noexcept {
  std::uint64_t copied = 0;
  const std::size_t n = std::min({lines.size(), clean.size(), memory.size()});
  for (std::size_t block = 0; block < n; block += kBlockBytes) {
    const std::size_t end = std::min(n, block + kBlockBytes);
    if (same(lines.data() + block, clean.data() + block, end - block)) {
      continue;  // the device wrote nothing here
    }
    for (std::size_t at = block; at < end; at += kLineBytes) {
      const std::size_t len = std::min(kLineBytes, end - at);
      if (same(lines.data() + at, clean.data() + at, len)) {
        continue;
      }
      std::memcpy(memory.data() + at, lines.data() + at, len);
      std::memcpy(clean.data() + at, lines.data() + at, len);
      ++copied;
    }
  }
  return copied;
}

DeviceCache::Stats DeviceCache::stats() const noexcept {
  return Stats{fills_.load(std::memory_order_relaxed), writeBacks_.load(std::memory_order_relaxed),
               linesFilled_.load(std::memory_order_relaxed),
               linesWrittenBack_.load(std::memory_order_relaxed)};
}

void DeviceCache::countFill(std::uint64_t lines) noexcept {
  fills_.fetch_add(1, std::memory_order_relaxed);
  linesFilled_.fetch_add(lines, std::memory_order_relaxed);
}

void DeviceCache::countWriteBack(std::uint64_t lines) noexcept {
  writeBacks_.fetch_add(1, std::memory_order_relaxed);
  linesWrittenBack_.fetch_add(lines, std::memory_order_relaxed);
}

}  // namespace zbuf
