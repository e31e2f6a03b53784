// Sysfs-style attribute files (the kernel's kernfs attribute files behind struct
// device_attribute): a path in a context's namespace whose reads return the text its show()
// produces and whose writes hand the text to its store(), with kernfs's rules:
//  - open for writing an attribute without store(), or for reading one without show(): EACCES;
//  - read() returns the shown text from the file position on (0 at the end); each read at
//    position 0 shows anew; lseek works within 4096 bytes (PAGE_SIZE, st_size);
//  - write() hands the whole buffer to store() and returns its length, or store()'s errno; a
//    write of 4096 bytes or more is E2BIG (kernfs would cut it to a page: zbuf refuses).
//
// Thread-safety: thread-safe if show/store are.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "zbuf/base/result.h"
#include "zbuf/uapi/context.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::uapi {

struct SysfsAttr {
  std::function<Result<std::string>()> show;            // empty: write-only
  std::function<Result<void>(std::string_view)> store;  // empty: read-only
};

// Adds the attribute at `path` (EEXIST, EINVAL as Context::addNode).
[[nodiscard]] Result<void> addSysfsAttr(Context& context, std::string path, SysfsAttr attr);

// Parsing helpers with the kernel's rules: kstrtobool ("1", "y", "on", ... EINVAL otherwise)
// and kstrtoull (decimal, a trailing newline allowed; EINVAL, ERANGE).
[[nodiscard]] Result<bool> parseSysfsBool(std::string_view text);
[[nodiscard]] Result<std::uint64_t> parseSysfsU64(std::string_view text);

}  // namespace zbuf::uapi
#pragma GCC visibility pop
