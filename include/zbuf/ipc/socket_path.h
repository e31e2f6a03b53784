// Where zbufd listens by default: $XDG_RUNTIME_DIR/zbuf/zbufd.sock, or /run/zbuf/zbufd.sock for
// root (or when XDG_RUNTIME_DIR is unset); the ZBUF_SOCKET environment variable overrides both.
#pragma once

#include <string>

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::ipc {

[[nodiscard]] std::string defaultSocketPath();

}  // namespace zbuf::ipc
#pragma GCC visibility pop
