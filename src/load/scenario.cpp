#include "load/scenario.hpp"

#include <fmt/format.h>

#include <ctime>
#include <iostream>

#include "load/wait_group.hpp"

namespace agentstate::load {
namespace {

using SteadyClock = std::chrono::steady_clock;

int64_t MicrosSince(SteadyClock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - t0).count();
}

bool InDoubt(const Status& s) {
  return s.code() == StatusCode::kTimeout || s.code() == StatusCode::kUnavailable ||
         s.code() == StatusCode::kInternal;
}

// The original unit of work: save the state, load it back, check it survived. Its latency
// is the whole of it; document building happens before the clock starts.
Awaitable<void> AgentWorkload(RunContext ctx, const ScenarioSpec& spec, AgentSpec agent, std::string payload,
                              Ledger& ledger, PhaseResult& phase) {
  SaveRequest req = ctx.generator.Request(agent, std::move(payload));
  const auto t0 = SteadyClock::now();
  auto ack = co_await ctx.store.Save(std::move(req), DeadlineIn(spec.op_timeout));
  phase.save.Record(MicrosSince(t0));
  ++phase.executed;
  if (!ack) {
    ledger.Record(agent.run_id, InDoubt(ack.error()) ? WriteOutcome::kUnknown : WriteOutcome::kFailed, 0, 0,
                  CheckpointType::kAuto);
    ++phase.failed;
    ++phase.errors[std::string(CodeName(ack.error().code()))];
    phase.latency.Record(MicrosSince(t0));
    co_return;
  }
  ledger.Record(agent.run_id, WriteOutcome::kAcked, ack->version, ack->checksum, CheckpointType::kAuto);
  const auto t1 = SteadyClock::now();
  auto rec = co_await ctx.store.Load(agent.run_id, DeadlineIn(spec.op_timeout));
  phase.load.Record(MicrosSince(t1));
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
  phase.latency.Record(MicrosSince(t0));
  ++(ok ? phase.succeeded : phase.failed);
}

Awaitable<void> RunPhase(RunContext ctx, const ScenarioSpec& spec, const PhaseSpec& p, Ledger& ledger,
                         PhaseResult& out) {
  out.name = p.name;
  // Build every document first: the wave then starts together, as the original's gather did.
  std::vector<std::pair<AgentSpec, std::string>> agents;
  agents.reserve(static_cast<std::size_t>(p.agents));
  const std::string scope = spec.name + "/" + p.name;
  for (int i = 0; i < p.agents; ++i) {
    AgentSpec a = ctx.generator.Agent(scope, i, spec.user_id, p.sizes[static_cast<std::size_t>(i) % p.sizes.size()],
                                      p.patterns[static_cast<std::size_t>(i) % p.patterns.size()]);
    std::string doc = ctx.generator.StateDocument(a);
    agents.emplace_back(std::move(a), std::move(doc));
  }
  auto ex = co_await asio::this_coro::executor;
  WaitGroup group(ex);
  group.Add(agents.size());
  const auto t0 = SteadyClock::now();
  for (auto& [agent, doc] : agents) {
    asio::co_spawn(
        ex,
        [ctx, &spec, &ledger, &out, &group, agent = std::move(agent), doc = std::move(doc)]() mutable -> Awaitable<void> {
          co_await AgentWorkload(ctx, spec, std::move(agent), std::move(doc), ledger, out);
          group.Done();
        },
        asio::detached);
  }
  co_await group.Wait();
  out.wall_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

double Ms(int64_t us) { return static_cast<double>(us) / 1000.0; }

}  // namespace

Metrics BaseMetrics(const ScenarioResult& r) {
  Metrics m;
  uint64_t executed = 0, succeeded = 0, failed = 0, corrupted = 0;
  double wall = 0;
  for (const auto& p : r.phases) {
    executed += p.executed;
    succeeded += p.succeeded;
    failed += p.failed;
    corrupted += p.corrupted;
    wall += p.wall_s;
  }
  const double n = static_cast<double>(executed);
  m["executed"] = n;
  m["succeeded"] = static_cast<double>(succeeded);
  m["failed"] = static_cast<double>(failed);
  m["success_rate_percent"] = executed ? 100.0 * static_cast<double>(succeeded) / n : 0;
  m["availability_percent"] = m["success_rate_percent"];
  m["error_rate_percent"] = executed ? 100.0 * static_cast<double>(failed) / n : 0;
  m["mean_ms"] = r.latency.Mean() / 1000.0;
  m["p50_ms"] = Ms(r.latency.ValueAtPercentile(50));
  m["p95_ms"] = Ms(r.latency.ValueAtPercentile(95));
  m["p99_ms"] = Ms(r.latency.ValueAtPercentile(99));
  m["max_ms"] = Ms(r.latency.Max());
  m["sla_violations"] = static_cast<double>(r.latency.CountAbove(200000));
  m["throughput_agents_per_s"] = wall > 0 ? n / wall : 0;
  m["peak_memory_mb"] = r.peak_rss_mb;
  m["avg_cpu_percent"] = r.avg_cpu_percent;
  m["corruption"] = static_cast<double>(corrupted + r.ledger.corrupted);
  m["lost_writes"] = static_cast<double>(r.ledger.lost);
  m["phantom_writes"] = static_cast<double>(r.ledger.phantom);
  m["out_of_order_writes"] = static_cast<double>(r.ledger.out_of_order);
  m["data_integrity_issues"] =
      m["corruption"] + static_cast<double>(r.ledger.lost + r.ledger.phantom + r.ledger.out_of_order);
  return m;
}

Awaitable<ScenarioResult> RunScenario(ScenarioSpec spec, RunContext ctx) {
  ScenarioResult result;
  result.started_unix = static_cast<int64_t>(std::time(nullptr));
  ResourceSampler sampler;
  sampler.Start();
  Ledger ledger;
  const auto t0 = SteadyClock::now();
  const auto end_by = t0 + spec.max_duration;
  auto ex = co_await asio::this_coro::executor;
  for (std::size_t i = 0; i < spec.phases.size(); ++i) {
    const PhaseSpec& p = spec.phases[i];
    if (SteadyClock::now() >= end_by) {
      result.truncated = true;
      break;
    }
    result.phases.emplace_back();
    co_await RunPhase(ctx, spec, p, ledger, result.phases.back());
    const PhaseResult& pr = result.phases.back();
    result.latency.Merge(pr.latency);
    if (ctx.verbose) {
      std::cerr << fmt::format("  {} / {}: {} agents, {} ok, p50 {:.2f} ms, p99 {:.2f} ms, {:.2f} s\n", spec.name,
                               pr.name, pr.executed, pr.succeeded, Ms(pr.latency.ValueAtPercentile(50)),
                               Ms(pr.latency.ValueAtPercentile(99)), pr.wall_s);
    }
    // The pause between waves is part of the scenario's shape (idle time the store sees),
    // never counted as work.
    if (p.pause_after.count() > 0 && i + 1 < spec.phases.size()) {
      asio::steady_timer pause(ex, std::min(SteadyClock::now() + p.pause_after, end_by));
      boost::system::error_code ec;
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
  result.ledger = co_await ledger.Verify(ctx.store, spec.op_timeout, 64);
  sampler.Stop();
  result.wall_s = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  result.resources = sampler.Samples();
  result.peak_rss_mb = sampler.PeakRssMb();
  result.avg_cpu_percent = sampler.MeanCpuPercent();
  result.metrics = BaseMetrics(result);
  result.spec = std::move(spec);
  if (result.spec.derive) result.spec.derive(result);
  result.gates = EvaluateGates(result.spec.gates, result.metrics);
  co_return result;
}

}  // namespace agentstate::load
