// virtio_dma_buf: buffers that virtio devices share by UUID (the kernel's
// drivers/virtio/virtio_dma_buf.c, the outcome of the series in seeds/004).
//
// The review of that series refused a generic get_uuid operation on every dma-buf; upstream a
// virtio exporter instead subclasses the operations: struct virtio_dma_buf_ops embeds
// dma_buf_ops first and adds get_uuid (required) and device_attach (optional), and a buffer is
// recognised as virtio at run time by the identity of its attach operation, which must be
// virtio_dma_buf_attach. zbuf keeps that shape:
//
//   auto ops = std::make_shared<VirtioExporterOps>();
//   ops->map = ...; ops->unmap = ...; ops->release = ...;   // the ExporterOps, as any exporter
//   ops->attach = &virtioDmaBufAttach;                      // required: marks the buffer virtio
//   ops->getUuid = [](Buffer& b) -> Result<Uuid> { ... };   // required
//   ops->deviceAttach = ...;                                // optional: runs at each attach
//   info.ops = ops;
//   auto buffer = virtioDmaBufExport(std::move(info));
//   ...
//   if (isVirtioDmaBuf(*buffer)) { auto uuid = virtioDmaBufGetUuid(*buffer); }
//
// Errors, as the kernel's: virtioDmaBufExport is EINVAL without operations, with an attach that
// is not virtioDmaBufAttach, or without getUuid (then Buffer::exportBuffer's own checks);
// virtioDmaBufGetUuid is EINVAL for a buffer that is not virtio, else what getUuid returns (an
// exporter whose UUID is still being registered with its device may wait there, as
// virtio-gpu's does, or refuse). virtioDmaBufAttach returns deviceAttach's error.
//
// Thread-safety: the functions are thread-safe; getUuid and deviceAttach are called without
// any zbuf lock held (attach runs without the reservation lock, buffer.h).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "zbuf/base/result.h"
#include "zbuf/core/buffer.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf {

// uuid_t: 16 bytes, shown as 8-4-4-4-12 lowercase hex digits.
using Uuid = std::array<std::uint8_t, 16>;

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
[[nodiscard]] std::string toString(const Uuid& uuid);
// The inverse of toString (upper or lower case); EINVAL for anything else.
[[nodiscard]] Result<Uuid> parseUuid(std::string_view text);
// A random (version 4, RFC 4122 variant) UUID, as the kernel's uuid_gen.
[[nodiscard]] Uuid randomUuid();

// struct virtio_dma_buf_ops: the exporter operations first, then the virtio ones.
struct VirtioExporterOps : ExporterOps {
  // Optional: called by virtioDmaBufAttach for each attach; its error fails the attach.
  std::function<Result<void>(Buffer&, Attachment&)> deviceAttach;
  // Required: the UUID that names the buffer to other virtio devices.
  std::function<Result<Uuid>(Buffer&)> getUuid;
};

// virtio_dma_buf_attach: the attach operation every virtio exporter must use; calls the
// exporter's deviceAttach if it has one.
[[nodiscard]] Result<void> virtioDmaBufAttach(Buffer& buffer, Attachment& attachment);

// virtio_dma_buf_export: checks the operations (EINVAL, see above), then Buffer::exportBuffer.
// `info.ops` must point at a VirtioExporterOps.
[[nodiscard]] Result<BufferPtr> virtioDmaBufExport(ExportInfo info);

// is_virtio_dma_buf: whether the buffer's attach operation is virtioDmaBufAttach.
[[nodiscard]] bool isVirtioDmaBuf(const Buffer& buffer) noexcept;

// virtio_dma_buf_get_uuid: EINVAL if the buffer is not virtio, else the exporter's getUuid.
[[nodiscard]] Result<Uuid> virtioDmaBufGetUuid(Buffer& buffer);

}  // namespace zbuf
#pragma GCC visibility pop
