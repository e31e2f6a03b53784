// Private to uapi/: the dma-buf ioctls on a Buffer already looked up, so the dispatcher looks
// the fd up once (the public calls in uapi/dma_buf.h look it up themselves).
#pragma once

#include "zbuf/base/result.h"
#include "zbuf/core/buffer.h"
#include "zbuf/uapi/abi.h"

namespace zbuf::uapi::detail {

[[nodiscard]] Result<void> dmaBufSync(Buffer& buffer, const DmaBufSync* sync);
[[nodiscard]] Result<void> dmaBufSetName(Buffer& buffer, const char* name);
[[nodiscard]] Result<void> dmaBufExportSyncFile(Buffer& buffer, DmaBufExportSyncFile* data);
[[nodiscard]] Result<void> dmaBufImportSyncFile(Buffer& buffer, const DmaBufImportSyncFile* data);

}  // namespace zbuf::uapi::detail
