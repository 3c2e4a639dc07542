#include "load/engine/scenario.hpp"
#include "core/asio.hpp"
#include "load/engine/run_state.hpp"

#include <fmt/format.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <ctime>
#include <deque>
#include <iostream>
#include <numeric>
#include <optional>
#include <set>

#include "core/wait_group.hpp"

namespace agentstate::load {

using namespace detail;

std::string_view Name(Work w) {
  switch (w) {
    case Work::kAgent: return "agent";
    case Work::kRead: return "read";
    case Work::kSaveLoadUpdate: return "save_load_update";
    case Work::kCriticalCheckpoint: return "critical_checkpoint";
    case Work::kLargeSaves: return "large_save";
    case Work::kSaveDelete: return "save_delete";
  }
  return "agent";
}

std::string_view Name(Executor e) {
  switch (e) {
    case Executor::kWave: return "wave";
    case Executor::kConstant: return "constant";
    case Executor::kArrivals: return "arrivals";
  }
  return "wave";
}

namespace {

// Closes interval rows on time and draws the progress line, until `done`.
Awaitable<void> Ticker(State& st, const bool& done, asio::steady_timer& timer) {
  std::vector<IntervalRecorder*> all;
  for (auto& r : st.recorders) all.push_back(&r);
  for (auto& r : st.fine) all.push_back(&r);
  std::vector<TimePoint> next;
  for (auto* r : all) next.push_back(st.t0 + r->width());
  while (!done) {
    timer.expires_at(*std::min_element(next.begin(), next.end()));
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    const auto now = SteadyClock::now();
    // An interrupt ends the phase's load now; a fault driver still heals what it injected.
    if (st.Interrupted() && st.phase_end > now) st.phase_end = now;
    for (std::size_t i = 0; i < all.size(); ++i) {
      // Catch up on any interval boundaries passed (a busy executor can wake late).
      while (next[i] <= now) {
        all[i]->Close(std::chrono::duration<double>(next[i] - st.t0).count());
        next[i] += all[i]->width();
      }
      if (all[i]->full()) next[i] = TimePoint::max();  // covered its horizon: no more ticks
    }
    if (st.ctx.progress && !st.recorders[0].rows().empty()) {
      const IntervalRow& r = st.recorders[0].rows().back();
      const uint64_t done_n = st.current ? st.current->executed : 0;
      const uint64_t failed = st.current ? st.current->failed : 0;
      std::cerr << fmt::format(
                       "\r\x1b[K{} [{}] {:.0f}s  {} done  {:.0f}/s  p50 {:.2f} ms  p99 {:.2f} ms  "
                       "errors {}",
                       st.spec.name, st.phase, st.Elapsed(), done_n, static_cast<double>(r.count),
                       r.p50_ms, r.p99_ms, failed)
                << std::flush;
    }
  }
}

}  // namespace

Status ValidateScenario(const ScenarioSpec& spec) {
  auto bad = [&](const PhaseSpec& p, const std::string& what) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("scenario {} phase {}: {}", spec.name, p.name, what));
  };
  if (spec.phases.empty())
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("scenario {} has no phases", spec.name));
  if (spec.op_timeout.count() <= 0 || spec.max_duration.count() <= 0) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("scenario {}: timeouts and durations must be > 0", spec.name));
  }
  std::set<std::string> names;
  for (const auto& p : spec.phases) {
    if (!names.insert(p.name).second) return bad(p, "phase names must be unique");
    if (p.sizes.empty() || p.patterns.empty())
      return bad(p, "needs at least one state size and one pattern");
    if (p.pause_after.count() < 0) return bad(p, "pause must not be negative");
    switch (p.executor) {
      case Executor::kWave:
        if (p.agents < 1) return bad(p, fmt::format("a wave needs >= 1 agent (got {})", p.agents));
        break;
      case Executor::kConstant:
        if (p.agents < 1)
          return bad(p, fmt::format("constant concurrency needs >= 1 agent (got {})", p.agents));
        if (p.duration.count() <= 0) return bad(p, "constant concurrency needs a duration > 0");
        break;
      case Executor::kArrivals:
        if (p.agents < 0) return bad(p, "max in flight must not be negative");
        if (p.duration.count() <= 0) return bad(p, "an arrival phase needs a duration > 0");
        if (!(p.rate_per_s > 0) || !(p.rate_end_per_s >= 0) || !std::isfinite(p.rate_per_s) ||
            !std::isfinite(p.rate_end_per_s) || p.rate_per_s > 1e7 || p.rate_end_per_s > 1e7) {
          return bad(p, fmt::format("arrival rate must be in (0, 1e7] per second (got {} -> {})",
                                    p.rate_per_s, p.rate_end_per_s));
        }
        break;
    }
    if (p.max_operations == 0) return bad(p, "max_operations must be > 0");
    if (!p.fault_events.empty() && p.executor != Executor::kConstant) {
      return bad(
          p, "fault events need constant concurrency (the phase runs until the faults are healed)");
    }
    for (const auto& ev : p.fault_events) {
      if (ev.at.count() < 0 || ev.hold.count() < 0)
        return bad(p, "fault times must not be negative");
    }
    if (p.critical_every < 0) return bad(p, "critical_every must not be negative");
    if (p.delete_every < 0) return bad(p, "delete_every must not be negative");
  }
  for (const auto& g : spec.gates) {
    if (!std::isfinite(g.limit) || g.limit < 0) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("scenario {} gate {}: limit must be a finite non-negative number",
                                spec.name, g.name));
    }
    if (g.interval && (g.interval->window.count() <= 0 || g.interval->min_percent < 0 ||
                       g.interval->min_percent > 100)) {
      return Status(
          StatusCode::kInvalidArgument,
          fmt::format("scenario {} gate {}: interval window must be > 0 and the share 0..100 %",
                      spec.name, g.name));
    }
  }
  return Status();
}

