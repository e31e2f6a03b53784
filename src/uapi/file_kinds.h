// Private to uapi/: the file kinds this layer defines, for the context to install and check.
#pragma once

#include "zbuf/uapi/file.h"

namespace zbuf::uapi {
class Context;
}

namespace zbuf::uapi::detail {

[[nodiscard]] const FileOperations& dmaBufOps() noexcept;
[[nodiscard]] const FileOperations& syncFileOps() noexcept;
// /dev/dma_heap/<name> for every heap, and /dev/udmabuf.
void addHeapNodes(Context& context);
// /sys/kernel/debug/sync/sw_sync (sw_sync_file.cpp).
void addSwSyncNode(Context& context);

}  // namespace zbuf::uapi::detail
