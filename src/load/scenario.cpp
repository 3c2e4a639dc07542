#include "load/scenario.hpp"

#include <fmt/format.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>
#include <iostream>
#include <set>

#include "load/wait_group.hpp"

namespace agentstate::load {

std::string_view Name(Executor e) {
  switch (e) {
    case Executor::kWave: return "wave";
    case Executor::kConstant: return "constant";
    case Executor::kArrivals: return "arrivals";
  }
  return "wave";
}

namespace {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;
constexpr auto kLateStart = std::chrono::milliseconds(10);
constexpr int kDefaultMaxInFlight = 10000;

int64_t MicrosBetween(TimePoint a, TimePoint b) {
  return std::chrono::duration_cast<std::chrono::microseconds>(b - a).count();
}

bool InDoubt(const Status& s) {
  return s.code() == StatusCode::kTimeout || s.code() == StatusCode::kUnavailable ||
         s.code() == StatusCode::kInternal;
}

// Everything one running scenario shares: the ledger, the interval recorders and what the
// progress line shows. Lives in RunScenario's frame; used only on its executor's thread.
struct State {
  const ScenarioSpec& spec;
  RunContext ctx;
  TimePoint t0;
  Ledger ledger;
  std::vector<IntervalRecorder> recorders;  // [0] is the 1 s series; then one per gate window
  std::string phase;
  const PhaseResult* current = nullptr;  // the running phase, for the progress line