std::string ScenarioVersion(const ScenarioSpec& spec) {
  std::string shape = spec.name + "|" + spec.user_id;
  for (const auto& p : spec.phases) {
    shape += fmt::format("|{}:{}:{}:{}:{}:{}:{}:{}:{}", p.name, Name(p.executor), p.agents,
                         p.duration.count(), p.rate_per_s, p.rate_end_per_s,
                         static_cast<int>(p.arrival), p.pause_after.count(), p.max_operations);
    for (const auto& ev : p.fault_events)
      shape += fmt::format(",fault:{}@{}+{}", ev.fault, ev.at.count(), ev.hold.count());
    if (p.critical_every > 0) shape += fmt::format(",critical/{}", p.critical_every);
    if (p.delete_every > 0) shape += fmt::format(",delete/{}", p.delete_every);
    // append, not `std::string(",") + ...`: g++ 12 at -O3 (Release) calls that a -Wrestrict
    // overlap (gcc bug 105329), fatal under -Werror.
    for (auto z : p.sizes) shape.append(",").append(Name(z));
    for (auto x : p.patterns) shape.append(",").append(Name(x));
  }
  for (const auto& g : spec.gates) {
    shape += fmt::format(
        "|{}:{}:{}:{}", g.name, g.metric, static_cast<int>(g.compare),
        g.interval ? fmt::format("{}s>={}", g.interval->window.count(), g.interval->min_percent)
                   : "");
  }
  return fmt::format("{:016x}", HashScope(0, shape, 0));
}

