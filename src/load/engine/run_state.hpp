// The engine's own state while a scenario runs, shared by its parts: the unit of work and the
// executors (units.cpp), the fault driver (fault_driver.cpp) and RunScenario (scenario.cpp).
// Internal to src/load/engine; nothing outside it includes this.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>

#include "core/asio.hpp"
#include "load/engine/scenario.hpp"

namespace agentstate::load::detail {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

inline int64_t MicrosBetween(TimePoint a, TimePoint b) {
  return std::chrono::duration_cast<std::chrono::microseconds>(b - a).count();
}
inline double Ms(int64_t us) { return static_cast<double>(us) / 1000.0; }

// A failed call whose write may have landed all the same.
inline bool InDoubt(const Status& s) {
  return s.code() == StatusCode::kTimeout || s.code() == StatusCode::kUnavailable ||
         s.code() == StatusCode::kInternal;
}

// The harness pool for stores without one: at most `slots` calls in flight; a caller waits
// up to `wait` for a slot, and is turned away at once when `max_waiters` callers already wait.
// Single-threaded, like everything on the harness executor.
class Pool {
 public:
  Pool(asio::any_io_executor ex, int slots, std::size_t max_waiters, std::chrono::milliseconds wait,
       PhaseResult& stats)
      : ex_(std::move(ex)), free_(slots), max_waiters_(max_waiters), wait_(wait), stats_(stats) {}

  Awaitable<Status> Acquire() {
    if (free_ > 0) {
      --free_;
      co_return Status();
    }
    if (waiters_.size() >= max_waiters_) {
      ++stats_.pool_rejections;
      co_return Status(
          StatusCode::kPoolExhausted,
          fmt::format("every pool slot busy and {} callers already waiting", waiters_.size()));
    }
    ++stats_.pool_waits;
    const auto t0 = SteadyClock::now();
    auto w = std::make_shared<Waiter>(ex_, t0 + wait_);
    waiters_.push_back(w);
    boost::system::error_code ec;
    co_await w->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    stats_.pool_wait.Record(MicrosBetween(t0, SteadyClock::now()));
    if (w->granted) co_return Status();  // Release handed us its slot
    std::erase(waiters_, w);
    ++stats_.pool_timeouts;
    co_return Status(StatusCode::kPoolExhausted,
                     fmt::format("no pool slot within {} ms", wait_.count()));
  }

  void Release() {
    while (!waiters_.empty()) {
      auto w = waiters_.front();
      waiters_.pop_front();
      if (w->timer.expiry() <= SteadyClock::now()) continue;  // already timing out
      w->granted = true;
      w->timer.cancel();
      return;
    }
    ++free_;
  }

 private:
  struct Waiter {
    Waiter(const asio::any_io_executor& ex, TimePoint until) : timer(ex, until) {}
    asio::steady_timer timer;
    bool granted = false;
  };
  asio::any_io_executor ex_;
  int free_;
  std::size_t max_waiters_;
  std::chrono::milliseconds wait_;
  PhaseResult& stats_;
  std::deque<std::shared_ptr<Waiter>> waiters_;
};

// Everything one running scenario shares: the ledger, the interval recorders and what the
// progress line shows. Lives in RunScenario's frame; used only on its executor's thread.
struct State {
  const ScenarioSpec& spec;
  RunContext ctx;
  TimePoint t0;
  Ledger ledger;
  std::vector<IntervalRecorder> recorders;  // [0] is the 1 s series; then one per gate window
  // Finer rows for the charts of short runs (1, 10, 100 ms), each over its first 100
  // intervals only: a run shorter than a second would draw its 1 s series as one point.
  std::vector<IntervalRecorder> fine;
  std::string phase;
  const PhaseResult* current = nullptr;  // the running phase, for the progress line
  std::unique_ptr<Pool> pool;            // the running phase's harness pool, if any
  // kConstant phases run until then; a phase's fault driver pushes it out until the last
  // fault is healed and observed.
  TimePoint phase_end{};
  bool Interrupted() const { return ctx.interrupted && *ctx.interrupted; }
  // During fault phases, as offsets from t0: units of work per 100 ms (all of them, so a
  // window's count is exact without a mark per unit), and the signs of a fault, each with
  // its time: a failed unit, a failed attempt (one a retry then hid), a Health() poll that
  // found a tier down. Failures are rare; their marks are bounded all the same.
  enum class SignKind : uint8_t { kUnit, kAttempt, kHealth };
  struct Sign {
    float t_s;
    SignKind kind;
  };
  static constexpr std::size_t kMaxSigns = 1'000'000;
  static constexpr double kBucketS = 0.1;
  bool marking = false;
  std::vector<uint32_t> unit_buckets;
  std::vector<Sign> signs;
  double Elapsed() const { return std::chrono::duration<double>(SteadyClock::now() - t0).count(); }
  // Whether agent (or arrival) i is this shard's.
  bool Mine(int i) const { return i % ctx.shard_count == ctx.shard_index; }
  void Record(int64_t us, bool ok) {
    for (auto& r : recorders) r.Record(us, ok);
    for (auto& r : fine) r.Record(us, ok);
    if (!marking) return;
    const double t = Elapsed();
    const auto bucket = static_cast<std::size_t>(t / kBucketS);
    if (unit_buckets.size() <= bucket) unit_buckets.resize(bucket + 1, 0);
    ++unit_buckets[bucket];
    if (!ok) Mark(SignKind::kUnit);
  }
  void Mark(SignKind kind) {
    if (marking && signs.size() < kMaxSigns) signs.push_back({static_cast<float>(Elapsed()), kind});
  }
};

// The executors (units.cpp): drive the phase's agents, each doing its unit of work.
Awaitable<void> RunWave(State& st, const PhaseSpec& p, PhaseResult& out);
Awaitable<void> RunConstant(State& st, const PhaseSpec& p, PhaseResult& out);
Awaitable<void> RunArrivals(State& st, const PhaseSpec& p, PhaseResult& out);

// The fault driver (fault_driver.cpp).
// A phase's fault events, in order: inject, hold, heal; each timed. The blocking fault calls
// (a kill, a restart) run on `worker`, so the load goes on meanwhile.
Awaitable<void> DriveFaults(State& st, const PhaseSpec& p, TimePoint start,
                            std::vector<FaultWindow>& windows, asio::thread_pool& worker);
// Polls the store's Health() during fault phases, marking each poll that found a tier down.
Awaitable<void> PollHealth(State& st, const bool& stop);
// What each fault window cost: units, failures, recovery, against the error budget.
void AssessFaults(const State& st, std::vector<FaultWindow>& windows, double phase_end_s);
// Charges lost acknowledged writes to the fault windows they fall in.
void ChargeLosses(const std::vector<const LedgerVerdict*>& verdicts, TimePoint t0,
                  std::vector<FaultWindow>& windows);

}  // namespace agentstate::load::detail