  double Elapsed() const { return std::chrono::duration<double>(SteadyClock::now() - t0).count(); }
  // Whether agent (or arrival) i is this shard's.
  bool Mine(int i) const { return i % ctx.shard_count == ctx.shard_index; }
  void Record(int64_t us, bool ok) {
    for (auto& r : recorders) r.Record(us, ok);
  }
};

// The original unit of work: save the state, load it back, check it survived. Its latency
// is the whole of it, from `due` (when the agent should have started; for closed phases,
// when it did start). Document building happens before the clock starts.
Awaitable<void> UnitOfWork(State& st, PhaseResult& phase, const AgentSpec& agent, std::string payload,
                           std::optional<TimePoint> due) {
  SaveRequest req = st.ctx.generator.Request(agent, std::move(payload));
  const auto t0 = SteadyClock::now();
  const auto from = due.value_or(t0);
  auto finish = [&](bool ok) {
    const auto end = SteadyClock::now();
    phase.latency.Record(MicrosBetween(from, end));
    if (due) phase.uncorrected.Record(MicrosBetween(t0, end));
    st.Record(MicrosBetween(from, end), ok);
    ++(ok ? phase.succeeded : phase.failed);
  };
  auto ack = co_await st.ctx.store.Save(std::move(req), DeadlineIn(st.spec.op_timeout));
  phase.save.Record(MicrosBetween(t0, SteadyClock::now()));
  ++phase.executed;
  if (!ack) {
    st.ledger.Record(agent.run_id, InDoubt(ack.error()) ? WriteOutcome::kUnknown : WriteOutcome::kFailed, 0, 0,
                     CheckpointType::kAuto);
    ++phase.errors[std::string(CodeName(ack.error().code()))];
    finish(false);
    co_return;
  }
  st.ledger.Record(agent.run_id, WriteOutcome::kAcked, ack->version, ack->checksum, CheckpointType::kAuto);
  const auto t1 = SteadyClock::now();
  auto rec = co_await st.ctx.store.Load(agent.run_id, DeadlineIn(st.spec.op_timeout));
  phase.load.Record(MicrosBetween(t1, SteadyClock::now()));
  bool ok = false;
  if (!rec) {
    ++phase.errors[std::string(CodeName(rec.error().code()))];
    if (rec.error().code() == StatusCode::kCorruption) ++phase.corrupted;
  } else if (!*rec || (*rec)->run_id != agent.run_id || (*rec)->user_id != agent.user_id ||
             (*rec)->version != ack->version || (*rec)->checksum != ack->checksum) {
    // Read-your-write failed: a missing record or other bytes than acknowledged.
    ++phase.corrupted;
    ++phase.errors["verify_failed"];
  } else {
    ok = true;
  }
  finish(ok);
}

AgentSpec MakeAgent(const State& st, const PhaseSpec& p, int i) {
  const auto idx = static_cast<std::size_t>(i);
  return st.ctx.generator.Agent(st.spec.name + "/" + p.name, i, st.spec.user_id, p.sizes[idx % p.sizes.size()],
                                p.patterns[idx % p.patterns.size()]);
}

Awaitable<void> RunWave(State& st, const PhaseSpec& p, PhaseResult& out) {
  // Every document first: the wave then starts together, as the original's gather did.
  std::vector<std::pair<AgentSpec, std::string>> agents;
  agents.reserve(static_cast<std::size_t>(p.agents));
  for (int i = 0; i < p.agents; ++i) {
    if (!st.Mine(i)) continue;
    AgentSpec a = MakeAgent(st, p, i);
    std::string doc = st.ctx.generator.StateDocument(a);
    agents.emplace_back(std::move(a), std::move(doc));
  }
  out.start_s = st.Elapsed();  // building documents is set-up, not the wave's time
  auto ex = co_await asio::this_coro::executor;
  WaitGroup group(ex);
  group.Add(agents.size());
  for (auto& [agent, doc] : agents) {
    asio::co_spawn(
        ex,
        [&st, &out, &group, a = &agent, d = std::move(doc)]() mutable -> Awaitable<void> {
          co_await UnitOfWork(st, out, *a, std::move(d), std::nullopt);
          group.Done();
        },
        asio::detached);
  }
  co_await group.Wait();
}

Awaitable<void> RunConstant(State& st, const PhaseSpec& p, PhaseResult& out) {
  const TimePoint end = SteadyClock::now() + p.duration;
  const uint64_t per_agent = std::max<uint64_t>(1, p.max_operations / static_cast<uint64_t>(p.agents));
  auto ex = co_await asio::this_coro::executor;
  WaitGroup group(ex);
  for (int i = 0; i < p.agents; ++i) {
    if (!st.Mine(i)) continue;
    group.Add(1);
    asio::co_spawn(
        ex,
        [&st, &p, &out, &group, i, end, per_agent]() -> Awaitable<void> {
          const AgentSpec agent = MakeAgent(st, p, i);
          const std::string doc = st.ctx.generator.StateDocument(agent);
          for (uint64_t n = 0; n < per_agent && SteadyClock::now() < end; ++n) {
            co_await UnitOfWork(st, out, agent, doc, std::nullopt);
            // A store that completes inline (memory://) never suspends us: yield, or the
            // first agent would run the whole duration alone.
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
          }
          group.Done();
        },
        asio::detached);
  }
  co_await group.Wait();
}

Awaitable<void> RunArrivals(State& st, const PhaseSpec& p, PhaseResult& out) {
  auto ex = co_await asio::this_coro::executor;
  const TimePoint start = SteadyClock::now();
  const TimePoint end = start + p.duration;
  const std::size_t max_in_flight = static_cast<std::size_t>(p.agents > 0 ? p.agents : kDefaultMaxInFlight);
  ArrivalSchedule schedule(p.rate_per_s, p.rate_end_per_s > 0 ? p.rate_end_per_s : p.rate_per_s,
                           std::chrono::duration_cast<std::chrono::microseconds>(p.duration), p.arrival,
                           HashScope(st.ctx.generator.seed(), st.spec.name + "/" + p.name, 0), p.max_operations);
  asio::steady_timer timer(ex);
  asio::steady_timer slot(ex);  // cancelled whenever an agent finishes
  std::size_t in_flight = 0;
  WaitGroup group(ex);
  TimePoint freed{};  // when the dispatcher last got a slot back after waiting for one
  for (int k = 0; auto offset = schedule.Next(); ++k) {
    if (!st.Mine(k)) continue;  // another shard's arrival
    const TimePoint due = start + *offset;
    boost::system::error_code ec;
    if (due > SteadyClock::now()) {
      timer.expires_at(due);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    // How late the generator itself was: measured from when it could have dispatched (the
    // due time, or when a busy store gave a slot back), so store stalls are not counted.
    out.start_lag.Record(std::max<int64_t>(0, MicrosBetween(std::max(due, freed), SteadyClock::now())));
    if (in_flight >= max_in_flight) {
      while (in_flight >= max_in_flight && SteadyClock::now() < end) {
        slot.expires_at(end);
        co_await slot.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      freed = SteadyClock::now();
    }
    if (in_flight >= max_in_flight) {  // the duration ended with every slot busy
      ++out.dropped_starts;
      while (schedule.Next()) ++out.dropped_starts;
      break;
    }
    if (SteadyClock::now() - due > kLateStart) ++out.late_starts;
    ++in_flight;
    group.Add(1);
    asio::co_spawn(
        ex,
        [&st, &p, &out, &group, &slot, &in_flight, i = k, due]() -> Awaitable<void> {
          AgentSpec agent = MakeAgent(st, p, i);
          std::string doc = st.ctx.generator.StateDocument(agent);
          co_await UnitOfWork(st, out, agent, std::move(doc), due);
          --in_flight;
          slot.cancel();
          group.Done();
        },
        asio::detached);
  }
  co_await group.Wait();
}

// Closes interval rows on time and draws the progress line, until `done`.
Awaitable<void> Ticker(State& st, const bool& done, asio::steady_timer& timer) {
  std::vector<TimePoint> next;
  for (auto& r : st.recorders) next.push_back(st.t0 + r.width());
  while (!done) {
    timer.expires_at(*std::min_element(next.begin(), next.end()));
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    const auto now = SteadyClock::now();
    for (std::size_t i = 0; i < st.recorders.size(); ++i) {
      // Catch up on any interval boundaries passed (a busy executor can wake late).
      while (next[i] <= now) {
        st.recorders[i].Close(std::chrono::duration<double>(next[i] - st.t0).count());
        next[i] += st.recorders[i].width();
      }
    }
    if (st.ctx.progress && !st.recorders[0].rows().empty()) {
      const IntervalRow& r = st.recorders[0].rows().back();
      const uint64_t done_n = st.current ? st.current->executed : 0;
      const uint64_t failed = st.current ? st.current->failed : 0;
      std::cerr << fmt::format("\r\x1b[K{} [{}] {:.0f}s  {} done  {:.0f}/s  p50 {:.2f} ms  p99 {:.2f} ms  errors {}",
                               st.spec.name, st.phase, st.Elapsed(), done_n, static_cast<double>(r.count), r.p50_ms,
                               r.p99_ms, failed)
                << std::flush;
    }
  }
}

double Ms(int64_t us) { return static_cast<double>(us) / 1000.0; }

void AddLatencyMetrics(Metrics& m, const std::string& prefix, const Histogram& h) {
  m[prefix + "mean_ms"] = h.Mean() / 1000.0;
  m[prefix + "p50_ms"] = Ms(h.ValueAtPercentile(50));
  m[prefix + "p95_ms"] = Ms(h.ValueAtPercentile(95));
  m[prefix + "p99_ms"] = Ms(h.ValueAtPercentile(99));
  m[prefix + "max_ms"] = Ms(h.Max());
}

void AddCounts(Metrics& m, const std::string& prefix, uint64_t executed, uint64_t succeeded, uint64_t failed,
               double wall_s) {
  const double n = static_cast<double>(executed);
  m[prefix + "executed"] = n;
  m[prefix + "succeeded"] = static_cast<double>(succeeded);
  m[prefix + "failed"] = static_cast<double>(failed);
  m[prefix + "success_rate_percent"] = executed ? 100.0 * static_cast<double>(succeeded) / n : 0;
  m[prefix + "availability_percent"] = m[prefix + "success_rate_percent"];
  m[prefix + "error_rate_percent"] = executed ? 100.0 * static_cast<double>(failed) / n : 0;
  m[prefix + "throughput_agents_per_s"] = wall_s > 0 ? n / wall_s : 0;
}

}  // namespace

Status ValidateScenario(const ScenarioSpec& spec) {
  auto bad = [&](const PhaseSpec& p, const std::string& what) {
    return Status(StatusCode::kInvalidArgument, fmt::format("scenario {} phase {}: {}", spec.name, p.name, what));
  };
  if (spec.phases.empty()) return Status(StatusCode::kInvalidArgument, fmt::format("scenario {} has no phases", spec.name));
  if (spec.op_timeout.count() <= 0 || spec.max_duration.count() <= 0) {
    return Status(StatusCode::kInvalidArgument, fmt::format("scenario {}: timeouts and durations must be > 0", spec.name));
  }
  std::set<std::string> names;
  for (const auto& p : spec.phases) {
    if (!names.insert(p.name).second) return bad(p, "phase names must be unique");
    if (p.sizes.empty() || p.patterns.empty()) return bad(p, "needs at least one state size and one pattern");
    if (p.pause_after.count() < 0) return bad(p, "pause must not be negative");
    switch (p.executor) {
      case Executor::kWave:
        if (p.agents < 1) return bad(p, fmt::format("a wave needs >= 1 agent (got {})", p.agents));
        break;
      case Executor::kConstant:
        if (p.agents < 1) return bad(p, fmt::format("constant concurrency needs >= 1 agent (got {})", p.agents));
        if (p.duration.count() <= 0) return bad(p, "constant concurrency needs a duration > 0");
        break;
      case Executor::kArrivals:
        if (p.agents < 0) return bad(p, "max in flight must not be negative");
        if (p.duration.count() <= 0) return bad(p, "an arrival phase needs a duration > 0");
        if (!(p.rate_per_s > 0) || !(p.rate_end_per_s >= 0) || !std::isfinite(p.rate_per_s) ||
            !std::isfinite(p.rate_end_per_s) || p.rate_per_s > 1e7 || p.rate_end_per_s > 1e7) {
          return bad(p, fmt::format("arrival rate must be in (0, 1e7] per second (got {} -> {})", p.rate_per_s,
                                    p.rate_end_per_s));
        }
        break;
    }
    if (p.max_operations == 0) return bad(p, "max_operations must be > 0");
  }
  for (const auto& g : spec.gates) {
    if (!std::isfinite(g.limit) || g.limit < 0) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("scenario {} gate {}: limit must be a finite non-negative number", spec.name, g.name));
    }
    if (g.interval && (g.interval->window.count() <= 0 || g.interval->min_percent < 0 || g.interval->min_percent > 100)) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("scenario {} gate {}: interval window must be > 0 and the share 0..100 %", spec.name,
                                g.name));
    }
  }
  return Status();
}