Awaitable<ScenarioResult> RunScenario(ScenarioSpec spec, RunContext ctx) {
  ScenarioResult result;
  result.started_unix = static_cast<int64_t>(std::time(nullptr));
  if (!ctx.harness_tid) ctx.harness_tid = static_cast<int>(::syscall(SYS_gettid));
  ResourceSampler sampler(spec.sample_interval);
  sampler.WatchThread(ctx.harness_tid);
  sampler.WatchStore([&store = ctx.store] { return store.Stats().values; });
  sampler.Start();
  State st{spec, ctx, SteadyClock::now(), {}, {}, {}};
  std::set<int64_t> gate_widths;
  for (const auto& g : spec.gates) {
    if (g.interval)
      gate_widths.insert(
          std::chrono::duration_cast<std::chrono::milliseconds>(g.interval->window).count());
  }
  st.recorders.emplace_back(std::chrono::seconds(1), gate_widths.count(1000) > 0);
  for (int64_t ms : gate_widths) {
    if (ms != 1000) st.recorders.emplace_back(std::chrono::milliseconds(ms), true);
  }
  // 1 ms rows over the first 0.1 s, 10 ms over the first second, 100 ms over the first 10 s:
  // a run charts the finest that covers it, in 10 to 100 rows.
  for (int ms : {1, 10, 100}) st.fine.emplace_back(std::chrono::milliseconds(ms), false, 100);
  auto ex = co_await asio::this_coro::executor;
  bool done = false;
  asio::steady_timer tick(ex);
  core::WaitGroup ticker(ex);
  ticker.Add(1);
  asio::co_spawn(
      ex,
      [&]() -> Awaitable<void> {
        co_await Ticker(st, done, tick);
        ticker.Done();
      },
      asio::detached);

  // Every phase's measurement structures (histograms are ~188 KB each) exist before the
  // first phase runs: allocated mid-run, they read as RSS growth to the leak gates.
  result.phases.resize(spec.phases.size());
  for (std::size_t i = 0; i < spec.phases.size(); ++i) {
    result.phases[i].name = spec.phases[i].name;
    result.phases[i].executor = spec.phases[i].executor;
    result.phases[i].kinds[std::string(Name(spec.phases[i].work))];
    if (spec.phases[i].reads > 0) result.phases[i].kinds[std::string(Name(Work::kRead))];
    if (spec.phases[i].critical_every > 0)
      result.phases[i].kinds[std::string(Name(Work::kCriticalCheckpoint))];
    if (spec.phases[i].delete_every > 0)
      result.phases[i].kinds[std::string(Name(Work::kSaveDelete))];
  }
  std::size_t ran = 0;
  const auto end_by = st.t0 + spec.max_duration;
  // The store's counters are the session's: this scenario's share is the difference.
  const auto baseline = ctx.checks ? ctx.checks->Baseline() : std::map<std::string, double>{};
  for (std::size_t i = 0; i < spec.phases.size(); ++i) {
    const PhaseSpec& p = spec.phases[i];
    if (SteadyClock::now() >= end_by) {
      result.truncated = true;
      break;
    }
    if (st.Interrupted()) break;
    st.phase = p.name;
    if (ctx.debug) {
      fmt::print(stderr, "agentload: debug: {:.3f} s {}: phase {} starts ({}, {} agents)\n",
                 st.Elapsed(), spec.name, p.name, Name(p.executor), p.agents);
    }
    PhaseResult& pr = result.phases[i];
    ran = i + 1;
    st.current = &pr;
    pr.start_s = st.Elapsed();
    // The harness pool stands in for a client pool only where the store has none.
    const bool store_has_pool = ctx.store.Stats().values.count("pool_size") > 0;
    if (p.pool_slots > 0 && !store_has_pool)
      st.pool = std::make_unique<Pool>(ex, p.pool_slots, p.pool_max_waiters, p.pool_wait, pr);
    st.phase_end = std::min(end_by, SteadyClock::now() + p.duration);
    // A fault phase: its driver injects and heals on a worker thread, the health poller
    // watches the store, and the load goes on until the last fault has been observed healed.
    std::vector<FaultWindow> windows;
    bool stop_polling = false;
    core::WaitGroup fault_tasks(ex);
    std::optional<asio::thread_pool> worker;
    if (!p.fault_events.empty()) {
      st.marking = true;
      st.phase_end = end_by;  // until the driver is done: the scenario's own bound
      worker.emplace(1);
      fault_tasks.Add(2);
      const TimePoint start = SteadyClock::now();
      asio::co_spawn(
          ex,
          [&, start]() -> Awaitable<void> {
            co_await DriveFaults(st, p, start, windows, *worker);
            st.phase_end = st.Interrupted()
                               ? SteadyClock::now()
                               : std::min(end_by, std::max(start + p.duration,
                                                           SteadyClock::now() + p.observe));
            fault_tasks.Done();
          },
          asio::detached);
      asio::co_spawn(
          ex,
          [&]() -> Awaitable<void> {
            co_await PollHealth(st, stop_polling);
            fault_tasks.Done();
          },
          asio::detached);
    }
    switch (p.executor) {
      case Executor::kWave: co_await RunWave(st, p, pr); break;
      case Executor::kConstant: co_await RunConstant(st, p, pr); break;
      case Executor::kArrivals: co_await RunArrivals(st, p, pr); break;
    }
    if (!p.fault_events.empty()) {
      stop_polling = true;
      co_await fault_tasks.Wait();
      st.marking = false;
      AssessFaults(st, windows, st.Elapsed());
      for (auto& w : windows) result.faults.push_back(std::move(w));
    }
    st.pool.reset();
    pr.end_s = st.Elapsed();
    result.latency.Merge(pr.latency);
    if (ctx.verbose) {
      if (ctx.progress) std::cerr << "\r\x1b[K";
      std::cerr << fmt::format(
          "  {} / {} ({}): {} agents, {} ok, p50 {:.2f} ms, p99 {:.2f} ms, {:.2f} s\n", spec.name,
          pr.name, Name(pr.executor), pr.executed, pr.succeeded,
          Ms(pr.latency.ValueAtPercentile(50)), Ms(pr.latency.ValueAtPercentile(99)),
          pr.end_s - pr.start_s);
    }
    if (spec.stop_early) {
      if (std::string why = spec.stop_early(result, i); !why.empty()) {
        result.stopped_early = why;
        break;
      }
    }
    // The pause between phases is part of the scenario's shape (idle time the store sees),
    // never counted as work.
    if (p.pause_after.count() > 0 && i + 1 < spec.phases.size() && !st.Interrupted()) {
      st.phase = "pause";
      asio::steady_timer pause(ex, std::min(SteadyClock::now() + p.pause_after, end_by));
      boost::system::error_code ec;
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
  result.phases.resize(ran);  // phases never started (time bound, early stop) are not results
  result.interrupted = st.Interrupted();
  st.phase = "verify";
  st.current = nullptr;
  result.ledger = co_await st.ledger.Verify(ctx.store, spec.op_timeout, 64);
  std::vector<const LedgerVerdict*> verdicts{&result.ledger};
  if (ctx.checks) {
    co_await ctx.checks->Verify(st.ledger, baseline, spec, result);
    if (result.durable_ledger) verdicts.push_back(&*result.durable_ledger);
  }
  ChargeLosses(verdicts, st.t0, result.faults);
  done = true;
  tick.cancel();
  co_await ticker.Wait();
  if (ctx.progress) std::cerr << "\r\x1b[K" << std::flush;
  result.wall_s = st.Elapsed();
  // The last, partial intervals: short scenarios still get a row.
  for (auto& r : st.recorders) r.Close(result.wall_s);
  sampler.Stop();
  result.series = st.recorders[0].rows();
  // A run that ended within a fine recorder's horizon charts its finest rows.
  for (auto& r : st.fine) {
    if (result.wall_s * 1000 > static_cast<double>(r.horizon().count())) continue;
    r.Close(result.wall_s);
    result.fine_series = r.rows();
    result.fine_width = r.width();
    break;
  }
  for (const auto& r : st.recorders) {
    if (!gate_widths.count(r.width().count())) continue;
    result.windows[r.width().count()] = r.rows();
    result.window_histograms[r.width().count()] = r.histograms();
  }
  result.resources = sampler.Samples();
  result.peak_rss_mb = sampler.PeakRssMb();
  result.avg_cpu_percent = sampler.MeanCpuPercent();
  result.harness_thread_cpu_percent = sampler.MeanThreadCpuPercent();
  result.harness_thread_busy_percent = sampler.MeanThreadBusyPercent();
  result.spec = std::move(spec);
  FinishScenario(result);
  co_return result;
}

}  // namespace agentstate::load
