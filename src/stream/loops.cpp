// The loops of a Pipeline run, made of fd-level calls only. The zero-copy loops keep their slots
// in fixed rings; the application thread learns that a device is done with a block by polling
// the block's buffer fd (the kernel's implicit-fence poll), and sleeps in one poll() on the
// heads of both rings.
#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "stream/stages.h"
#include "zbuf/base/sys.h"
#include "zbuf/uapi/abi.h"

namespace zbuf::pipeline {

using Clock = std::chrono::steady_clock;

namespace {
constexpr auto kTickInterval = std::chrono::milliseconds(250);
constexpr auto kWaitSlice = std::chrono::milliseconds(100);  // re-check stop and progress
constexpr std::size_t kMaxMessages = 8;
constexpr std::uint64_t kMaxErrors = 1000;  // a run gives up after this many failed blocks
}  // namespace

// --- RunControl --------------------------------------------------------------------------------

RunControl::RunControl(const StreamConfig& config, const std::atomic<bool>& stop,
                       const std::function<void(const StreamProgress&)>& progress)
    : config_(config),
      stop_(stop),
      progress_(progress),
      start_(Clock::now()),
      deadline_(config.bytes == 0
                    ? start_ + std::chrono::duration_cast<Clock::duration>(config.duration)
                    : Clock::time_point::max()),
      nextTick_(start_ + kTickInterval) {}

void RunControl::begin() {
  cpuBegin_ = cpu::split();
  start_ = Clock::now();
  deadline_ = config_.bytes == 0
                  ? start_ + std::chrono::duration_cast<Clock::duration>(config_.duration)
                  : Clock::time_point::max();
  nextTick_ = start_ + kTickInterval;
}

void RunControl::end() {
  end_ = Clock::now();
  ended_ = true;
  cpuEnd_ = cpu::split();
}

bool RunControl::doneIssuing(std::uint64_t issuedBytes) const {
  if (config_.bytes != 0 && issuedBytes >= config_.bytes) {
    return true;
  }
  return aborted();
}

bool RunControl::perBlockStatus() const {
  return config_.failTransfer != 0;
}

int RunControl::blockStatus(int bufferFd, const DmabufStage& stage) const {
  return statusOf ? statusOf(bufferFd, stage) : 1;
}

std::size_t RunControl::batch() const {
  return effectiveBatch(config_);
}

bool RunControl::aborted() const {
  return stopRequested() || Clock::now() >= deadline_;
}

void RunControl::tick(std::uint64_t deliveredBytes) {
  if (!progress_) {
    return;
  }
  const auto now = Clock::now();
  if (now < nextTick_) {
    return;
  }
  nextTick_ = now + kTickInterval;
  progress_(StreamProgress{deliveredBytes, elapsedSeconds()});
}

void RunControl::error(const Error& e) {
  ++errors;
  if (messages.size() < kMaxMessages) {
    messages.push_back(e.describe());
  }
}

void RunControl::error(int negativeErrno, const char* what) {
  error(Error(-negativeErrno, what, "the block's fence signalled an error"));
}

double RunControl::elapsedSeconds() const {
  return std::chrono::duration<double>((ended_ ? end_ : Clock::now()) - start_).count();
}

// --- StopWatch -----------------------------------------------------------------------------------

StopWatch::StopWatch(const RunControl& control, std::function<void()> cancel)
    : thread_([this, &control, cancel = std::move(cancel)] {
        MutexLocker lock(mutex_);
        while (!done_) {
          if (control.aborted()) {
            lock.unlock();
            cancel();
            return;
          }
          cv_.waitFor(lock, std::chrono::milliseconds(10),
                      [&]() ZBUF_REQUIRES(mutex_) { return done_; });
        }
      }) {}

StopWatch::~StopWatch() {
  {
    const MutexLocker lock(mutex_);
    done_ = true;
  }
  cv_.notifyOne();
  thread_.join();
}

// --- fileio --------------------------------------------------------------------------------------

std::uint64_t runFileioCopy(FileioSource& source, FileioSink& sink, std::uint64_t blockBytes,
                            RunControl& control) {
  std::vector<std::byte> block(blockBytes);
  std::uint64_t issued = 0;
  std::uint64_t delivered = 0;
  while (!control.doneIssuing(issued)) {
    // read() may return less than asked (the device's own block size): fill the whole block.
    std::size_t have = 0;
    bool failed = false;
    while (have < block.size() && !control.aborted()) {
      auto n = source.read(std::span(block).subspan(have));
      if (!n.ok()) {
        control.error(n.error());
        failed = true;
        break;
      }
      have += *n;
    }
    if (failed || have < block.size()) {
      if (control.errors > kMaxErrors) {
        break;  // a source that only fails would spin forever
      }
      continue;
    }
    issued += have;
    // write() may take less than it was given (zbufd's client moves at most 60 KiB a call):
    // hand on the rest, as a program writing to a file must.
    std::size_t written = 0;
    while (written < have) {
      auto w = sink.write(std::span<const std::byte>(block).subspan(written, have - written));
      if (!w.ok()) {
        control.error(w.error());
        break;
      }
      if (*w == 0) {
        break;  // the sink takes nothing more: end of the device
      }
      written += *w;
    }
    delivered += written;
    control.tick(delivered);
  }
  return delivered;
}

// --- zero-copy -----------------------------------------------------------------------------------

namespace {

// A FIFO of slot numbers with fixed capacity (no allocation after construction).
class Ring {
 public:
  explicit Ring(std::size_t capacity) : items_(capacity) {}
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] std::size_t front() const noexcept { return items_[head_]; }
  // The k-th oldest entry.
  [[nodiscard]] std::size_t at(std::size_t k) const noexcept {
    return items_[(head_ + k) % items_.size()];
  }
  void push(std::size_t v) noexcept {
    items_[(head_ + count_) % items_.size()] = v;
    ++count_;
  }
  void pop() noexcept {
    head_ = (head_ + 1) % items_.size();
    --count_;
  }