Metrics BaseMetrics(const ScenarioResult& r) {
  Metrics m;
  uint64_t executed = 0, succeeded = 0, failed = 0, corrupted = 0, late = 0, dropped = 0;
  double wall = 0;
  Histogram lag;
  for (const auto& p : r.phases) {
    executed += p.executed;
    succeeded += p.succeeded;
    failed += p.failed;
    corrupted += p.corrupted;
    late += p.late_starts;
    dropped += p.dropped_starts;
    wall += p.end_s - p.start_s;
    lag.Merge(p.start_lag);
    // Per phase, for gates such as "phase.spike.p95_ms".
    const std::string prefix = "phase." + p.name + ".";
    AddCounts(m, prefix, p.executed, p.succeeded, p.failed, p.end_s - p.start_s);
    AddLatencyMetrics(m, prefix, p.latency);
    if (p.executor == Executor::kArrivals) AddLatencyMetrics(m, prefix + "uncorrected_", p.uncorrected);
  }
  AddCounts(m, "", executed, succeeded, failed, wall);
  AddLatencyMetrics(m, "", r.latency);
  m["sla_violations"] = static_cast<double>(r.latency.CountAbove(200000));
  m["peak_memory_mb"] = r.peak_rss_mb;
  m["avg_cpu_percent"] = r.avg_cpu_percent;
  m["corruption"] = static_cast<double>(corrupted + r.ledger.corrupted);
  m["lost_writes"] = static_cast<double>(r.ledger.lost);
  m["phantom_writes"] = static_cast<double>(r.ledger.phantom);
  m["out_of_order_writes"] = static_cast<double>(r.ledger.out_of_order);
  m["data_integrity_issues"] =
      m["corruption"] + static_cast<double>(r.ledger.lost + r.ledger.phantom + r.ledger.out_of_order);
  m["late_starts"] = static_cast<double>(late);
  m["dropped_starts"] = static_cast<double>(dropped);
  m["generator_lag_p99_ms"] = Ms(lag.ValueAtPercentile(99));
  const Trend trend = RssTrend(r.resources);
  m["memory_slope_mb_per_hour"] = trend.mb_per_hour;
  return m;
}

