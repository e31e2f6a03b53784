// The loops of a Pipeline run. The zero-copy loops allocate nothing per block (the devices'
// fences aside): slots live in fixed rings, and the application thread sleeps on a futex that
// a fence callback (a node owned by the loop, so adding it never allocates) wakes.
#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "devices/pipeline_stages.h"
#include "zbuf/base/sys.h"

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
        std::unique_lock lock(m_);
        while (!done_) {
          if (control.aborted()) {
            lock.unlock();
            cancel();
            return;
          }
          cv_.wait_for(lock, std::chrono::milliseconds(10));
        }
      }) {}

StopWatch::~StopWatch() {
  {
    const std::lock_guard lock(m_);
    done_ = true;
  }
  cv_.notify_one();
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
    auto w = sink.write(std::span<const std::byte>(block).first(have));
    if (w.ok()) {
      delivered += *w;
    } else {
      control.error(w.error());
    }
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
  [[nodiscard]] std::size_t front() const noexcept { return items_[head_]; }
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

// Sleeps until one of up to two fences signals (or a time slice passes), without allocating.
class FenceWaiter {
 public:
  FenceWaiter() : cbs_{Callback(this), Callback(this)} {}

  void wait(std::span<Fence* const> fences) {
    word_.store(0, std::memory_order_relaxed);
    std::size_t added = 0;
    bool ready = false;
    for (Fence* f : fences) {
      if (!f->addCallback(cbs_[added]).ok()) {
        ready = true;  // already signalled
        break;
      }
      fences_[added++] = f;
    }
    if (!ready) {
      (void)sys::futexWait(word_, 0, kWaitSlice);
    }
    for (std::size_t i = 0; i < added; ++i) {
      fences_[i]->removeCallback(cbs_[i]);
    }
  }

 private:
  struct Callback : FenceCallback {
    explicit Callback(FenceWaiter* w) : FenceCallback(&wake), waiter(w) {}
    static void wake(Fence& /*fence*/, FenceCallback& self) {
      FenceWaiter* w = static_cast<Callback&>(self).waiter;
      w->word_.store(1, std::memory_order_release);
      sys::futexWake(w->word_, 1);
    }
    FenceWaiter* waiter;
  };
  std::atomic<std::uint32_t> word_{0};
  std::array<Callback, 2> cbs_;
  std::array<Fence*, 2> fences_{};
};

struct Slot {
  FencePtr fence;
};

// Hands blocks to the producing stage until the run's byte budget is issued.
struct Feeder {
  DmabufStage& stage;
  const std::vector<BufferPtr>& buffers;
  std::uint64_t blockBytes;
  RunControl& control;
  std::vector<Slot>& slots;
  Ring& ring;
  std::uint64_t issued = 0;

  void feed(std::size_t i) {
    // A producer that only fails would re-issue its blocks forever.
    if (control.doneIssuing(issued) || control.errors > kMaxErrors) {
      return;
    }
    auto f = stage.enqueue(buffers[i], blockBytes);
    if (!f.ok()) {
      control.error(f.error());
      return;  // the slot stays idle
    }
    issued += blockBytes;
    slots[i].fence = std::move(*f);
    ring.push(i);
  }
};

}  // namespace

std::uint64_t runDmabufChain(DmabufStage& first, DmabufStage& second,
                             const std::vector<BufferPtr>& buffers, std::uint64_t blockBytes,
                             RunControl& control) {
  const std::size_t n = buffers.size();
  std::vector<Slot> slots(n);
  Ring inFirst(n);
  Ring inSecond(n);
  std::uint64_t delivered = 0;
  FenceWaiter waiter;
  Feeder feeder{first, buffers, blockBytes, control, slots, inFirst};
  auto toFirst = [&](std::size_t i) { feeder.feed(i); };
  auto toSecond = [&](std::size_t i) {
    if (control.aborted()) {
      return;
    }
    auto f = second.enqueue(buffers[i], blockBytes);
    if (!f.ok()) {
      control.error(f.error());
      toFirst(i);
      return;
    }
    slots[i].fence = std::move(*f);
    inSecond.push(i);
  };

  for (std::size_t i = 0; i < n; ++i) {
    toFirst(i);
  }
  // Once the run is aborted, blocks in flight are not waited for: the caller stops the devices
  // (their fences signal -EINTR or -ECONNRESET) and detaches the buffers.
  while ((!inFirst.empty() || !inSecond.empty()) && !control.aborted()) {
    bool progressed = false;
    while (!inFirst.empty() && slots[inFirst.front()].fence->isSignaled()) {
      const std::size_t i = inFirst.front();
      inFirst.pop();
      const int status = slots[i].fence->status();
      slots[i].fence.reset();
      progressed = true;
      if (status < 0 && control.aborted()) {
        break;  // cancelled by the stop, not a failure
      }
      if (status < 0) {
        control.error(status, "producer block");
        feeder.issued -= blockBytes;  // nothing was produced: the block is issued again
        toFirst(i);
      } else {
        toSecond(i);
      }
    }
    while (!inSecond.empty() && slots[inSecond.front()].fence->isSignaled()) {
      const std::size_t i = inSecond.front();
      inSecond.pop();
      const int status = slots[i].fence->status();
      slots[i].fence.reset();
      progressed = true;
      if (status < 0 && control.aborted()) {
        break;
      }
      if (status < 0) {
        control.error(status, "consumer block");
      } else {
        delivered += blockBytes;
      }
      toFirst(i);
    }
    control.tick(delivered);
    if (!progressed && (!inFirst.empty() || !inSecond.empty())) {
      std::array<Fence*, 2> heads{};
      std::size_t k = 0;
      if (!inFirst.empty()) {
        heads[k++] = slots[inFirst.front()].fence.get();
      }
      if (!inSecond.empty()) {
        heads[k++] = slots[inSecond.front()].fence.get();
      }
      waiter.wait(std::span<Fence* const>(heads.data(), k));
    }
  }
  return delivered;
}

std::uint64_t runDmabufToApp(DmabufStage& first, const std::vector<BufferPtr>& buffers,
                             std::uint64_t blockBytes,
                             const std::function<void(std::size_t slot)>& consume,
                             RunControl& control) {
  const std::size_t n = buffers.size();
  std::vector<Slot> slots(n);
  Ring inFirst(n);
  std::uint64_t delivered = 0;
  FenceWaiter waiter;
  Feeder feeder{first, buffers, blockBytes, control, slots, inFirst};
  auto toFirst = [&](std::size_t i) { feeder.feed(i); };

  for (std::size_t i = 0; i < n; ++i) {
    toFirst(i);
  }
  while (!inFirst.empty() && !control.aborted()) {
    const std::size_t i = inFirst.front();
    Fence* head = slots[i].fence.get();
    if (!head->isSignaled()) {
      waiter.wait(std::span<Fence* const>(&head, 1));
      control.tick(delivered);
      continue;
    }
    inFirst.pop();
    const int status = head->status();
    slots[i].fence.reset();
    if (status < 0 && control.aborted()) {
      break;  // cancelled by the stop, not a failure
    }
    if (status < 0) {
      control.error(status, "producer block");
      feeder.issued -= blockBytes;  // nothing was produced: the block is issued again
    } else if (!control.aborted()) {
      consume(i);
      delivered += blockBytes;
    }
    toFirst(i);
    control.tick(delivered);
  }
  return delivered;
}

}  // namespace zbuf::pipeline
