// zbufd's request decoder and dispatcher: one request message in, one reply out, every call
// made on the daemon's Context with the fds the client sent (each one the client's open file
// description, so the daemon's file table finds the same File, and a description the client
// closes is released by the daemon as any close is). Malformed requests get an errno reply:
// EINVAL for a short body, a reserved field that is not zero, a wrong fd count or an index
// outside the message; ENOTTY for an unknown opcode. Nothing here trusts a length it did not
// check against what arrived.
//
// Thread-safety: as the Context; one dispatch per connection at a time.
#pragma once

#include <vector>

#include "zbuf/base/unique_fd.h"
#include "zbuf/ipc/message.h"
#include "zbuf/uapi/context.h"

#pragma GCC visibility push(default)  // the public API: exported (cmake/ZbufLayers.cmake)

namespace zbuf::daemon {

struct Reply {
  ipc::ReplyBody body;
  std::vector<std::byte> payload;  // after the ReplyBody
  std::vector<UniqueFd> fds;       // the daemon's copies, closed once sent
};

// `connection`: the client's socket, added to a blocking POLL so that a client that goes away
// ends the wait (-1: none).
[[nodiscard]] Reply dispatch(uapi::Context& context, ipc::Message& request, int connection);

}  // namespace zbuf::daemon
#pragma GCC visibility pop