void FinishScenario(ScenarioResult& result) {
  result.metrics = BaseMetrics(result);
  result.metrics["harness_thread_cpu_percent"] = result.harness_thread_cpu_percent;
  // INVALID: the generator, not the store, set the pace.
  const double lag = result.metrics["generator_lag_p99_ms"];
  const double max_lag = static_cast<double>(result.spec.max_generator_lag.count());
  if (lag > max_lag) {
    result.invalid = true;
    result.invalid_reason = fmt::format("generator schedule lag p99 {:.1f} ms > {:.0f} ms", lag, max_lag);
  } else if (result.resources.size() >= 3 && result.harness_thread_cpu_percent >= 95) {
    result.invalid = true;
    result.invalid_reason =
        fmt::format("the harness thread was saturated ({:.0f} % of a core)", result.harness_thread_cpu_percent);
  }
  if (result.spec.derive) result.spec.derive(result);
  result.gates = EvaluateGates(result.spec.gates, result.metrics, result.windows);
}

std::string ScenarioVersion(const ScenarioSpec& spec) {
  std::string shape = spec.name + "|" + spec.user_id;
  for (const auto& p : spec.phases) {
    shape += fmt::format("|{}:{}:{}:{}:{}:{}:{}:{}:{}", p.name, Name(p.executor), p.agents, p.duration.count(),
                         p.rate_per_s, p.rate_end_per_s, static_cast<int>(p.arrival), p.pause_after.count(),
                         p.max_operations);
    for (auto z : p.sizes) shape += std::string(",") + std::string(Name(z));
    for (auto x : p.patterns) shape += std::string(",") + std::string(Name(x));
  }
  for (const auto& g : spec.gates) {
    shape += fmt::format("|{}:{}:{}:{}", g.name, g.metric, static_cast<int>(g.compare),
                         g.interval ? fmt::format("{}s>={}", g.interval->window.count(), g.interval->min_percent) : "");
  }
  return fmt::format("{:016x}", HashScope(0, shape, 0));
}

