// Transcript: what a scenario's calls returned, one line per step ("ALLOC len=0 -> EINVAL",
// "lseek(0, SEEK_END) -> 4096"), so runs of one scenario on two kernels compare line by line.
// A step records the errno's name or the call's value; never an fd number, an inode or a time,
// which differ between runs.
#pragma once

#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "zbuf/base/result.h"

namespace zbuf::lane {

class Transcript {
 public:
  // Records "what -> ok" (or the value of an integral result), or "what -> EINVAL".
  template <typename T>
  void step(std::string_view what, const Result<T>& r) {
    if (!r.ok()) {
      add(what, errnoName(r.code()));
    } else if constexpr (std::is_integral_v<T>) {
      add(what, std::to_string(*r));
    } else {
      add(what, "ok");
    }
  }
  // For a call that returns a new fd: "what -> fd" (the number differs between runs).
  void stepFd(std::string_view what, const Result<long>& r) {
    add(what, r.ok() ? (*r >= 0 ? "fd" : std::to_string(*r)) : errnoName(r.code()));
  }
  // step(), then gives the result back for the scenario's next calls.
  template <typename T>
  Result<T> kept(std::string_view what, Result<T> r) {
    step(what, r);
    return r;
  }
  // "what -> value" for something read back (a size, a name, a status).
  void note(std::string_view what, std::string_view value) { add(what, value); }

  [[nodiscard]] const std::vector<std::string>& lines() const noexcept { return lines_; }
  [[nodiscard]] std::string text() const {
    std::string out;
    for (const auto& l : lines_) {
      out += l;
      out += '\n';
    }
    return out;
  }

  static std::string errnoName(int code) {
    const char* name = ::strerrorname_np(code);
    return name != nullptr ? name : "errno " + std::to_string(code);
  }

 private:
  void add(std::string_view what, std::string_view value) {
    lines_.push_back(std::string(what) + " -> " + std::string(value));
  }
  std::vector<std::string> lines_;
};

}  // namespace zbuf::lane
