// File kinds of the tests' own for the file layer (uapi/file.h, uapi/file_table.h): a bare kind
// that fills no slot but release, which counts its calls in the file's private data, and a
// fixture that installs files of a kind in a context of its own.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string_view>

#include "zbuf/uapi/context.h"
#include "zbuf/uapi/file.h"

namespace zbuf::testing {

struct ReleaseCounter {
  std::atomic<int> released{0};
};

// Only a name and a release: every other slot is the VFS's default.
// NOLINTNEXTLINE(cppcoreguidelines-virtual-class-destructor) final, and a static never destroyed
class BareOps final : public uapi::FileOperations {
 public:
  [[nodiscard]] std::string_view name() const noexcept override { return "bare"; }
  void release(uapi::File& file) const override { ++file.data<ReleaseCounter>().released; }
};

inline const BareOps kBare;

class FileLayerFixture : public ::testing::Test {
 protected:
  UniqueFd install(const uapi::FileOperations& ops, int flags = O_RDWR) {
    auto fd = ctx->installFile(ops, counter, "test", flags);
    EXPECT_TRUE(fd.ok()) << fd.error().describe();
    return fd.ok() ? std::move(*fd) : UniqueFd();
  }

  std::shared_ptr<ReleaseCounter> counter = std::make_shared<ReleaseCounter>();
  uapi::ContextPtr ctx = uapi::Context::create();
};

}  // namespace zbuf::testing