Awaitable<ScenarioResult> RunScenario(ScenarioSpec spec, RunContext ctx) {
  ScenarioResult result;
  result.started_unix = static_cast<int64_t>(std::time(nullptr));
  if (!ctx.harness_tid) ctx.harness_tid = static_cast<int>(::syscall(SYS_gettid));
  ResourceSampler sampler;
  sampler.WatchThread(ctx.harness_tid);
  sampler.WatchStore([&store = ctx.store] { return store.Stats().values; });
  sampler.Start();
  State st{spec, ctx, SteadyClock::now(), {}, {}, {}};
  std::set<int64_t> gate_widths;
  for (const auto& g : spec.gates) {
    if (g.interval) gate_widths.insert(std::chrono::duration_cast<std::chrono::milliseconds>(g.interval->window).count());
  }
  st.recorders.emplace_back(std::chrono::seconds(1), gate_widths.count(1000) > 0);
  for (int64_t ms : gate_widths) {
    if (ms != 1000) st.recorders.emplace_back(std::chrono::milliseconds(ms), true);
  }
  auto ex = co_await asio::this_coro::executor;
  bool done = false;
  asio::steady_timer tick(ex);
  WaitGroup ticker(ex);
  ticker.Add(1);
  asio::co_spawn(
      ex,
      [&]() -> Awaitable<void> {
        co_await Ticker(st, done, tick);
        ticker.Done();
      },
      asio::detached);

  const auto end_by = st.t0 + spec.max_duration;
  for (std::size_t i = 0; i < spec.phases.size(); ++i) {
    const PhaseSpec& p = spec.phases[i];
    if (SteadyClock::now() >= end_by) {
      result.truncated = true;
      break;
    }
    st.phase = p.name;
    PhaseResult& pr = result.phases.emplace_back();
    st.current = &pr;
    pr.name = p.name;
    pr.executor = p.executor;
    pr.start_s = st.Elapsed();
    switch (p.executor) {
      case Executor::kWave: co_await RunWave(st, p, pr); break;
      case Executor::kConstant: co_await RunConstant(st, p, pr); break;
      case Executor::kArrivals: co_await RunArrivals(st, p, pr); break;
    }
    pr.end_s = st.Elapsed();
    result.latency.Merge(pr.latency);
    if (ctx.verbose) {
      if (ctx.progress) std::cerr << "\r\x1b[K";
      std::cerr << fmt::format("  {} / {} ({}): {} agents, {} ok, p50 {:.2f} ms, p99 {:.2f} ms, {:.2f} s\n", spec.name,
                               pr.name, Name(pr.executor), pr.executed, pr.succeeded,
                               Ms(pr.latency.ValueAtPercentile(50)), Ms(pr.latency.ValueAtPercentile(99)),
                               pr.end_s - pr.start_s);
    }
    // The pause between phases is part of the scenario's shape (idle time the store sees),
    // never counted as work.
    if (p.pause_after.count() > 0 && i + 1 < spec.phases.size()) {
      st.phase = "pause";
      asio::steady_timer pause(ex, std::min(SteadyClock::now() + p.pause_after, end_by));
      boost::system::error_code ec;
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
  st.phase = "verify";
  st.current = nullptr;
  result.ledger = co_await st.ledger.Verify(ctx.store, spec.op_timeout, 64);
  done = true;
  tick.cancel();
  co_await ticker.Wait();
  if (ctx.progress) std::cerr << "\r\x1b[K" << std::flush;
  result.wall_s = st.Elapsed();
  // The last, partial intervals: short scenarios still get a row.
  for (auto& r : st.recorders) r.Close(result.wall_s);
  sampler.Stop();
  result.series = st.recorders[0].rows();
  for (const auto& r : st.recorders) {
    if (!gate_widths.count(r.width().count())) continue;
    result.windows[r.width().count()] = r.rows();
    result.window_histograms[r.width().count()] = r.histograms();
  }
  result.resources = sampler.Samples();
  result.peak_rss_mb = sampler.PeakRssMb();
  result.avg_cpu_percent = sampler.MeanCpuPercent();
  result.harness_thread_cpu_percent = sampler.MeanThreadCpuPercent();
  result.spec = std::move(spec);
  FinishScenario(result);
  co_return result;
}

}  // namespace agentstate::load