 private:
  std::vector<std::size_t> items_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
};

// One block's status, for runs that must know it (fault injection). Through the fds an
// application learns when a device is done with a block (poll), not whether the transfer
// failed: on the kernel only a sync file exported while the fence is still pending tells, and
// a fence that signals before the export is skipped by it. So the run asks the board (the test
// bench, reading the buffer's fences as the kernel's debugfs bufinfo lists them) for the status
// of the stage's last fence on the buffer (RunControl::blockStatus).
class BlockStatus {
 public:
  explicit BlockStatus(RunControl& control) : control_(control) {}
  // The block's status once done: 1 ok, or the fence's negative errno.
  [[nodiscard]] int take(int bufferFd, const DmabufStage& stage) const {
    return control_.perBlockStatus() ? control_.blockStatus(bufferFd, stage) : 1;
  }

 private:
  RunControl& control_;
};

// Hands blocks to the producing stage until the run's byte budget is issued.
struct Feeder {
  DmabufStage& stage;
  const std::vector<int>& buffers;
  std::uint64_t blockBytes = 0;
  RunControl& control;
  Ring& ring;
  std::uint64_t issued = 0;

  void feed(std::size_t i) {
    // A producer that only fails would re-issue its blocks forever.
    if (control.doneIssuing(issued) || control.errors > kMaxErrors) {
      return;
    }
    auto r = stage.enqueue(buffers[i], blockBytes);
    if (!r.ok()) {
      control.error(r.error());
      return;  // the slot stays idle
    }
    issued += blockBytes;
    ring.push(i);
  }
};

// How many of `ring`'s oldest entries `stage` is done with, given that entry `upTo` is: the
// entries before it are asked without waiting (`scratch` holds their pollfds) and the count
// stops at the first one not done (a device completes in order, so that is an anomaly).
std::size_t donePrefix(uapi::FdCalls& ctx, const Ring& ring, const std::vector<int>& buffers,
                       const DmabufStage& stage, std::size_t upTo,
                       std::vector<struct pollfd>& scratch) {
  scratch.clear();
  for (std::size_t k = 0; k < upTo; ++k) {
    scratch.push_back({buffers[ring.at(k)], stage.doneEvents(), 0});
  }
  if (!scratch.empty() && !ctx.poll(scratch, 0).ok()) {
    return 0;
  }
  std::size_t done = 0;
  while (done < upTo && (scratch[done].revents & stage.doneEvents()) != 0) {
    ++done;
  }
  return done == upTo ? upTo + 1 : done;
}

// Time up or stopped: cancel what a stage still has, newest first (DETACH cancels a buffer's
// pending transfers, as the kernel's does), so no transfer queued behind a cancelled one
// reaches the far end out of order. The ADC and DAC are stopped by disabling them.
void cancelNewestFirst(DmabufStage& stage, const std::vector<int>& buffers, const Ring& ring) {
  for (std::size_t k = ring.size(); k-- > 0;) {
    (void)stage.detach(buffers[ring.at(k)]);
  }
}

}  // namespace

