// Private to uapi/: the file kinds this layer defines, for the context to install and check.
#pragma once

#include "zbuf/core/buffer.h"
#include "zbuf/uapi/file.h"

namespace zbuf::uapi {
class Context;
}

namespace zbuf::uapi::detail {

[[nodiscard]] const FileOperations& dmaBufOps() noexcept;
[[nodiscard]] const FileOperations& syncFileOps() noexcept;
// dma_buf_poll on `buffer`'s reservation: POLLIN unless a writer is pending, POLLOUT when
// nothing is; with a table, every pending fence wakes it. The dma-buf file's poll, and the
// context's poll of a real kernel dma-buf it wrapped (kernel_objects.h).
[[nodiscard]] short dmaBufPollMask(const Buffer& buffer, short events, PollTable* table);
// /dev/dma_heap/<name> for every heap, and /dev/udmabuf.
void addHeapNodes(Context& context);
// /sys/kernel/debug/sync/sw_sync (sw_sync_file.cpp).
void addSwSyncNode(Context& context);

}  // namespace zbuf::uapi::detail
