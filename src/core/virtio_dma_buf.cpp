// virtio_dma_buf: recognising a virtio exporter by its attach operation, as
// drivers/virtio/virtio_dma_buf.c compares ops->attach with virtio_dma_buf_attach. The
// std::function that holds the attach operation is asked for its target: only a plain function
// pointer equal to virtioDmaBufAttach counts (a lambda that calls it does not, as a wrapper
// function would not in the kernel).
#include "zbuf/core/virtio_dma_buf.h"

#include <fmt/format.h>

#include <cerrno>
#include <random>

namespace zbuf {
namespace {

using AttachFn = Result<void> (*)(Buffer&, Attachment&);

bool isVirtioOps(const ExporterOps& ops) noexcept {
  const AttachFn* fn = ops.attach.target<AttachFn>();
  return fn != nullptr && *fn == &virtioDmaBufAttach;
}

// The upcast from the embedded dma_buf_ops to virtio_dma_buf_ops (container_of): valid only
// after isVirtioOps() said so, as in the kernel.
const VirtioExporterOps& virtioOps(const ExporterOps& ops) noexcept {
  return static_cast<const VirtioExporterOps&>(ops);
}

int hexDigit(char c) noexcept {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

constexpr std::size_t kUuidTextLength = 36;

bool isDashPosition(std::size_t i) noexcept {
  return i == 8 || i == 13 || i == 18 || i == 23;
}

}  // namespace

std::string toString(const Uuid& uuid) {
  std::string out;
  out.reserve(kUuidTextLength);
  for (std::size_t i = 0; i < uuid.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      out.push_back('-');
    }
    out += fmt::format("{:02x}", uuid.at(i));
  }
  return out;
}

Result<Uuid> parseUuid(std::string_view text) {
  const auto invalid = [text] {
    return Error(EINVAL, "parseUuid", fmt::format("'{}' is not a UUID (8-4-4-4-12 hex)", text));
  };
  if (text.size() != kUuidTextLength) {
    return invalid();
  }
  // The groups have an even number of digits, so a byte's two digits never straddle a dash.
  Uuid uuid{};
  std::size_t byte = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (isDashPosition(i)) {
      if (text[i] != '-') {
        return invalid();
      }
      ++i;
      continue;
    }
    const int hi = hexDigit(text[i]);
    const int lo = hexDigit(text[i + 1]);
    if (hi < 0 || lo < 0) {
      return invalid();
    }
    uuid.at(byte++) = static_cast<std::uint8_t>((hi << 4) | lo);
    i += 2;
  }
  return uuid;
}

Uuid randomUuid() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  Uuid uuid{};
  for (std::size_t i = 0; i < uuid.size(); i += 8) {
    std::uint64_t v = rng();
    for (std::size_t j = 0; j < 8; ++j) {
      uuid.at(i + j) = static_cast<std::uint8_t>(v >> (8 * j));
    }
  }
  uuid.at(6) = static_cast<std::uint8_t>((uuid.at(6) & 0x0f) | 0x40);  // version 4
  uuid.at(8) = static_cast<std::uint8_t>((uuid.at(8) & 0x3f) | 0x80);  // RFC 4122 variant
  return uuid;
}

Result<void> virtioDmaBufAttach(Buffer& buffer, Attachment& attachment) {
  const VirtioExporterOps& ops = virtioOps(buffer.ops());
  if (ops.deviceAttach) {
    return ops.deviceAttach(buffer, attachment);
  }
  return {};
}

Result<BufferPtr> virtioDmaBufExport(ExportInfo info) {
  if (!info.ops) {
    return Error(EINVAL, "virtio_dma_buf_export", "no exporter operations");
  }
  if (!isVirtioOps(*info.ops)) {
    return Error(
        EINVAL, "virtio_dma_buf_export",
        fmt::format("exporter '{}': attach is not virtio_dma_buf_attach", info.exporterName));
  }
  if (!virtioOps(*info.ops).getUuid) {
    return Error(EINVAL, "virtio_dma_buf_export",
                 fmt::format("exporter '{}' has no get_uuid", info.exporterName));
  }
  return Buffer::exportBuffer(std::move(info));
}

bool isVirtioDmaBuf(const Buffer& buffer) noexcept {
  return isVirtioOps(buffer.ops());
}

Result<Uuid> virtioDmaBufGetUuid(Buffer& buffer) {
  if (!isVirtioDmaBuf(buffer)) {
    return Error(
        EINVAL, "virtio_dma_buf_get_uuid",
        fmt::format("buffer of exporter '{}' is not a virtio dma-buf", buffer.exporterName()));
  }
  return virtioOps(buffer.ops()).getUuid(buffer);
}

}  // namespace zbuf