std::uint64_t runDmabufChain(uapi::FdCalls& ctx, DmabufStage& first, DmabufStage& second,
                             const std::vector<int>& buffers, std::uint64_t blockBytes,
                             RunControl& control) {
  const std::size_t n = buffers.size();
  Ring inFirst(n);
  Ring inSecond(n);
  const BlockStatus status(control);
  std::uint64_t delivered = 0;
  Feeder feeder{first, buffers, blockBytes, control, inFirst};
  auto toFirst = [&](std::size_t i) { feeder.feed(i); };
  auto toSecond = [&](std::size_t i) {
    if (control.aborted()) {
      return;
    }
    auto r = second.enqueue(buffers[i], blockBytes);
    if (!r.ok()) {
      control.error(r.error());
      toFirst(i);
      return;
    }
    inSecond.push(i);
  };

  for (std::size_t i = 0; i < n; ++i) {
    toFirst(i);
  }
  // A round: one poll on one entry of each ring, the `batch`-th oldest (or the newest, when a
  // ring holds fewer). Each device completes its blocks in order, so once that one is done the
  // older ones are too: the application wakes once per batch and hands the batch on. The
  // older entries are still asked (without waiting) and only the done prefix is retired.
  const std::size_t batch = control.batch();
  std::vector<struct pollfd> asked;
  asked.reserve(n);
  const auto waitIndex = [&](const Ring& ring) { return std::min(batch, ring.size()) - 1; };
  std::array<struct pollfd, 2> heads{};
  while ((!inFirst.empty() || !inSecond.empty()) && !control.aborted()) {
    std::size_t k = 0;
    const std::size_t firstAt = inFirst.empty() ? heads.size() : k++;
    const std::size_t secondAt = inSecond.empty() ? heads.size() : k++;
    const std::size_t firstIndex = inFirst.empty() ? 0 : waitIndex(inFirst);
    const std::size_t secondIndex = inSecond.empty() ? 0 : waitIndex(inSecond);
    if (firstAt < k) {
      heads[firstAt] = {buffers[inFirst.at(firstIndex)], first.doneEvents(), 0};
    }
    if (secondAt < k) {
      heads[secondAt] = {buffers[inSecond.at(secondIndex)], second.doneEvents(), 0};
    }
    auto ready = ctx.poll(std::span(heads.data(), k), static_cast<int>(kWaitSlice.count()));
    if (!ready.ok()) {
      if (ready.code() == EINTR) {
        continue;  // a signal (the stop request's): the loop asks whether to go on
      }
      control.error(ready.error());
      if (control.errors > kMaxErrors) {
        break;
      }
      continue;
    }
    if (control.aborted()) {
      break;  // the wake-up may be the cancellation's: those blocks were not delivered
    }
    // Counted before either ring moves: retiring one ring's blocks pushes onto the other.
    const std::size_t firstDone = firstAt < k && (heads[firstAt].revents & first.doneEvents()) != 0
                                      ? donePrefix(ctx, inFirst, buffers, first, firstIndex, asked)
                                      : 0;
    const std::size_t secondDone =
        secondAt < k && (heads[secondAt].revents & second.doneEvents()) != 0
            ? donePrefix(ctx, inSecond, buffers, second, secondIndex, asked)
            : 0;
    for (std::size_t d = 0; d < firstDone; ++d) {
      const std::size_t i = inFirst.front();
      inFirst.pop();
      if (const int s = status.take(buffers[i], first); s < 0) {
        control.error(s, "producer block");
        feeder.issued -= blockBytes;  // nothing was produced: the block is issued again
        toFirst(i);                   // its data is not valid: do not pass it on
      } else {
        toSecond(i);
      }
    }
    for (std::size_t d = 0; d < secondDone; ++d) {
      const std::size_t i = inSecond.front();
      inSecond.pop();
      if (const int s = status.take(buffers[i], second); s < 0) {
        control.error(s, "consumer block");
      } else {
        delivered += blockBytes;
      }
      toFirst(i);
    }
    control.tick(delivered);
  }
  cancelNewestFirst(second, buffers, inSecond);
  cancelNewestFirst(first, buffers, inFirst);
  return delivered;
}

std::uint64_t runDmabufToApp(uapi::FdCalls& ctx, DmabufStage& first,
                             const std::vector<int>& buffers, std::uint64_t blockBytes,
                             const std::function<void(std::size_t slot)>& consume,
                             RunControl& control) {
  const std::size_t n = buffers.size();
  Ring inFirst(n);
  const BlockStatus status(control);
  std::uint64_t delivered = 0;
  Feeder feeder{first, buffers, blockBytes, control, inFirst};
  auto toFirst = [&](std::size_t i) { feeder.feed(i); };

  for (std::size_t i = 0; i < n; ++i) {
    toFirst(i);
  }
  // As in runDmabufChain: wait for the `batch`-th oldest block, then take the done prefix.
  const std::size_t batch = control.batch();
  std::vector<struct pollfd> asked;
  asked.reserve(n);
  while (!inFirst.empty() && !control.aborted()) {
    const std::size_t upTo = std::min(batch, inFirst.size()) - 1;
    std::array<struct pollfd, 1> head{{{buffers[inFirst.at(upTo)], first.doneEvents(), 0}}};
    auto ready = ctx.poll(head, static_cast<int>(kWaitSlice.count()));
    if (!ready.ok() || *ready == 0) {
      control.tick(delivered);
      continue;
    }
    if (control.aborted()) {
      break;  // the wake-up may be the cancellation's: those blocks were not delivered
    }
    const std::size_t done = donePrefix(ctx, inFirst, buffers, first, upTo, asked);
    for (std::size_t d = 0; d < done; ++d) {
      const std::size_t i = inFirst.front();
      inFirst.pop();
      if (const int s = status.take(buffers[i], first); s < 0) {
        control.error(s, "producer block");
        feeder.issued -= blockBytes;  // nothing was produced: the block is issued again
      } else if (!control.aborted()) {
        consume(i);
        delivered += blockBytes;
      }
      toFirst(i);
    }
    control.tick(delivered);
  }
  cancelNewestFirst(first, buffers, inFirst);
  return delivered;
}

}  // namespace zbuf::pipeline
