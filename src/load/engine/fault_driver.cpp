// The fault driver: injects and heals a phase's faults on schedule, watches the store's
// health meanwhile, and charges what each fault window cost.
#include <fmt/format.h>

#include <boost/asio/thread_pool.hpp>

#include "core/asio.hpp"
#include "load/engine/run_state.hpp"

namespace agentstate::load::detail {
namespace {

constexpr auto kHealthEvery = std::chrono::milliseconds(100);
constexpr auto kHealthDeadline = std::chrono::milliseconds(1000);
// A during phase may fail 40 % of its units (its success gate is 60 %): its error budget.
constexpr double kFaultErrorBudget = 0.40;

// Runs a blocking fault call (a kill, a restart) on `worker` and resumes here once it has
// returned: the load goes on meanwhile.
Awaitable<Status> OffThread(asio::thread_pool& worker, Fault* fault, bool begin) {
  auto call = [fault, begin]() -> Awaitable<Status> {
    co_return begin ? fault->Begin() : fault->End();
  };
  co_return co_await asio::co_spawn(worker.get_executor(), call, asio::use_awaitable);
}

}  // namespace

// A phase's fault events, in order: inject, hold, heal; each timed.
Awaitable<void> DriveFaults(State& st, const PhaseSpec& p, TimePoint start,
                            std::vector<FaultWindow>& windows, asio::thread_pool& worker) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  boost::system::error_code ec;
  TimePoint quiet_until = start;  // each fault's recovery is observed before the next begins
  for (const FaultEvent& ev : p.fault_events) {
    // Faults that took longer than planned push the next ones back; one that could no longer
    // be held and watched within the phase's duration is not started.
    const TimePoint at = std::max(start + ev.at, quiet_until);
    FaultWindow w;
    w.phase = p.name;
    w.name = ev.fault;
    if (st.Interrupted()) {
      w.fault = "not started";
      w.error = "not started: the run was interrupted";
      w.start_s = w.end_s = st.Elapsed();
      windows.push_back(std::move(w));
      continue;
    }
    if (at + ev.hold + p.observe > start + p.duration && at > start + ev.at) {
      w.fault = "not started";
      w.error =
          "not started: the faults before it took longer than planned, and it no longer fit the "
          "phase";
      w.start_s = w.end_s = st.Elapsed();
      windows.push_back(std::move(w));
      continue;
    }
    timer.expires_at(at);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    w.start_s = st.Elapsed();
    Fault* fault = nullptr;
    for (const auto& f : st.ctx.faults) {
      if (f.name == ev.fault) fault = f.fault;
    }
    if (!fault) {
      w.fault = "none";
      w.error = st.ctx.faults.empty() ? fmt::format("{} offers no fault the harness can inject",
                                                    st.ctx.store.Describe())
                                      : fmt::format("this run has no fault named {}", ev.fault);
      w.end_s = w.start_s;
      windows.push_back(std::move(w));
      continue;
    }
    w.fault = fault->Describe();
    const auto t0 = SteadyClock::now();
    const Status in = co_await OffThread(worker, fault, true);
    w.inject_ms = Ms(MicrosBetween(t0, SteadyClock::now()));
    w.injected = in.ok();
    if (in.ok()) {
      timer.expires_after(ev.hold);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    } else {
      w.error = in.ToString();
    }
    const auto t1 = SteadyClock::now();
    const Status out =
        co_await OffThread(worker, fault, false);  // also undoes a half-done injection
    w.heal_ms = Ms(MicrosBetween(t1, SteadyClock::now()));
    if (in.ok() && !out.ok()) w.error = "healing failed: " + out.ToString();
    w.end_s = st.Elapsed();
    windows.push_back(std::move(w));
    quiet_until = SteadyClock::now() + p.observe;
  }
}

// Polls the store's Health() while `stop` is false: a tier reported down is a sign of the
// fault even when no unit of work failed (a write-behind or analytics outage).
Awaitable<void> PollHealth(State& st, const bool& stop) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  boost::system::error_code ec;
  while (!stop) {
    auto h = co_await st.ctx.store.Health(DeadlineIn(kHealthDeadline));
    if (!(h && h->healthy())) st.Mark(State::SignKind::kHealth);
    timer.expires_after(kHealthEvery);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

// Recovered means a clean stretch this long after healing: no failed unit, no failed attempt,
// no tier reported down. (The last sign in the window would do on a quiet store; under load
// a stray timeout seconds later is not the fault's.)
constexpr double kCleanStretchS = 1.0;

// Each window's figures from the marks between its injection and the next one (or the end
// of its phase).
void AssessFaults(const State& st, std::vector<FaultWindow>& windows, double phase_end_s) {
  for (std::size_t k = 0; k < windows.size(); ++k) {
    FaultWindow& w = windows[k];
    w.until_s = k + 1 < windows.size() ? windows[k + 1].start_s : phase_end_s;
    // Units in the window, from the 100 ms counts; failed units and the signs, from marks.
    // Detection counts every sign; recovery leaves out failed attempts a retry hid (under
    // load a stray 250 ms timeout is not the fault's).
    for (std::size_t b = static_cast<std::size_t>(w.start_s / State::kBucketS);
         b < st.unit_buckets.size() && static_cast<double>(b) * State::kBucketS < w.until_s; ++b) {
      w.units += st.unit_buckets[b];
    }
    std::vector<double> bad;
    double first_sign = INFINITY;
    for (const auto& m : st.signs) {
      if (m.t_s < w.start_s || m.t_s >= w.until_s) continue;
      first_sign = std::min(first_sign, static_cast<double>(m.t_s));
      if (m.kind == State::SignKind::kUnit) ++w.failed_units;
      if (m.kind != State::SignKind::kAttempt) bad.push_back(m.t_s);
    }
    std::sort(bad.begin(), bad.end());
    if (std::isfinite(first_sign)) w.detect_ms = (first_sign - w.start_s) * 1000.0;
    // The first clean stretch after healing: recovered from its start.
    double from = w.end_s;
    bool found = false;
    for (double b : bad) {  // sorted
      if (b < from) continue;
      if (b - from >= kCleanStretchS) {
        found = true;  // clean from `from` to b
        break;
      }
      from = b;  // a sign inside the stretch: it starts again after it
    }
    found = found || w.until_s - from >= kCleanStretchS;
    w.recover_ms = (from - w.end_s) * 1000.0;
    w.recovered = w.injected && w.error.empty() && found;
    w.budget_spent_percent = w.units ? 100.0 * static_cast<double>(w.failed_units) /
                                           static_cast<double>(w.units) / kFaultErrorBudget
                                     : 0;
  }
}

// Acknowledged writes the ledger found lost (through the store, or on a tiered store's
// durable tier alone; a run lost in both counts once), charged to the fault window they
// were acknowledged in.
void ChargeLosses(const std::vector<const LedgerVerdict*>& verdicts, TimePoint t0,
                  std::vector<FaultWindow>& windows) {
  std::map<std::string, const LostWrite*> lost;
  for (const LedgerVerdict* v : verdicts) {
    for (const auto& l : v->lost_writes) lost.emplace(l.run_id, &l);
  }
  for (const auto& [run, l] : lost) {
    const double at = std::chrono::duration<double>(l->acked_at - t0).count();
    for (auto& w : windows) {
      if (at >= w.start_s && at < w.until_s)
        ++(l->durability == CheckpointType::kAuto ? w.lost_auto : w.lost_critical);
    }
  }
}

}  // namespace agentstate::load::detail
