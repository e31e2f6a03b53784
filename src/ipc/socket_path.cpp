#include "zbuf/ipc/socket_path.h"

#include <unistd.h>

#include <cstdlib>

namespace zbuf::ipc {

std::string defaultSocketPath() {
  if (const char* env = std::getenv("ZBUF_SOCKET"); env != nullptr && *env != '\0') {
    return env;
  }
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (::geteuid() == 0 || runtime == nullptr || *runtime == '\0') {
    return "/run/zbuf/zbufd.sock";
  }
  return std::string(runtime) + "/zbuf/zbufd.sock";
}

}  // namespace zbuf::ipc
